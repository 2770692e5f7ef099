"""Signed checkpoints: signature, append-only consistency (RFC 6962), root vs received entries,
and the covering checkpoint a regulator uses for an inclusion proof."""
from __future__ import annotations

import json
from typing import Any

from contract import merkle, tokens
from contract import sync as S
from contract.canonical import canonical_json
from tests.control_plane.conftest import EdgeSim, operator, wait_for

KEY = tokens.new_signing_key()


def leaves(entries: list[dict[str, Any]]) -> list[bytes]:
    return [bytes.fromhex(e["hash"]) for e in entries]


def checkpoint(edge_id: str, entries: list[dict[str, Any]], prev_size: int | None = None,
               key: Any = KEY, ts: int = 1_764_000_000_000, context: bytes = b"casino-checkpoint/v1\n") -> dict[str, Any]:
    lv = leaves(entries)
    body = {"edge_id": edge_id, "size": len(lv), "root": merkle.root(lv).hex(), "ts": ts}
    msg = {**body, "sig": key.sign(context + canonical_json(body)).hex()}
    if prev_size:
        msg["prev_size"] = prev_size
        msg["consistency"] = [p.hex() for p in merkle.consistency_proof(lv, prev_size)]
    return msg


async def publish_cp(js: Any, edge_id: str, msg: dict[str, Any]) -> None:
    await js.publish(S.checkpoint_subject(edge_id), json.dumps(msg).encode())


async def test_checkpoints_consistency_and_rewritten_history(nats_server, nc, make_cp) -> None:  # type: ignore[no-untyped-def]
    cp = await make_cp(nats_server.url)
    js = nc.jetstream()
    async with operator(cp) as http:
        r = await http.post("/v1/edges", json={"id": "mt-1", "jurisdiction": "MT",
                                               "checkpoint_public_key_pem": tokens.public_pem(KEY)})
        assert r.status_code == 201
        edge = EdgeSim("mt-1")
        for i in range(13):
            edge.add("bet.placed", {"bet_id": f"b{i}", "amount": 100})
        e = edge.entries
        await publish_cp(js, "mt-1", checkpoint("mt-1", e[:5]))
        await publish_cp(js, "mt-1", checkpoint("mt-1", e[:8], prev_size=5))
        await edge.publish_all(js, e[:10])
        await wait_for(lambda: cp.metrics.entries_applied.labels("mt-1")._value.get() == 10)

        async def audit() -> dict[str, Any]:
            return (await http.get("/v1/audit/edges/mt-1")).json()

        a = await wait_for(lambda: _if(audit(), lambda a: len(a["checkpoints"]) == 2
                                       and all(c["entries_check"] == "ok" for c in a["checkpoints"])),
                           what="checkpoints checked against entries")
        assert a["ok"] and [c["status"] for c in a["checkpoints"]] == ["ok", "ok"]

        # The covering checkpoint of seq 6 is size 8; its inclusion proof checks out offline.
        cov = (await http.get("/v1/audit/edges/mt-1/checkpoints", params={"covering_seq": 6})).json()
        assert cov["size"] == 8 and cov["entry_hash"] == e[5]["hash"]
        assert merkle.verify_inclusion(bytes.fromhex(e[5]["hash"]), 5, 8,
                                       [bytes.fromhex(p) for p in cov["inclusion_proof"]], bytes.fromhex(cov["root"]))
        r = await http.get("/v1/audit/edges/mt-1/checkpoints", params={"covering_seq": 99})
        assert r.status_code == 404 and r.json()["error"]["code"] == "no_covering_checkpoint"

        # History rewritten after size 8 was signed: entry 3 changed, a new signed head of 12 with a
        # proof from 8 that is valid for the new tree but not for the old root.
        rewritten = [dict(x) for x in e[:12]]
        rewritten[2] = {**rewritten[2], "hash": "ee" * 32}
        await publish_cp(js, "mt-1", checkpoint("mt-1", rewritten, prev_size=8))
        # A checkpoint whose signature is not the edge's key.
        await publish_cp(js, "mt-1", checkpoint("mt-1", e[:13], prev_size=8, key=tokens.new_signing_key()))
        # A second signed root for a size already held (equivocation).
        await publish_cp(js, "mt-1", checkpoint("mt-1", rewritten[:8], prev_size=5))
        a = await wait_for(lambda: _if(audit(), lambda a: {"checkpoint_inconsistent", "checkpoint_bad_signature",
                                                            "checkpoint_fork"} <= {f["kind"] for f in a["flags"]}),
                           what="checkpoint flags")
        assert not a["ok"]
        assert [(f["kind"], f["seq"]) for f in a["flags"] if f["kind"].startswith("checkpoint")] == [
            ("checkpoint_inconsistent", 12), ("checkpoint_bad_signature", 13), ("checkpoint_fork", 8)]
        # A rewritten head is never offered as the covering checkpoint.
        cov = (await http.get("/v1/audit/edges/mt-1/checkpoints", params={"covering_seq": 10})).json()
        assert cov.get("size") is None or cov["size"] != 12
        await edge.publish_all(js, e[10:12])
        a = await wait_for(lambda: _if(audit(), lambda a: any(f["kind"] == "checkpoint_root_mismatch"
                                                              for f in a["flags"])),
                           what="root recomputed from entries differs")
        assert ("checkpoint_root_mismatch", 12) in [(f["kind"], f["seq"]) for f in a["flags"]]


async def test_checkpoint_root_mismatch_with_consistent_proofs(nats_server, nc, make_cp) -> None:  # type: ignore[no-untyped-def]
    """An edge that signs heads over a tree other than the journal it sent is caught by recomputation."""
    cp = await make_cp(nats_server.url)
    js = nc.jetstream()
    cp.registry.register("de-1", "DE", "", tokens.public_pem(KEY))
    edge = EdgeSim("de-1")
    for i in range(4):
        edge.add("bet.placed", {"bet_id": f"b{i}"})
    other = [dict(x) for x in edge.entries]
    other[0] = {**other[0], "hash": "11" * 32}
    await publish_cp(js, "de-1", checkpoint("de-1", other))
    await edge.publish_all(js)
    await wait_for(lambda: cp.metrics.audit_flags.labels("de-1", "checkpoint_root_mismatch")._value.get() == 1,
                   what="mismatch flag")


async def test_checkpoint_signed_without_the_domain_prefix_is_refused(nats_server, nc, make_cp) -> None:  # type: ignore[no-untyped-def]
    """Only the domain-separated form (contract.checkpoint) verifies: a signature over the bare
    canonical body, by the edge's own key, is a bad signature."""
    cp = await make_cp(nats_server.url)
    js = nc.jetstream()
    cp.registry.register("fr-1", "FR", "", tokens.public_pem(KEY))
    edge = EdgeSim("fr-1")
    for i in range(4):
        edge.add("bet.placed", {"bet_id": f"b{i}"})
    await publish_cp(js, "fr-1", checkpoint("fr-1", edge.entries, context=b""))
    await wait_for(lambda: cp.metrics.audit_flags.labels("fr-1", "checkpoint_bad_signature")._value.get() == 1,
                   what="bad-signature flag")
    await publish_cp(js, "fr-1", checkpoint("fr-1", edge.entries))  # the same head, prefixed: accepted
    await edge.publish_all(js)
    async with operator(cp) as http:
        a = await wait_for(lambda: _if(http.get("/v1/audit/edges/fr-1"),
                                       lambda r: len(r.json().get("checkpoints", [])) == 1),
                           what="the prefixed checkpoint stored")
        assert [c["status"] for c in a.json()["checkpoints"]] == ["ok"]


async def _if(coro: Any, pred: Any) -> Any:
    v = await coro
    return v if pred(v) else None


async def test_checkpoints_made_by_the_edge_code_verify(nats_server, nc, make_cp) -> None:  # type: ignore[no-untyped-def]
    """Interop with the real edge signer (edge_agent/audit/checkpoints.py)."""
    import pytest

    edge_cp = pytest.importorskip("edge_agent.audit.checkpoints")
    cp = await make_cp(nats_server.url)
    js = nc.jetstream()
    cp.registry.register("nj-1", "NJ", "", tokens.public_pem(KEY))
    edge = EdgeSim("nj-1")
    for i in range(7):
        edge.add("bet.placed", {"bet_id": f"b{i}"})
    first = edge_cp.make_checkpoint([e["hash"] for e in edge.entries[:3]], None, KEY, "nj-1")
    second = edge_cp.make_checkpoint([e["hash"] for e in edge.entries], first, KEY, "nj-1")
    for msg in (first, second):
        await publish_cp(js, "nj-1", msg)
    await edge.publish_all(js)
    async with operator(cp) as http:
        a = await wait_for(lambda: _if(http.get("/v1/audit/edges/nj-1"), lambda r: len(r.json().get("checkpoints", [])) == 2
                                       and all(c["entries_check"] == "ok" for c in r.json()["checkpoints"])),
                           what="edge checkpoints verified")
    body = a.json()
    assert body["ok"] and body["flags"] == [] and [c["status"] for c in body["checkpoints"]] == ["ok", "ok"]
