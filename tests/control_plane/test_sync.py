"""Journal consumer over a real nats-server: exactly-once apply, high-water mark, global audit."""
from __future__ import annotations

import json

from sqlalchemy import func, select

from contract import journal as J
from contract import sync as S
from control_plane.adapters.db.models import deposits, entries
from tests.control_plane.conftest import EdgeSim, commands_on, operator, wait_for


def held(cp, edge: str) -> int:  # type: ignore[no-untyped-def]
    with cp.engine.connect() as c:
        return c.execute(select(func.count()).select_from(entries).where(entries.c.edge_id == edge)).scalar()


def applied(cp, edge: str) -> float:  # type: ignore[no-untyped-def]
    return cp.metrics.entries_applied.labels(edge)._value.get()


async def _at_least(fetch, n: int) -> bool:  # type: ignore[no-untyped-def]
    return len(await fetch()) >= n


async def hwm(nc, edge: str) -> S.HighWaterMark:  # type: ignore[no-untyped-def]
    r = await nc.request(S.hwm_subject(edge), b"", timeout=5)
    return S.HighWaterMark.model_validate_json(r.data)


async def test_exactly_once_under_forced_redelivery(nats_server, nc, make_cp) -> None:  # type: ignore[no-untyped-def]
    cp = await make_cp(nats_server.url)
    js = nc.jetstream()
    edge = EdgeSim("mt-1")
    for i in range(20):
        edge.add(S.DEPOSIT_REQUESTED, {"deposit_id": f"d{i}", "player": "p1", "amount": 1_000 + i,
                                       "currency": "EUR", "method": "card"})
    await edge.publish_all(js)
    await edge.publish_all(js)  # same Nats-Msg-Id: JetStream's dedup window drops these
    await edge.publish_all(js, suffix=":again")  # new ids: past the window, JetStream cannot help
    await wait_for(lambda: cp.metrics.entries_duplicate.labels("mt-1")._value.get() >= 20, what="redeliveries seen")
    assert held(cp, "mt-1") == 20 and applied(cp, "mt-1") == 20

    # Restart the consumer (new process state, same durable and database), publish everything again.
    await cp.stop()
    cp2 = await make_cp(nats_server.url)
    await edge.publish_all(js, suffix=":after-restart")
    await wait_for(lambda: cp2.metrics.entries_duplicate.labels("mt-1")._value.get() >= 20, what="redeliveries")
    assert applied(cp2, "mt-1") == 0 and held(cp2, "mt-1") == 20

    # Effects happened once: one deposit row and one DepositCredit per deposit id.
    async def credits() -> list[dict]:
        return [x for x in await commands_on(nc, "mt-1") if x["type"] == "deposit.credit"]

    await wait_for(lambda: _at_least(credits, 20), what="credits published")
    with cp2.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(deposits)).scalar() == 20
    assert sorted(x["deposit_id"] for x in await credits()) == sorted(f"d{i}" for i in range(20))

    h = await hwm(nc, "mt-1")
    assert (h.seq, h.hash) == (20, edge.entries[-1]["hash"])
    # A restored edge asks for the entries the cloud holds (edge_agent/sync/cloud.py).
    r = json.loads((await nc.request(S.hwm_subject("mt-1"), b'{"from_seq": 18, "limit": 5}', timeout=5)).data)
    assert r["seq"] == 20 and [S.SyncedEntry(**x).model_dump(exclude={"redacted"}) for x in r["entries"]] \
        == edge.entries[17:20]
    async with operator(cp2) as http:
        a = (await http.get("/v1/audit/edges/mt-1")).json()
    assert a["ok"] and a["contiguous_seq"] == 20 and a["flags"] == []


async def test_crash_between_commit_and_ack_is_redelivered_and_skipped(nats_server, nc, make_cp) -> None:  # type: ignore[no-untyped-def]
    cp = await make_cp(nats_server.url, nats={"url": nats_server.url, "ack_wait_s": 1})
    assert cp.bus is not None
    cp.bus.ack_enabled = False  # commits happen, acks never leave: what a crash right after commit does
    js = nc.jetstream()
    edge = EdgeSim("mt-1")
    for i in range(5):
        edge.add(S.WITHDRAWAL_REQUESTED, {"withdrawal_id": f"w{i}", "player": "p", "amount": 100, "currency": "EUR",
                                          "rail": "bank"})
    await edge.publish_all(js)
    await wait_for(lambda: applied(cp, "mt-1") == 5)
    await cp.stop()
    cp2 = await make_cp(nats_server.url, nats={"url": nats_server.url, "ack_wait_s": 1})
    # JetStream hands the unacknowledged entries to the restarted consumer; they are recognised.
    await wait_for(lambda: cp2.metrics.entries_duplicate.labels("mt-1")._value.get() >= 5, what="redelivery")
    assert applied(cp2, "mt-1") == 0 and held(cp2, "mt-1") == 5
    await wait_for(lambda: _acked(js, cp2), what="acks after the redelivery")


async def _acked(js, cp) -> bool:  # type: ignore[no-untyped-def]
    info = await js.consumer_info(S.JOURNAL_STREAM, f"{cp.config.nats.durable}-mt-1")  # its edge's consumer
    return info.num_ack_pending == 0 and info.num_pending == 0


async def test_hwm_for_unknown_edge_is_zero(nats_server, nc, make_cp) -> None:  # type: ignore[no-untyped-def]
    await make_cp(nats_server.url)
    h = await hwm(nc, "nowhere-1")
    assert (h.seq, h.hash) == (0, J.GENESIS_PREV)


async def test_audit_flags_gap_fork_and_reorder(nats_server, nc, make_cp) -> None:  # type: ignore[no-untyped-def]
    cp = await make_cp(nats_server.url)
    js = nc.jetstream()
    edge = EdgeSim("de-1")
    for i in range(6):
        edge.add("bet.placed", {"bet_id": f"b{i}", "amount": 100})
    e = edge.entries
    await edge.publish_all(js, [e[0], e[1], e[4]])  # 3 and 4 missing: a gap
    await wait_for(lambda: held(cp, "de-1") == 3)
    async with operator(cp) as http:
        a = (await http.get("/v1/audit/edges/de-1")).json()
        assert not a["ok"] and a["open_gaps"] == [[3, 4]] and a["contiguous_seq"] == 2
        await edge.publish_all(js, [e[3], e[2], e[5]])  # late arrivals: reordering
        await wait_for(lambda: held(cp, "de-1") == 6)
        # A fork: seq 2 again with other content (the history was rewritten at the edge).
        forged = J.make_entry(2, e[1]["ts"], "bet.placed", {"bet_id": "b1", "amount": 1_000_000}, e[0]["hash"])
        await edge.publish(js, forged, "de-1:2:forged")
        # Content that does not hash to its claimed hash.
        tampered = dict(e[5], seq=7, prev=e[5]["hash"], data={"x": 1})
        await edge.publish(js, tampered, "de-1:7")
        await wait_for(lambda: cp.metrics.audit_flags.labels("de-1", "hash_mismatch")._value.get() == 1)

        async def committed() -> dict | None:  # the metric counts inside the transaction, before its commit
            got = (await http.get("/v1/audit/edges/de-1")).json()
            return got if any(f["kind"] == "hash_mismatch" for f in got["flags"]) else None

        a = await wait_for(committed, what="the flags committed")
    kinds = {(f["kind"], f["seq"]) for f in a["flags"]}
    assert ("gap", 3) in kinds and ("reorder", 4) in kinds and ("reorder", 3) in kinds
    assert ("fork", 2) in kinds and ("hash_mismatch", 7) in kinds
    assert a["open_gaps"] == [] and a["contiguous_seq"] == 6 and not a["chain_ok"] and not a["ok"]


async def test_chain_break_detected_on_linkage(nats_server, nc, make_cp) -> None:  # type: ignore[no-untyped-def]
    cp = await make_cp(nats_server.url)
    js = nc.jetstream()
    edge = EdgeSim("gr-1")
    edge.add("bet.placed", {"bet_id": "a"})
    # Seq 2 is well-formed and hashes correctly, but it links to something else than seq 1.
    bad = J.make_entry(2, 1, "bet.placed", {"bet_id": "b"}, "ab" * 32)
    await edge.publish_all(js)
    await edge.publish(js, bad)
    # Redacted entries cannot be rehashed in the cloud; their linkage still is checked.
    red = {**J.make_entry(3, 1, "player.registered", {"player": "p"}, bad["hash"]), "redacted": ["name"]}
    red["hash"] = "cd" * 32
    await nc.jetstream().publish(S.journal_subject("gr-1"), json.dumps(red).encode(),
                                 headers={"Nats-Msg-Id": "gr-1:3"})
    await wait_for(lambda: held(cp, "gr-1") == 3)
    async with operator(cp) as http:
        a = (await http.get("/v1/audit/edges/gr-1")).json()
    assert [(f["kind"], f["seq"]) for f in a["flags"]] == [("chain_break", 2)]
    assert a["contiguous_seq"] == 3 and not a["chain_ok"]
