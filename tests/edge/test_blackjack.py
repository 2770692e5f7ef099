"""Blackjack at the edge: the play phase through the real engine, wallet and journal.

Every decision refusal changes nothing; double and split take their stake at once under the bet's
money rules; a void mid-step refunds every stake; every settled round verifies."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from contract import blackjack as BJ
from contract.verify import verify_entries
from edge_agent.api.app import create_app
from edge_agent.casino import Casino
from edge_agent.domain.errors import DomainError
from tests.edge.conftest import edge_config, fund, player_token

TABLE = "bj-1"


def bj_config(tmp: Path, window: float = 5.0, **kw: Any) -> Any:
    return edge_config(tmp, tables=[{
        "table_id": TABLE, "game": "blackjack", "betting_window_s": 30, "reveal_s": 0,
        "options": {"decision_window_s": window},
        "limits": {"min_bet": 100, "max_bet_per_spot": 1_000, "max_per_round": 1_000}}], **kw)


@pytest.fixture
async def bj(tmp_path: Path) -> AsyncIterator[Casino]:
    c = Casino(bj_config(tmp_path))
    await c.start(run_tables=False)
    yield c
    await c.stop()
    c.close()


def stack(monkeypatch: pytest.MonkeyPatch, top: list[str]) -> None:
    """Deal from a shoe starting with `top` (tens after it), for the edge and the verifier alike:
    everything but the shuffle is still checked."""
    shoe = list(top) + ["TS"] * (416 - len(top))
    monkeypatch.setattr(BJ, "shoe", lambda seed, cs, n: list(shoe))


class Round:
    """Drive one round: bets, the play phase as a task, table events as they come."""

    def __init__(self, casino: Casino) -> None:
        self.c = casino
        self.events = casino.events.subscribe(f"table:{TABLE}")
        self.task: asyncio.Task[Any] | None = None

    async def start(self, bets: dict[str, int]) -> dict[str, Any]:
        self.c.open_round(TABLE)
        self.receipts = {p: await self.c.bet(p, TABLE, BJ.SPOT, a) for p, a in bets.items()}
        self.task = asyncio.create_task(self.c.settle_round(TABLE))
        return await self.next("blackjack.dealt")

    async def next(self, *kinds: str) -> dict[str, Any]:
        while True:
            ev = await asyncio.wait_for(self.events.get(), 10)
            if ev is not None and ev.get("type") in kinds:
                return ev

    async def stand_out(self, psns: list[str], step: int) -> None:
        """Everyone stands from `step` on, until the players' phase ends."""
        while True:
            for p in psns:
                try:
                    await self.act(p, "stand", step)
                except DomainError:
                    pass
            ev = await self.next("blackjack.card", "blackjack.dealer")
            if ev["type"] == "blackjack.dealer" or not ev.get("next_step"):
                return
            step = ev["next_step"]

    async def act(self, psn: str, action: str, step: int | None = None) -> dict[str, Any]:
        msg: dict[str, Any] = {"action": action}
        if step is not None:
            msg["step"] = step
        return await self.c.act(psn, TABLE, msg)

    async def finish(self) -> dict[str, Any]:
        assert self.task is not None
        e = await asyncio.wait_for(self.task, 30)
        self.c.events.unsubscribe(self.events)
        await self.c.store.durable(self.c.store.seq)  # entries() reads what is on disk
        return e


async def players(c: Casino, *names: str, amount: int = 100_000) -> list[str]:
    out = []
    for n in names:
        psn = c.ensure_player(n)
        await fund(c, psn, amount)
        out.append(psn)
    return out


def entries(c: Casino) -> list[dict[str, Any]]:
    return list(c.store.iter_all())


async def refused(c: Casino, coro: Any, code: str) -> None:
    """The decision is refused with `code` and nothing changes: no journal entry, no money moved."""
    seq, cash = c.store.seq, dict(c.state.ledger.balances)
    with pytest.raises(DomainError) as exc:
        await coro
    assert exc.value.code == code, exc.value.as_dict()
    assert c.store.seq == seq and dict(c.state.ledger.balances) == cash


async def test_round_plays_settles_and_verifies(bj: Casino, monkeypatch: pytest.MonkeyPatch) -> None:
    # shared 5,6 (11) vs dealer 9; step 1 card T; step 2 card 2; dealer 9 then 7 (16) then T: bust.
    stack(monkeypatch, ["5S", "9H", "6D", "TC", "2D", "7S", "TH"])
    a, b, c = await players(bj, "a", "b", "c")
    rnd = Round(bj)
    dealt = await rnd.start({a: 100, b: 200, c: 300})
    assert dealt["hand"] == ["5S", "6D"] and dealt["dealer_up"] == "9H" and dealt["players"] == 3
    assert dealt["next_step"] == 1 and dealt["closes_ts"] > bj.clock()
    cash_a = bj.state.cash(a)
    ack = await rnd.act(a, "double", 1)
    assert ack["amount"] == 100 and bj.state.cash(a) == cash_a - 100  # the extra stake left at once
    await rnd.act(b, "hit", 1)
    await rnd.act(c, "stand", 1)  # everyone decided: the window closes early
    card = await rnd.next("blackjack.card")
    assert card["step"] == 1 and card["card"] == "TC" and card["takers"] == 2
    # a's and b's 5+6+T = 21 finish their hands, c stood: nobody is left to decide
    e = await rnd.finish()
    d = e["data"]
    assert d["outcome"]["steps"] == 1
    assert d["outcome"]["dealer"] == ["9H", "2D", "7S"]  # 18
    pay = {p["bet_id"]: p["payout"] for p in d["payouts"]}
    assert pay[rnd.receipts[a]["bet_id"]] == 400    # doubled 21 beats 18
    assert pay[rnd.receipts[b]["bet_id"]] == 400    # 21 beats 18
    assert pay[rnd.receipts[c]["bet_id"]] == 0      # 11 stood, loses
    assert bj.state.ledger.total() == 0
    assert all(bj.state.in_play(p) == 0 for p in (a, b, c))
    assert verify_entries(entries(bj)).ok


async def test_unstacked_rounds_verify(bj: Casino) -> None:
    """Real shuffles, players deciding by the simulation's strategy: every round verifies."""
    import random

    from edge_agent.blackjack_strategy import decide

    ps = await players(bj, *[f"u{i}" for i in range(5)])
    rng = random.Random(4)
    for _ in range(4):
        rnd = Round(bj)
        dealt = await rnd.start({p: 100 for p in ps})
        step = dealt.get("next_step")
        while step:
            phase = bj.rounds.phase(TABLE)
            for p in ps:
                v = phase.view(p) if phase else None
                if v and v["allowed"]:
                    h = next(h for h in v["hands"] if not h["done"])
                    try:
                        await rnd.act(p, decide(rng, h["cards"], v["dealer_up"], v["allowed"], 0.3), step)
                    except DomainError as err:
                        assert err.code in ("insufficient_funds", "not_in_play"), err.code
            ev = await rnd.next("blackjack.card", "blackjack.dealer")
            step = ev.get("next_step") if ev["type"] == "blackjack.card" else None
        await rnd.finish()
    report = verify_entries(entries(bj))
    assert report.ok and report.rounds_verified == 4, report.problems


async def test_every_decision_refusal_changes_nothing(bj: Casino, monkeypatch: pytest.MonkeyPatch) -> None:
    # shared 8,8 vs dealer 6; step cards 2, 3, 4 ...
    stack(monkeypatch, ["8S", "6H", "8D", "2C", "3D", "4H", "5S", "2S", "2H"])
    a, b, c, d = await players(bj, "a", "b", "c", "d")
    outsider = (await players(bj, "outsider"))[0]
    rnd = Round(bj)
    await rnd.start({a: 100, b: 100, c: 100, d: 100})
    await refused(bj, bj.bet(a, TABLE, BJ.SPOT, 100), "betting_closed")
    await refused(bj, rnd.act(outsider, "hit", 1), BJ.NO_BET)
    await refused(bj, rnd.act(a, "surrender", 1), BJ.UNKNOWN_ACTION)
    await refused(bj, rnd.act(a, "hit", 2), BJ.DECISIONS_CLOSED)       # not the open step
    await rnd.act(a, "stand", 1)
    await refused(bj, rnd.act(a, "hit", 1), BJ.ALREADY_DECIDED)
    await rnd.act(b, "hit", 1)
    await rnd.act(c, "split", 1)
    await rnd.act(d, "hit", 1)
    await rnd.next("blackjack.card")                                   # 2C: b 18, c 8+2 | 8, d 18
    await refused(bj, rnd.act(a, "stand", 2), BJ.HAND_FINISHED)        # stand on a finished hand
    await refused(bj, rnd.act(b, "double", 2), BJ.DOUBLE_NOT_ALLOWED)  # double on three cards
    await refused(bj, rnd.act(c, "split", 2), BJ.ALREADY_SPLIT)        # a second split
    await refused(bj, rnd.act(b, "split", 2), BJ.SPLIT_NOT_ALLOWED)    # three cards are no pair
    await refused(bj, rnd.act(c, "hit", 1), BJ.DECISIONS_CLOSED)       # after that step's window
    await rnd.act(b, "stand", 2)
    await rnd.act(c, "stand", 2)                                       # c's split hand takes 3D
    await rnd.act(d, "stand", 2)
    card = await rnd.next("blackjack.card")
    assert card["card"] == "3D" and card["takers"] == 1 and card["next_step"] == 3
    await refused(bj, rnd.act(c, "split", 3), BJ.ALREADY_SPLIT)
    await rnd.act(c, "stand", 3)
    e = await rnd.finish()
    await refused(bj, rnd.act(b, "hit", 3), "not_in_play")              # the round is over
    report = verify_entries(entries(bj))
    assert report.ok, report.problems
    assert e["data"]["outcome"]["steps"] == 2


async def test_double_and_split_need_funds_and_respect_limits(bj: Casino, monkeypatch: pytest.MonkeyPatch) -> None:
    stack(monkeypatch, ["8S", "6H", "8D", "2C", "3D", "4H", "TS"])
    poor, limited, rich = await players(bj, "poor", "limited", "rich", amount=150)
    await fund(bj, rich, 100_000)
    bj.set_limit(limited, "loss", "24h", 120)
    rnd = Round(bj)
    await rnd.start({poor: 100, limited: 100, rich: 1_000})
    await refused(bj, rnd.act(poor, "double", 1), "insufficient_funds")
    await refused(bj, rnd.act(poor, "split", 1), "insufficient_funds")
    await refused(bj, rnd.act(limited, "double", 1), "loss_limit_reached")
    # The hand stays open: the poor player may still hit. Table limits bind the main stake only.
    await rnd.act(poor, "hit", 1)
    ack = await rnd.act(rich, "split", 1)
    assert ack["amount"] == 1_000 and ack["stake"] == 2_000
    await rnd.act(limited, "stand", 1)
    await rnd.next("blackjack.card")
    await rnd.stand_out([poor, rich], 2)
    e = await rnd.finish()
    assert verify_entries(entries(bj)).ok
    assert bj.state.ledger.total() == 0 and e["kind"] == "round.settled"


async def test_void_mid_step_refunds_every_stake(bj: Casino, monkeypatch: pytest.MonkeyPatch) -> None:
    stack(monkeypatch, ["8S", "6H", "8D", "2C", "3D", "4H", "TS"])
    a, b = await players(bj, "a", "b")
    before = {p: bj.state.cash(p) for p in (a, b)}
    rnd = Round(bj)
    await rnd.start({a: 300, b: 200})
    await rnd.act(a, "split", 1)
    await bj.void_round(TABLE, "operator_action", "ops")
    assert await rnd.finish() is None
    voided = entries(bj)[-1]
    assert voided["kind"] == "round.voided"
    refunds = {x["bet_id"]: x["amount"] for x in voided["data"]["refunds"]}
    assert refunds == {rnd.receipts[a]["bet_id"]: 600, rnd.receipts[b]["bet_id"]: 200}
    assert {p: bj.state.cash(p) for p in (a, b)} == before
    report = verify_entries(entries(bj))
    assert report.ok and report.rounds_voided == 1


async def test_feed_loss_voids_and_a_break_mid_play_does_not(bj: Casino, monkeypatch: pytest.MonkeyPatch) -> None:
    stack(monkeypatch, ["5S", "6H", "5D", "TC", "TD", "TH", "9S", "9D"])
    a, b, c = await players(bj, "a", "b", "c")
    rnd = Round(bj)
    await rnd.start({a: 100, b: 100, c: 100})
    await rnd.act(a, "double", 1)
    # Cards are being shown: a break must not cancel the round (b could undo a hand gone bad).
    bj.exclude(b, "break", "1d")
    await refused(bj, rnd.act(b, "hit", 1), "player_on_break")  # no more decisions: the hand stands
    await rnd.act(c, "hit", 1)
    await rnd.next("blackjack.card")
    await bj.feed_down(TABLE, "studio_feed_lost")  # the feed goes: the round is voided whole
    assert await rnd.finish() is None
    v = entries(bj)[-1]
    assert v["kind"] == "round.voided" and v["data"]["reason"] == "studio_feed_lost"
    assert sorted(x["amount"] for x in v["data"]["refunds"]) == [100, 100, 200]
    assert all(bj.state.in_play(p) == 0 for p in (a, b, c)) and verify_entries(entries(bj)).ok


async def test_a_break_mid_play_settles_the_players_hand(bj: Casino, monkeypatch: pytest.MonkeyPatch) -> None:
    stack(monkeypatch, ["TS", "6H", "TD", "9C", "TH"])  # 20 vs 6: dealer 6, 9, T = 25 busts
    a, b = await players(bj, "a", "b")
    rnd = Round(bj)
    await rnd.start({a: 100, b: 100})
    bj.exclude(a, "break", "1d")
    await rnd.act(b, "stand", 1)
    e = await rnd.finish()
    assert e is not None and e["kind"] == "round.settled"
    pay = {p["bet_id"]: p["payout"] for p in e["data"]["payouts"]}
    assert pay[rnd.receipts[a]["bet_id"]] == 200  # stood on 20 by default, paid like everyone
    assert bj.state.in_play(a) == 0 and verify_entries(entries(bj)).ok


async def test_hand_with_no_decision_stands_and_window_closes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = Casino(bj_config(tmp_path, window=0.3))
    await c.start(run_tables=False)
    try:
        stack(monkeypatch, ["5S", "9H", "6D", "TC", "7D"])
        a, b = await players(c, "a", "b")
        rnd = Round(c)
        await rnd.start({a: 100, b: 100})
        await rnd.act(a, "hit", 1)            # b never decides: it stands when the window closes
        card = await rnd.next("blackjack.card")
        assert card["takers"] == 1 and card["closed_ts"] <= c.clock()
        e = await rnd.finish()                # a's 21 finishes it; nobody is left to decide
        assert e["data"]["outcome"] == {"dealer": ["9H", "7D", "TS"], "steps": 1}
        pay = {p["bet_id"]: p["payout"] for p in e["data"]["payouts"]}
        assert pay[rnd.receipts[a]["bet_id"]] == 200 and pay[rnd.receipts[b]["bet_id"]] == 200  # dealer bust
    finally:
        await c.stop()
        c.close()


async def test_http_decisions_are_idempotent(bj: Casino, monkeypatch: pytest.MonkeyPatch) -> None:
    stack(monkeypatch, ["5S", "9H", "6D", "TC", "7D"])
    a, b = await players(bj, "http-a", "http-b")
    rnd = Round(bj)
    await rnd.start({a: 100, b: 100})
    app = create_app(bj)
    h = {"Authorization": f"Bearer {player_token('http-a')}", "Idempotency-Key": "k1"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge") as cl:
        r1 = await cl.post(f"/v1/tables/{TABLE}/actions", json={"action": "double", "step": 1}, headers=h)
        assert r1.status_code == 201, r1.text
        seq = bj.store.seq
        r2 = await cl.post(f"/v1/tables/{TABLE}/actions", json={"action": "double", "step": 1}, headers=h)
        assert r2.status_code == 201 and r2.json() == r1.json() and bj.store.seq == seq
        r3 = await cl.post(f"/v1/tables/{TABLE}/actions", json={"action": "hit", "step": 1}, headers=h)
        assert r3.status_code == 409 and r3.json()["error"]["code"] == "idempotency_conflict"
        r4 = await cl.post(f"/v1/tables/{TABLE}/actions", json={"action": "hit", "step": 1},
                           headers={**h, "Idempotency-Key": "k2"})
        assert r4.status_code == 409 and r4.json()["error"]["code"] == BJ.ALREADY_DECIDED
        r5 = await cl.post(f"/v1/tables/{TABLE}/actions", content=b"{nope", headers=h)
        assert r5.status_code == 400
    await rnd.act(b, "stand", 1)
    await rnd.finish()
    assert verify_entries(entries(bj)).ok


async def test_second_bet_refused_and_rules_versioned(bj: Casino) -> None:
    (a,) = await players(bj, "a")
    bj.open_round(TABLE)
    await bj.bet(a, TABLE, BJ.SPOT, 100)
    await refused(bj, bj.bet(a, TABLE, BJ.SPOT, 100), "duplicate_bet")
    await refused(bj, bj.bet(a, TABLE, "red", 100), "unknown_spot")
    view = bj.table_view(TABLE)
    assert view["game"] == "blackjack" and view["rules"]["version"].startswith("blackjack/")
    await bj.void_round(TABLE, "test", "ops")


async def test_split_hand_waiting_takes_its_card(bj: Casino, monkeypatch: pytest.MonkeyPatch) -> None:
    # 8,8 vs 6. c and d split (first hands 8+3). Step 2 (TD): c hits to 21; d stands, so d's split
    # hand takes this same card. Step 3: c's split hand (one 8) takes the card with no decision.
    stack(monkeypatch, ["8S", "6H", "8D", "3C", "TD", "5S", "9C", "TH"])
    c, d = await players(bj, "c", "d")
    rnd = Round(bj)
    await rnd.start({c: 100, d: 100})
    await rnd.act(c, "split", 1)
    await rnd.act(d, "split", 1)
    await rnd.next("blackjack.card")
    await rnd.act(c, "hit", 2)
    await rnd.act(d, "stand", 2)
    card = await rnd.next("blackjack.card")
    assert card["card"] == "TD" and card["takers"] == 2 and card["next_step"] == 3
    await refused(bj, rnd.act(c, "stand", 3), BJ.HAND_TAKES_CARD)
    await rnd.act(d, "stand", 3)
    card = await rnd.next("blackjack.card")
    assert card["step"] == 3 and card["card"] == "5S" and card["takers"] == 1
    await rnd.stand_out([c], 4)
    e = await rnd.finish()
    assert e["data"]["outcome"]["steps"] >= 3 and verify_entries(entries(bj)).ok


async def test_simulate_blackjack_every_decision_occurs_and_verifies(tmp_path: Path) -> None:
    from edge_agent.simulate import simulate

    out = await simulate(tmp_path / "sim.db", rounds=20, players=30, game="blackjack", seed=3)
    assert all(out["decisions"][a] > 0 for a in BJ.ACTIONS), out["decisions"]
    from edge_agent.journal.store import JournalStore

    store = JournalStore(tmp_path / "sim.db")
    report = verify_entries(list(store.iter_all()))
    store.close()
    assert report.ok and report.rounds_verified == 20, report.problems


async def test_graceful_stop_mid_step_voids_and_refunds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM (Casino.stop) in a decision window: voided, every stake refunded, nothing half-done."""
    stack(monkeypatch, ["8S", "6H", "8D", "2C", "3D"])
    c = Casino(bj_config(tmp_path))
    await c.start(run_tables=False)
    a, b = await players(c, "a", "b")
    rnd = Round(c)
    await rnd.start({a: 100, b: 300})
    await rnd.act(a, "split", 1)
    await c.stop()
    assert await rnd.finish() is None
    v = entries(c)[-1]
    c.close()
    assert v["kind"] == "round.voided" and v["data"]["reason"] == "edge_shutdown"
    assert {x["bet_id"]: x["amount"] for x in v["data"]["refunds"]} == {
        rnd.receipts[a]["bet_id"]: 200, rnd.receipts[b]["bet_id"]: 300}
    c2 = Casino(bj_config(tmp_path))  # the restart finds nothing to finish
    await c2.start(run_tables=False)
    assert c2.state.tables[TABLE].round is None and c2.state.in_play(a) == 0
    assert verify_entries(list(c2.store.iter_all())).ok
    await c2.stop()
    c2.close()


async def test_round_closed_goes_out_with_the_deal_in_one_delivery(bj: Casino, monkeypatch: pytest.MonkeyPatch) -> None:
    """At a full table two table-wide messages moments apart are two writes to every socket, the
    second just as the first decisions arrive: betting's close is told with the deal."""
    (p,) = await players(bj, "hold-1")
    deliveries: list[list[str]] = []
    hub = bj.events
    real_publish, real_with_own = hub.publish, hub.publish_with_own

    def publish(topic: str, event: dict[str, Any]) -> None:
        if topic == f"table:{TABLE}":
            deliveries.append([event["type"]])
        real_publish(topic, event)

    def with_own(topic: str, events: list[dict[str, Any]], own: Any) -> None:
        if topic == f"table:{TABLE}":
            deliveries.append([e["type"] for e in events])
        real_with_own(topic, events, own)

    monkeypatch.setattr(hub, "publish", publish)
    monkeypatch.setattr(hub, "publish_with_own", with_own)
    rnd = Round(bj)
    dealt = await rnd.start({p: 100})
    assert ["round.closed", "blackjack.dealt"] in deliveries
    assert ["round.closed"] not in deliveries               # never on its own here
    await rnd.stand_out([p], dealt["next_step"])
    await rnd.finish()


async def test_a_held_table_event_goes_out_alone_after_its_time_or_first_with_the_next(bj: Casino) -> None:
    eng = bj.engine
    q = bj.events.subscribe(f"table:{TABLE}")
    eng.hold_table(TABLE, {"type": "a"}, 0.05)
    assert q.empty()
    await asyncio.sleep(0.15)
    assert [q.get_nowait()["type"]] == ["a"] and q.empty()  # alone, after at most its time
    eng.hold_table(TABLE, {"type": "b"}, 0.05)
    eng.publish_table(TABLE, {"type": "c"})                 # the next table event carries it
    assert [q.get_nowait()["type"] for _ in range(2)] == ["b", "c"]
    await asyncio.sleep(0.15)
    assert q.empty()                                        # and its timer is gone
    eng.hold_table(TABLE, {"type": "d"}, 5)
    eng.flush_table(TABLE)
    assert q.get_nowait()["type"] == "d"


async def test_submitted_decisions_are_answered_before_the_step_card(bj: Casino, monkeypatch: pytest.MonkeyPatch) -> None:
    """The WebSocket's path: no task per decision. A refusal raises at once and changes nothing;
    an accepted decision is answered from the journal's commit, before the step's card is out
    (a player's mirror of its hand relies on that order); a failed commit answers the error and
    does not hold the step."""
    from edge_agent.journal.store import JournalFailed

    stack(monkeypatch, ["5S", "9H", "6D", "TC", "7D", "8C"])
    a, b, c = await players(bj, "sub-a", "sub-b", "sub-c")
    rnd = Round(bj)
    await rnd.start({a: 100, b: 100, c: 100})
    order: list[str] = []
    answers: dict[str, tuple[Any, Any]] = {}
    real_publish = bj.engine.publish_table

    def publish(table_id: str, event: dict[str, Any]) -> None:
        order.append(event["type"])
        real_publish(table_id, event)

    monkeypatch.setattr(bj.engine, "publish_table", publish)

    def answer(who: str) -> Any:
        def done(result: Any, err: Any) -> None:
            order.append(f"answer:{who}")
            answers[who] = (result, err)
        return done

    seq, cash = bj.store.seq, dict(bj.state.ledger.balances)
    with pytest.raises(DomainError) as exc:
        bj.submit_act(a, TABLE, {"action": "hit", "step": 2}, answer("never"))
    assert exc.value.code == BJ.DECISIONS_CLOSED and "never" not in answers
    assert bj.store.seq == seq and dict(bj.state.ledger.balances) == cash

    real_when_durable = bj.engine.when_durable

    def failing(e: dict[str, Any], done: Any) -> None:
        if e["data"].get("bet_id") == rnd.receipts[c]["bet_id"]:
            done(OSError("disk full"))  # this one commit fails
        else:
            real_when_durable(e, done)

    monkeypatch.setattr(bj.engine, "when_durable", failing)
    bj.submit_act(a, TABLE, {"action": "double", "step": 1}, answer("a"))
    bj.submit_act(b, TABLE, {"action": "hit", "step": 1}, answer("b"))
    bj.submit_act(c, TABLE, {"action": "stand", "step": 1}, answer("c"))  # the last: the window closes
    card = await rnd.next("blackjack.card")
    assert card["step"] == 1 and card["takers"] == 2
    assert order.index("blackjack.card") > max(order.index(f"answer:{w}") for w in "ab")
    (ra, ea), (rb, eb), (rc, ec) = answers["a"], answers["b"], answers["c"]
    assert ea is None and ra["action"] == "double" and ra["amount"] == 100 and ra["stake"] == 200
    assert eb is None and rb["action"] == "hit" and rb["seq"] > ra["seq"]
    assert rc is None and isinstance(ec, JournalFailed) and "disk full" in str(ec)
    monkeypatch.setattr(bj.engine, "when_durable", real_when_durable)
    if card.get("next_step"):
        await rnd.stand_out([a, b, c], card["next_step"])
    await rnd.finish()
