"""Deposits, KYC, withdrawals and payouts end to end over a real nats-server; global exclusion."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from contract import sync as S
from control_plane.adapters.db.models import commands, deposits, withdrawals
from tests.control_plane.conftest import EdgeSim, commands_on, operator, wait_for


def status_of(cp: Any, table: Any, key: str) -> str | None:
    col = table.c.deposit_id if table is deposits else table.c.withdrawal_id
    with cp.engine.connect() as c:
        return c.execute(select(table.c.status).where(col == key)).scalar()


async def cmds(nc: Any, edge: str, type_: str) -> list[dict[str, Any]]:
    return [x for x in await commands_on(nc, edge) if x["type"] == type_]


async def register(cp: Any, *edges: tuple[str, str]) -> None:
    async with operator(cp) as http:
        for eid, jur in edges:
            r = await http.post("/v1/edges", json={"id": eid, "jurisdiction": jur, "public_url": f"https://{eid}"})
            assert r.status_code == 201, r.text


async def verify_kyc(edge: EdgeSim, js: Any, cp: Any, player: str) -> None:
    await edge.publish(js, edge.add(S.KYC_REQUESTED, {"player": player, "reference": f"doc-{player}"}))
    await wait_for(lambda: cp.kyc.get("MT", player)["status"] == "verified", what="kyc verified")


async def test_deposit_credit_and_refused_deposit_refunded_once(nats_server, nc, make_cp) -> None:  # type: ignore[no-untyped-def]
    cp = await make_cp(nats_server.url)
    await register(cp, ("mt-1", "MT"))
    js = nc.jetstream()
    edge = EdgeSim("mt-1")
    await edge.publish(js, edge.add(S.DEPOSIT_REQUESTED, {"deposit_id": "dep-1", "player": "p1", "amount": 5_000,
                                                          "currency": "EUR", "method": "card"}))
    await edge.publish(js, edge.add(S.DEPOSIT_REQUESTED, {"deposit_id": "dep-2", "player": "p1", "amount": 900_000,
                                                          "currency": "EUR", "method": "card"}))
    await edge.publish(js, edge.add(S.DEPOSIT_REQUESTED, {"deposit_id": "dep-3", "player": "p1", "amount": 100,
                                                          "currency": "EUR", "method": "declined_card"}))
    got = await wait_for(lambda: _n(cmds(nc, "mt-1", "deposit.credit"), 2), what="two credits")
    assert {c["deposit_id"]: c["amount"] for c in got} == {"dep-1": 5_000, "dep-2": 900_000}
    await wait_for(lambda: status_of(cp, deposits, "dep-3") == "failed")
    # The declined payment closes the request at the edge: one deposit.declined command, no credit.
    declined = await wait_for(lambda: _n(cmds(nc, "mt-1", "deposit.declined"), 1), what="decline command")
    assert [(c["deposit_id"], c["amount"], c["reason"]) for c in declined] == [("dep-3", 100, "card_declined")]
    # The edge credits one and refuses the other (RG deposit limit), each entry delivered three times.
    e1 = edge.add(S.DEPOSIT_CREDITED, {"deposit_id": "dep-1", "player": "p1", "amount": 5_000, "currency": "EUR"})
    e2 = edge.add(S.DEPOSIT_REFUSED, {"deposit_id": "dep-2", "player": "p1", "amount": 900_000, "currency": "EUR",
                                      "reason": "deposit_limit"})
    for suffix in ("", ":x", ":y"):
        await edge.publish_all(js, [e1, e2], suffix)
    await wait_for(lambda: status_of(cp, deposits, "dep-2") == "refunded", what="refund")
    assert status_of(cp, deposits, "dep-1") == "credited"
    assert cp.psp.count_refunds("dep-2") == 1 and cp.psp.count_refunds() == 1
    # CDD: the 9,000 EUR deposit reached the EUR 2,000 linked threshold.
    async with operator(cp) as http:
        flags = (await http.get("/v1/aml/flags", params={"player": "p1"})).json()["flags"]
    assert [(f["kind"], f["ref_id"]) for f in flags] == [("cdd", "dep-2")]


async def _n(coro: Any, n: int) -> Any:
    got = await coro
    return got if len(got) >= n else None


async def test_withdrawal_paid_once_under_redelivery_and_restart(nats_server, nc, make_cp) -> None:  # type: ignore[no-untyped-def]
    cp = await make_cp(nats_server.url)
    await register(cp, ("mt-1", "MT"))
    js = nc.jetstream()
    edge = EdgeSim("mt-1")
    await verify_kyc(edge, js, cp, "p1")
    kyc_cmds = await wait_for(lambda: _n(cmds(nc, "mt-1", "kyc.result"), 2), what="kyc commands")
    assert [c["status"] for c in kyc_cmds] == ["pending", "verified"]

    w_bank = edge.add(S.WITHDRAWAL_REQUESTED, {"withdrawal_id": "w-bank", "player": "p1", "amount": 10_000,
                                               "currency": "EUR", "rail": "bank"})
    w_crypto = edge.add(S.WITHDRAWAL_REQUESTED, {"withdrawal_id": "w-crypto", "player": "p1", "amount": 20_000,
                                                 "currency": "EUR", "rail": "crypto"})
    w_unverified = edge.add(S.WITHDRAWAL_REQUESTED, {"withdrawal_id": "w-nokyc", "player": "p2", "amount": 1_000,
                                                     "currency": "EUR", "rail": "bank"})
    for suffix in ("", ":a", ":b"):
        await edge.publish_all(js, [w_bank, w_crypto, w_unverified], suffix)
    results = await wait_for(lambda: _n(cmds(nc, "mt-1", "payout.result"), 3), what="payout results")
    by_id = {r["withdrawal_id"]: r for r in results}
    assert by_id["w-bank"]["status"] == "paid" and by_id["w-crypto"]["status"] == "paid"
    assert by_id["w-nokyc"] == {**by_id["w-nokyc"], "status": "refused", "reason": "kyc_unverified"}

    # Restart the control plane and deliver every withdrawal entry yet again.
    await cp.stop()
    cp2 = await make_cp(nats_server.url)
    await edge.publish_all(js, [w_bank, w_crypto, w_unverified], ":after-restart")
    await wait_for(lambda: cp2.metrics.entries_duplicate.labels("mt-1")._value.get() >= 3)
    await cp2.processor.run_once()
    await cp2.publish_pending()
    assert cp2.rails["bank"].count_payouts() == 1 and cp2.rails["crypto"].count_payouts() == 1
    assert len(await cmds(nc, "mt-1", "payout.result")) == 3
    # Force the outbox to publish every command again: same ids, so JetStream drops them (and an
    # edge applies an id once in any case).
    with cp2.engine.begin() as c:
        c.execute(update(commands).values(published_ts=None))
    assert await cp2.publish_pending() >= 3
    again = await cmds(nc, "mt-1", "payout.result")
    assert sorted(r["id"] for r in again) == sorted(f"payout.result:{w}" for w in ("w-bank", "w-crypto", "w-nokyc"))
    # The edge journals the payout; the cloud closes the withdrawal.
    await edge.publish(js, edge.add(S.WITHDRAWAL_PAID, {"withdrawal_id": "w-bank", "player": "p1", "amount": 10_000,
                                                        "currency": "EUR", "rail_ref": by_id["w-bank"]["rail_ref"]}))
    await wait_for(lambda: status_of(cp2, withdrawals, "w-bank") == "settled")


async def test_structuring_goes_to_manual_review(nats_server, nc, make_cp) -> None:  # type: ignore[no-untyped-def]
    cp = await make_cp(nats_server.url)
    await register(cp, ("mt-1", "MT"))
    js = nc.jetstream()
    edge = EdgeSim("mt-1")
    await verify_kyc(edge, js, cp, "p9")
    for i, amount in enumerate((195_000, 192_000, 199_000, 185_000)):
        await edge.publish(js, edge.add(S.WITHDRAWAL_REQUESTED, {
            "withdrawal_id": f"s{i}", "player": "p9", "amount": amount, "currency": "EUR", "rail": "bank"}))
    await wait_for(lambda: status_of(cp, withdrawals, "s3") == "review", what="s3 in review")
    assert status_of(cp, withdrawals, "s2") == "review"  # third amount just under EUR 2,000 in the window
    async with operator(cp) as http:
        queue = (await http.get("/v1/reviews")).json()["reviews"]
        assert [q["withdrawal_id"] for q in queue] == ["s2", "s3"]
        assert any(f["kind"] == "structuring" for f in queue[0]["flags"])
        assert (await http.post("/v1/reviews/s2/approve", json={"reason": "source of funds checked"})).status_code == 200
        assert (await http.post("/v1/reviews/s3/refuse")).status_code == 200
        again = await http.post("/v1/reviews/s3/approve")
        assert again.status_code == 409 and again.json()["error"]["code"] == "not_in_review"
    res = await wait_for(lambda: _n(cmds(nc, "mt-1", "payout.result"), 4), what="4 results")
    assert {r["withdrawal_id"]: r["status"] for r in res} == {"s0": "paid", "s1": "paid", "s2": "paid", "s3": "refused"}
    assert cp.rails["bank"].count_payouts() == 3


async def test_ctr_flag_aggregates_a_gaming_day(nats_server, nc, make_cp) -> None:  # type: ignore[no-untyped-def]
    cp = await make_cp(nats_server.url)
    await register(cp, ("nj-1", "NJ"))
    js = nc.jetstream()
    edge = EdgeSim("nj-1")
    await edge.publish(js, edge.add(S.KYC_REQUESTED, {"player": "u1", "reference": "doc"}))
    await wait_for(lambda: cp.kyc.get("NJ", "u1")["status"] == "verified")
    await edge.publish(js, edge.add(S.DEPOSIT_REQUESTED, {"deposit_id": "ud", "player": "u1", "amount": 700_000,
                                                          "currency": "USD", "method": "card"}))
    await wait_for(lambda: status_of(cp, deposits, "ud") == "confirmed")
    await edge.publish(js, edge.add(S.WITHDRAWAL_REQUESTED, {"withdrawal_id": "uw", "player": "u1", "amount": 300_001,
                                                             "currency": "USD", "rail": "bank"}))
    await wait_for(lambda: status_of(cp, withdrawals, "uw") == "paid")
    async with operator(cp) as http:
        flags = (await http.get("/v1/aml/flags", params={"kind": "ctr"})).json()["flags"]
    assert [f["ref_id"] for f in flags] == ["uw"]  # reported, not held


async def test_global_self_exclusion_reaches_every_other_edge(nats_server, nc, make_cp) -> None:  # type: ignore[no-untyped-def]
    cp = await make_cp(nats_server.url)
    await register(cp, ("mt-1", "MT"), ("de-1", "DE"), ("nj-1", "NJ"))
    js = nc.jetstream()
    edge = EdgeSim("mt-1")
    e = edge.add(S.PLAYER_EXCLUDED, {"player": "p1", "until_ts": 1_900_000_000_000, "kind": "self_exclusion",
                                     "origin": "mt-1"})
    await edge.publish(js, e)
    await edge.publish(js, e, "again")
    for target in ("de-1", "nj-1"):
        got = await wait_for(lambda t=target: _n(cmds(nc, t, "player.exclude"), 1), what=f"exclude on {target}")
        assert len(got) == 1 and got[0]["player"] == "p1" and got[0]["origin_edge"] == "mt-1"
        assert got[0]["until_ts"] == 1_900_000_000_000
    assert await cmds(nc, "mt-1", "player.exclude") == []
