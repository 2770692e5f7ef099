"""KYC flow and its state machine at the API, discovery residency with real heartbeats, tokens,
errors and metrics over HTTP."""
from __future__ import annotations

import json
import time
from typing import Any

from contract import sync as S
from contract import tokens
from control_plane.ports.kyc_vendor import sign
from tests.control_plane.conftest import BOOTSTRAP, EdgeSim, client, operator, token, wait_for


async def test_kyc_flow_and_illegal_transitions(make_cp) -> None:  # type: ignore[no-untyped-def]
    cp = await make_cp(None)
    async with operator(cp) as http:
        await http.post("/v1/edges", json={"id": "mt-1", "jurisdiction": "MT"})
        edge = EdgeSim("mt-1")
        for player, ref in (("ok", "doc-1"), ("bad", "doc-reject"), ("edd", "doc-edd")):
            cp.applier.apply("mt-1", S.SyncedEntry(**edge.add(S.KYC_REQUESTED, {"player": player, "reference": ref})))
            cp.wake_processor()
        # The vendor decides each request on its own schedule: wait for all three, in any order.
        await wait_for(lambda: all(cp.kyc.get("MT", p)["status"] not in ("unverified", "pending")
                                   for p in ("ok", "bad", "edd")), what="vendor decisions")
        assert cp.kyc.get("MT", "ok")["status"] == "verified"
        assert cp.kyc.get("MT", "bad")["status"] == "rejected"
        rec = (await http.get("/v1/kyc/MT/ok")).json()
        assert rec["reference"] == "doc-1" and rec["vendor_ref"].startswith("KYC-")  # no document, a reference

        # verified -> pending is not a move the machine allows; neither is suspended -> verified.
        r = await http.post("/v1/kyc/MT/ok/status", json={"status": "pending"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "illegal_kyc_transition"
        assert (await http.post("/v1/kyc/MT/ok/status", json={"status": "suspended"})).status_code == 200
        r = await http.post("/v1/kyc/MT/ok/status", json={"status": "verified"})
        assert r.status_code == 409
        r = await http.post("/v1/kyc/MT/nobody/status", json={"status": "verified"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "kyc_not_found"

        # A second kyc.requested while verified/suspended does not reopen the check.
        cp.applier.apply("mt-1", S.SyncedEntry(**edge.add(S.KYC_REQUESTED, {"player": "ok", "reference": "x"})))
        assert cp.kyc.get("MT", "ok")["status"] == "suspended"
        # A rejected player may try again.
        cp.applier.apply("mt-1", S.SyncedEntry(**edge.add(S.KYC_REQUESTED, {"player": "bad", "reference": "doc-2"})))
        cp.wake_processor()
        await wait_for(lambda: cp.kyc.get("MT", "bad")["status"] == "verified", what="second check")

        # Webhooks: a forged signature is refused; a redelivered one is a no-op.
        body = json.dumps({"vendor_ref": cp.kyc.get("MT", "bad")["vendor_ref"], "jurisdiction": "MT",
                           "player": "bad", "status": "verified"}).encode()
        r = await http.post("/v1/kyc/callback", content=body, headers={"X-Signature": "00"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "bad_signature"
        r = await http.post("/v1/kyc/callback", content=body,
                            headers={"X-Signature": sign(cp.config.kyc.callback_secret, body)})
        assert r.status_code == 200 and r.json()["changed"] is False

        cmds = (await http.get("/v1/commands", params={"edge_id": "mt-1"})).json()["commands"]
    statuses = [(c["body"]["player"], c["body"]["status"]) for c in cmds if c["type"] == "kyc.result"]
    assert [s for p, s in statuses if p == "ok"] == ["pending", "verified", "suspended"]
    assert [s for p, s in statuses if p == "bad"] == ["pending", "rejected", "pending", "verified"]


def hb(edge: str, jur: str, viewers: int, cap: int = 100, healthy: bool = True) -> bytes:
    return S.Heartbeat(edge_id=edge, jurisdiction=jur, public_url=f"https://{edge}.example", ts=int(time.time() * 1000),
                       head_seq=0, viewers=viewers, viewer_capacity=cap, healthy=healthy).model_dump_json().encode()


async def test_discovery_residency_health_and_load(nats_server, nc, make_cp) -> None:  # type: ignore[no-untyped-def]
    cp = await make_cp(nats_server.url)
    async with operator(cp) as http:
        for eid, jur in (("mt-1", "MT"), ("mt-2", "MT"), ("mt-3", "MT"), ("de-1", "DE")):
            await http.post("/v1/edges", json={"id": eid, "jurisdiction": jur, "public_url": f"https://{eid}.example"})
    await nc.publish(S.heartbeat_subject("mt-1"), hb("mt-1", "MT", 70))
    await nc.publish(S.heartbeat_subject("mt-2"), hb("mt-2", "MT", 5))
    await nc.publish(S.heartbeat_subject("mt-3"), hb("mt-3", "MT", 0, healthy=False))
    await nc.publish(S.heartbeat_subject("de-1"), hb("de-1", "DE", 0, healthy=False))
    # A heartbeat claiming another jurisdiction than the registered one is ignored.
    await nc.publish(S.heartbeat_subject("de-1"), hb("de-1", "MT", 0))
    await nc.flush()

    async def mt_candidates() -> Any:
        async with client(cp, token(cp, "alice", "player", "MT")) as http:
            r = await http.get("/v1/discovery")
            return r.json()["candidates"] if r.status_code == 200 and len(r.json()["candidates"]) == 2 else None

    cands = await wait_for(mt_candidates, what="two healthy MT edges")
    assert [c["edge_id"] for c in cands] == ["mt-2", "mt-1"]  # least loaded first, never de-1 or mt-3
    assert cands[0]["url"] == "https://mt-2.example"

    async with client(cp, token(cp, "bob", "player", "DE")) as http:
        r = await http.get("/v1/discovery")
        assert r.status_code == 503 and r.json()["error"]["code"] == "no_healthy_edge"
    async with client(cp, token(cp, "carol", "player", "US")) as http:
        r = await http.get("/v1/discovery")
        assert r.status_code == 404 and r.json()["error"]["code"] == "no_edge_in_jurisdiction"
    async with client(cp, token(cp, "ops", "operator", "MT")) as http:
        assert (await http.get("/v1/discovery")).status_code == 403


async def test_stale_heartbeat_is_not_discovered(make_cp) -> None:  # type: ignore[no-untyped-def]
    # Long enough that a slow box still asks before the heartbeat ages out; short enough to wait.
    cp = await make_cp(None, heartbeat_timeout_s=1.5)
    async with client(cp, token(cp, "g", "player", "GR")) as http:
        cp.registry.heartbeat(S.Heartbeat.model_validate_json(hb("gr-1", "GR", 1)))  # auto-registered
        assert (await http.get("/v1/discovery")).status_code == 200
        await wait_for(lambda: not cp.registry.discover("GR")[1], what="heartbeat to age out")
        assert (await http.get("/v1/discovery")).status_code == 503


async def test_tokens_keys_errors_and_metrics(make_cp) -> None:  # type: ignore[no-untyped-def]
    cp = await make_cp(None)
    async with client(cp) as http:
        pem = (await http.get("/v1/keys/token")).json()["public_key_pem"]
        assert (await http.get("/v1/keys/token", params={"format": "pem"})).text == pem
        body = {"sub": "alice", "role": "player", "jurisdiction": "MT"}
        r = await http.post("/v1/tokens", json=body)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        r = await http.post("/v1/tokens", json=body, headers={"X-Bootstrap-Secret": "wrong"})
        assert r.status_code == 403
        r = await http.post("/v1/tokens", json=body, headers={"X-Bootstrap-Secret": BOOTSTRAP})
        assert r.status_code == 200
        p = tokens.verify(pem, r.json()["token"])  # what an edge does offline
        assert (p.sub, p.role, p.jurisdiction) == ("alice", "player", "MT")
        r = await http.post("/v1/tokens", json=body, headers={"Authorization": f"Bearer {r.json()['token']}"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        r = await http.post("/v1/tokens", json={"sub": "x", "role": "god", "jurisdiction": "MT"},
                            headers={"X-Bootstrap-Secret": BOOTSTRAP})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
        r = await http.get("/v1/edges", headers={"Authorization": "Bearer nonsense"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
        assert (await http.get("/nope")).json()["error"]["code"] == "not_found"
    async with operator(cp) as http:
        r = await http.post("/v1/edges", json={"id": "mt-1", "jurisdiction": "MT", "checkpoint_public_key_pem": "x"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_key"
        cp.applier.apply("mt-1", S.SyncedEntry(**EdgeSim("mt-1").add("bet.placed", {"bet_id": "b"})))
        text = (await http.get("/metrics")).text
    assert 'controlplane_entries_applied_total{edge="mt-1"} 1.0' in text
    # A regulator sees only its own jurisdiction's audit.
    async with operator(cp) as http:
        await http.post("/v1/edges", json={"id": "mt-1", "jurisdiction": "MT"})
    async with client(cp, token(cp, "reg", "regulator", "DE")) as http:
        assert (await http.get("/v1/audit/edges/mt-1")).status_code == 403
    async with client(cp, token(cp, "reg", "regulator", "MT")) as http:
        assert (await http.get("/v1/audit/edges/mt-1")).json()["contiguous_seq"] == 1
