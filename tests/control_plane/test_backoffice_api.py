"""The API under the back office: jurisdiction scoping of operators, the operator action log, the
table projection from edge journals, table commands to the edge, and the page's static assets."""
from __future__ import annotations

import json
from typing import Any

from contract import journal as J
from contract import sync as S
from tests.control_plane.conftest import EdgeSim, client, operator, token, wait_for


def apply(cp: Any, edge: EdgeSim, kind: str, data: dict[str, Any]) -> None:
    cp.applier.apply(edge.edge_id, S.SyncedEntry(**edge.add(kind, data)))


async def two_jurisdictions(cp: Any) -> tuple[EdgeSim, EdgeSim]:
    """mt-1 (MT) and on-1 (ON), each with a verified player and two withdrawals held for review."""
    async with operator(cp) as http:
        for eid, jur in (("mt-1", "MT"), ("on-1", "ON")):
            assert (await http.post("/v1/edges", json={"id": eid, "jurisdiction": jur})).status_code == 201
    mt, on = EdgeSim("mt-1"), EdgeSim("on-1")
    for edge, jur, cur in ((mt, "MT", "EUR"), (on, "ON", "EUR")):
        apply(cp, edge, S.KYC_REQUESTED, {"player": f"p-{jur}", "reference": "doc"})
        await wait_for(lambda j=jur: cp.kyc.get(j, f"p-{j}")["status"] == "verified", what=f"{jur} kyc")
        for i, amount in enumerate((195_000, 192_000, 199_000)):
            apply(cp, edge, S.WITHDRAWAL_REQUESTED, {"withdrawal_id": f"{jur}-w{i}", "player": f"p-{jur}",
                                                     "amount": amount, "currency": cur, "rail": "bank"})
    await wait_for(lambda: len(cp.app.state.services.reviews.queue()) == 2, what="two reviews")
    return mt, on


async def test_operators_see_and_act_on_their_own_jurisdiction_only(make_cp) -> None:  # type: ignore[no-untyped-def]
    cp = await make_cp(None)
    await two_jurisdictions(cp)
    async with client(cp, token(cp, "olga", "operator", "ON")) as on_ops, \
            client(cp, token(cp, "mark", "operator", "MT")) as mt_ops, operator(cp) as head:
        assert (await on_ops.get("/v1/whoami")).json() == {"sub": "olga", "role": "operator",
                                                           "jurisdiction": "ON", "scope": "ON"}
        assert (await head.get("/v1/whoami")).json()["scope"] is None
        assert [r["withdrawal_id"] for r in (await on_ops.get("/v1/reviews")).json()["reviews"]] == ["ON-w2"]
        assert [r["withdrawal_id"] for r in (await mt_ops.get("/v1/reviews")).json()["reviews"]] == ["MT-w2"]
        assert len((await head.get("/v1/reviews")).json()["reviews"]) == 2
        assert [e["id"] for e in (await on_ops.get("/v1/edges")).json()["edges"]] == ["on-1"]
        assert {w["jurisdiction"] for w in (await on_ops.get("/v1/withdrawals")).json()["withdrawals"]} == {"ON"}
        assert {k["jurisdiction"] for k in (await on_ops.get("/v1/kyc")).json()["kyc"]} == {"ON"}
        assert {f["jurisdiction"] for f in (await on_ops.get("/v1/aml/flags")).json()["flags"]} == {"ON"}
        assert all(c["edge_id"] == "on-1" for c in (await on_ops.get("/v1/commands")).json()["commands"])

        # Acting across the border is refused and changes nothing.
        r = await on_ops.post("/v1/reviews/MT-w2/approve", json={"reason": "not mine"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        r = await on_ops.post("/v1/kyc/MT/p-MT/status", json={"status": "suspended", "reason": "x"})
        assert r.status_code == 403
        assert (await on_ops.get("/v1/withdrawals/MT-w2")).status_code == 403
        assert (await on_ops.get("/v1/audit/edges/mt-1")).status_code == 403
        r = await on_ops.post("/v1/edges", json={"id": "mt-9", "jurisdiction": "MT"})
        assert r.status_code == 403
        assert cp.app.state.services.withdrawals.get("MT-w2")["status"] == "review"
        assert cp.kyc.get("MT", "p-MT")["status"] == "verified"
        assert (await head.get("/v1/operator-actions")).json()["actions"] == []

        # Within it: decided, with the operator and the reason on record.
        r = await on_ops.post("/v1/reviews/ON-w2/refuse", json={"reason": "third cash-out under the threshold"})
        assert r.status_code == 200 and r.json()["status"] == "refused"
        r = await mt_ops.post("/v1/kyc/MT/p-MT/status", json={"status": "edd_required", "reason": "PEP match"})
        assert r.status_code == 200 and r.json()["status"] == "edd_required"
        log = (await head.get("/v1/operator-actions")).json()["actions"]
        assert [(a["operator"], a["jurisdiction"], a["action"], a["target"], a["reason"]) for a in log] == [
            ("mark", "MT", "kyc.edd_required", "p-MT", "PEP match"),
            ("olga", "ON", "review.refuse", "ON-w2", "third cash-out under the threshold")]
        assert log[1]["detail"] == {"amount": 199_000, "currency": "EUR", "player": "p-ON"}
        assert [a["action"] for a in (await on_ops.get("/v1/operator-actions")).json()["actions"]] == ["review.refuse"]
        kyc_mt = (await mt_ops.get("/v1/kyc?status=edd_required")).json()["kyc"]
        assert [k["player"] for k in kyc_mt] == ["p-MT"]
        assert kyc_mt[0]["next"] == ["pending", "rejected", "suspended", "verified"]


async def test_tables_are_projected_from_the_journal_and_controlled_by_command(make_cp) -> None:  # type: ignore[no-untyped-def]
    cp = await make_cp(None)
    async with operator(cp) as head:
        for eid, jur in (("mt-1", "MT"), ("on-1", "ON")):
            assert (await head.post("/v1/edges", json={"id": eid, "jurisdiction": jur})).status_code == 201
    mt, on = EdgeSim("mt-1"), EdgeSim("on-1")
    apply(cp, mt, S.TABLE_RULES, {"table_id": "roulette-1", "version": 1, "game": "roulette", "limits": {}})
    apply(cp, mt, S.TABLE_FEED, {"table_id": "roulette-1", "live": True, "reason": "feed_resumed"})
    apply(cp, mt, J.ROUND_OPENED, {"table_id": "roulette-1", "chain_id": "c1", "n": 7, "game": "roulette"})
    apply(cp, on, S.TABLE_RULES, {"table_id": "baccarat-1", "version": 1, "game": "baccarat", "limits": {}})
    apply(cp, mt, "bet.placed", {"bet_id": "b1", "table_id": "roulette-1"})  # not a table fact: ignored

    async with client(cp, token(cp, "mark", "operator", "MT")) as mt_ops, \
            client(cp, token(cp, "olga", "operator", "ON")) as on_ops:
        tables = (await mt_ops.get("/v1/tables")).json()["tables"]
        assert [(t["edge_id"], t["table_id"], t["game"], t["enabled"], t["feed_live"], t["round_n"])
                for t in tables] == [("mt-1", "roulette-1", "roulette", True, True, 7)]
        assert [t["table_id"] for t in (await on_ops.get("/v1/tables")).json()["tables"]] == ["baccarat-1"]

        # A void names the round the operator saw; a retry with the same key is the same command.
        headers = {"Idempotency-Key": "k" * 16}
        r = await mt_ops.post("/v1/edges/mt-1/tables/roulette-1/void", json={"reason": "dealer error"},
                              headers=headers)
        assert r.status_code == 202 and r.json()["round_n"] == 7, r.text
        again = await mt_ops.post("/v1/edges/mt-1/tables/roulette-1/void", json={"reason": "dealer error"},
                                  headers=headers)
        assert again.json()["command_id"] == r.json()["command_id"]
        cmds = [c for c in (await mt_ops.get("/v1/commands?edge_id=mt-1")).json()["commands"]
                if c["type"] == "table.control"]
        assert len(cmds) == 1
        cmd = S.parse_command(json.dumps(cmds[0]["body"]))
        assert isinstance(cmd, S.TableControl)
        assert (cmd.action, cmd.table_id, cmd.chain_id, cmd.round_n, cmd.by) == ("void", "roulette-1", "c1", 7, "mark")

        # Bad requests: named errors, nothing queued.
        for path, body, status, code in [
                ("/v1/edges/mt-1/tables/roulette-1/void", {"reason": ""}, 422, "invalid_request"),
                ("/v1/edges/mt-1/tables/roulette-1/explode", {"reason": "x"}, 422, "invalid_request"),
                ("/v1/edges/mt-1/tables/nope/disable", {"reason": "x"}, 404, "unknown_table"),
                ("/v1/edges/zz-1/tables/roulette-1/disable", {"reason": "x"}, 404, "unknown_edge"),
                ("/v1/edges/on-1/tables/baccarat-1/void", {"reason": "x"}, 403, "forbidden")]:
            r = await mt_ops.post(path, json=body)
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), (path, r.text)
        r = await on_ops.post("/v1/edges/on-1/tables/baccarat-1/void", json={"reason": "x"})
        assert (r.status_code, r.json()["error"]["code"]) == (409, "no_round_in_progress")

        # What the edge journals back moves the projection (and only forward in seq).
        apply(cp, mt, J.ROUND_VOIDED, {"table_id": "roulette-1", "chain_id": "c1", "n": 7, "reason": "dealer error",
                                       "refunds": []})
        apply(cp, mt, S.TABLE_STATUS, {"table_id": "roulette-1", "enabled": False, "reason": "maintenance",
                                       "by": "mark"})
        t = (await mt_ops.get("/v1/tables")).json()["tables"][0]
        assert (t["enabled"], t["status_reason"], t["round_n"], t["last_void_n"], t["last_void_reason"]) == (
            False, "maintenance", None, 7, "dealer error")
        log = (await mt_ops.get("/v1/operator-actions")).json()["actions"]
        assert [(a["action"], a["target"], a["reason"]) for a in log] == [
            ("table.void", "mt-1/roulette-1", "dealer error")]

        # After a partition entries can arrive out of order: an older fact never overwrites a newer one.
        older = mt.add(S.TABLE_STATUS, {"table_id": "roulette-1", "enabled": False, "reason": "older", "by": "x"})
        newer = mt.add(S.TABLE_STATUS, {"table_id": "roulette-1", "enabled": True, "reason": "newer", "by": "x"})
        for e in (newer, older):
            cp.applier.apply("mt-1", S.SyncedEntry(**e))
        t = (await mt_ops.get("/v1/tables")).json()["tables"][0]
        assert (t["enabled"], t["status_reason"], t["updated_seq"]) == (True, "newer", newer["seq"])


async def test_a_payout_under_way_shows_what_the_rail_says(make_cp) -> None:  # type: ignore[no-untyped-def]
    cp = await make_cp(None, rails={"crypto": {"confirmations": 1000, "block_interval_s": 60}})
    async with operator(cp) as head:
        assert (await head.post("/v1/edges", json={"id": "mt-1", "jurisdiction": "MT"})).status_code == 201
        mt = EdgeSim("mt-1")
        apply(cp, mt, S.KYC_REQUESTED, {"player": "p", "reference": "doc"})
        await wait_for(lambda: cp.kyc.get("MT", "p")["status"] == "verified", what="kyc")
        apply(cp, mt, S.WITHDRAWAL_REQUESTED, {"withdrawal_id": "w-btc", "player": "p", "amount": 5_000,
                                               "currency": "EUR", "rail": "crypto"})
        apply(cp, mt, S.WITHDRAWAL_REQUESTED, {"withdrawal_id": "w-bank", "player": "p", "amount": 5_000,
                                               "currency": "EUR", "rail": "bank"})

        async def listed() -> dict[str, Any]:
            rows = (await head.get("/v1/withdrawals")).json()["withdrawals"]
            return {w["withdrawal_id"]: w for w in rows}

        async def settled_states() -> bool:
            ws = await listed()
            return ws.get("w-btc", {}).get("status") == "paying" and ws.get("w-bank", {}).get("status") == "paid"

        await wait_for(settled_states, what="crypto paying, bank paid")
        ws = await listed()
        assert ws["w-btc"]["rail_status"] == {"status": "pending", "confirmations": 0}
        assert ws["w-bank"]["rail_status"] is None and ws["w-bank"]["rail_ref"].startswith("SEPA-")
        assert [w["withdrawal_id"] for w in (await head.get("/v1/withdrawals?status=paying")).json()["withdrawals"]
                ] == ["w-btc"]


async def test_the_page_is_served_from_the_package_with_a_strict_policy(make_cp) -> None:  # type: ignore[no-untyped-def]
    cp = await make_cp(None)
    async with client(cp) as http:
        r = await http.get("/backoffice")
        assert r.status_code == 308 and r.headers["location"] == "/backoffice/"
        page = await http.get("/backoffice/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
        for src in ("/backoffice/backoffice.js", "/backoffice/backoffice.css"):
            assert f'"{src}"' in page.text
            assert (await http.get(src)).status_code == 200
        assert "http" not in page.text.replace("http-equiv", "")  # nothing loaded from elsewhere
        r = await http.get("/backoffice/..%2Fapp.py")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        # The page holds no data: every API call needs the operator token.
        assert (await http.get("/v1/tables")).status_code == 401
    async with client(cp, token(cp, "p", "player", "MT")) as player:
        assert (await player.get("/v1/tables")).status_code == 403


def test_the_scope_rule() -> None:
    from contract import tokens
    from control_plane.http.auth import scope

    def p(role: str, jur: str) -> tokens.Principal:
        return tokens.Principal("x", role, jur, 0)  # type: ignore[arg-type]

    assert scope(p("operator", "*")) is None and scope(p("admin", "*")) is None
    assert scope(p("operator", "ON")) == "ON" and scope(p("regulator", "ON")) == "ON"
    assert scope(p("regulator", "*")) == "*"  # a regulator of "*" matches no jurisdiction at all
