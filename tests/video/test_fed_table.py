"""Fed tables end to end: studio simulator -> SRT -> the edge's ladder -> round clips and the
camera check of every reveal, against the journal.

- every round of a fed table has a clip whose SHA-256 and size are those of its `round.video`,
  journaled before the round's settlement (voided rounds keep theirs);
- the vision stage reads every reveal; the simulator's fault mode deals a wrong card in every
  other baccarat reveal, and each of those rounds is voided with `dealer_error` before settlement;
- the disk budget reached mid-run: rounds go on, each without a clip says so (`video.failed`).
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

from edge_agent.evidence import metrics as M
from edge_agent.evidence.clip import sha256_file
from edge_agent.journal.store import JournalStore
from edge_agent.runtime import Edge
from tests.video.fed_edge import fed_config, start_plain_studio, start_studio, stop


def rounds_of(entries: list[dict], table_id: str) -> dict[tuple[str, int], dict[str, dict]]:
    out: dict[tuple[str, int], dict[str, dict]] = {}
    for e in entries:
        d = e["data"]
        if isinstance(d, dict) and d.get("table_id") == table_id and "n" in d and "chain_id" in d:
            out.setdefault((d["chain_id"], d["n"]), {})[e["kind"]] = e
    return out


def ended(entries: list[dict], table_id: str) -> int:
    return sum(1 for r in rounds_of(entries, table_id).values() if "round.settled" in r or "round.voided" in r)


async def test_fed_rounds_have_clips_and_checked_reveals(tmp_path: Path):
    cfg, dealers = fed_config(tmp_path, {"roulette-1": "roulette", "baccarat-1": "baccarat"})
    edge = Edge(cfg)
    await edge.start()
    studios = [start_studio(cfg, "roulette-1", dealers["roulette-1"]),
               start_studio(cfg, "baccarat-1", dealers["baccarat-1"], fault_every=2)]
    store = edge.casino.store
    failures_before = M.FAILURES.labels("roulette-1", "budget_reached")._value.get()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            entries = store.read(1)
            if ended(entries, "roulette-1") >= 3 and ended(entries, "baccarat-1") >= 4:
                break
            await asyncio.sleep(0.5)
        # The disk budget is reached: recording stops, the tables do not.
        edge.round_evidence.evidence.library.config.budget_bytes = 1
        mark = ended(store.read(1), "roulette-1")
        while time.monotonic() < deadline and ended(store.read(1), "roulette-1") < mark + 2:
            await asyncio.sleep(0.5)
    finally:
        stop(studios)
        await edge.stop()
    s = JournalStore(tmp_path / "journal.db")
    entries = s.read(1)
    s.close()
    assert ended(entries, "roulette-1") >= mark + 2 and ended(entries, "baccarat-1") >= 4, "the tables stalled"

    videos = 0
    for table_id in ("roulette-1", "baccarat-1"):
        for (chain_id, n), r in sorted(rounds_of(entries, table_id).items(), key=lambda kv: kv[0][1]):
            end = r.get("round.settled") or r.get("round.voided")
            if end is None:
                continue
            if "round.video" not in r:
                # Only with the budget reached (or the feed cut at shutdown) is there no clip, and it says why.
                assert r["video.failed"]["data"]["reason"] in ("budget_reached", "no_picture"), r
                continue
            v = r["round.video"]
            path = tmp_path / "video" / table_id / f"{table_id}.{chain_id}.{n}.mp4"
            assert (v["data"]["sha256"], v["data"]["bytes"]) == sha256_file(path)
            assert v["data"]["rung"] == "360p" and v["data"]["container"] == "mp4"
            if "round.settled" in r:
                assert v["seq"] < end["seq"], "round.video must be journaled before the settlement"
            videos += 1
    assert videos >= 7

    # The camera check: every roulette reveal read as dealt; baccarat alternates honest / faulty deals.
    roulette = [r for r in rounds_of(entries, "roulette-1").values() if "vision.checked" in r]
    assert roulette and all(r["vision.checked"]["data"]["result"] == "match" and "round.settled" in r
                            for r in roulette)
    assert all(r["vision.checked"]["data"]["seen"] == {"number": r["round.settled"]["data"]["outcome"]["number"]}
               for r in roulette)
    baccarat = sorted((r for r in rounds_of(entries, "baccarat-1").values() if "vision.checked" in r),
                      key=lambda r: r["vision.checked"]["seq"])
    results = [r["vision.checked"]["data"]["result"] for r in baccarat]
    assert results[:4] == ["match", "mismatch", "match", "mismatch"], results
    for r in baccarat:
        if r["vision.checked"]["data"]["result"] == "mismatch":
            assert r["round.voided"]["data"]["reason"] == "dealer_error"
            assert "round.settled" not in r
            assert r["vision.checked"]["seq"] < r["round.voided"]["seq"]
        else:
            assert "round.settled" in r
    assert M.FAILURES.labels("roulette-1", "budget_reached")._value.get() > failures_before


async def test_fed_blackjack_reveals_are_checked_as_they_are_shown(tmp_path: Path):
    """Blackjack shows its cards in steps: the initial deal (blackjack.dealt) and, at the end, the
    dealer's cards; each is checked by the camera when it is shown. With every third reveal dealt
    wrong, every other round is voided (dealer_error) at its initial deal."""
    cfg, dealers = fed_config(tmp_path, {"blackjack-1": "blackjack"})
    edge = Edge(cfg)
    await edge.start()
    studios = [start_studio(cfg, "blackjack-1", dealers["blackjack-1"], fault_every=3)]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and ended(edge.casino.store.read(1), "blackjack-1") < 4:
            await asyncio.sleep(0.5)
    finally:
        stop(studios)
        await edge.stop()
    s = JournalStore(tmp_path / "journal.db")
    entries = s.read(1)
    s.close()
    rounds = sorted((r for r in rounds_of(entries, "blackjack-1").values() if "blackjack.dealt" in r),
                    key=lambda r: r["blackjack.dealt"]["seq"])
    assert len(rounds) >= 4
    checks = [e for e in entries if e["kind"] == "vision.checked"]
    for r in rounds[:4]:
        mine = [c for c in checks if (c["data"]["chain_id"], c["data"]["n"]) ==
                (r["blackjack.dealt"]["data"]["chain_id"], r["blackjack.dealt"]["data"]["n"])]
        dealt = r["blackjack.dealt"]["data"]
        assert mine[0]["data"]["expected"] == {"hand0": dealt["hand"][0], "dealer0": dealt["dealer_up"],
                                               "hand1": dealt["hand"][1]}
        if "round.settled" in r:
            assert [c["data"]["result"] for c in mine] == ["match", "match"]
            assert mine[1]["data"]["seen"] == {f"dealer{i}": c for i, c in
                                               enumerate(r["round.settled"]["data"]["outcome"]["dealer"]) if i}
        else:
            assert [c["data"]["result"] for c in mine] == ["mismatch"]
            assert r["round.voided"]["data"]["reason"] == "dealer_error"
        assert "round.video" in r
    assert ["round.settled" in r for r in rounds[:4]] == [True, False, True, False]


async def test_fed_blackjack_step_card_is_checked_before_the_players_go_on(tmp_path: Path, monkeypatch):
    """A player hits: the step card (blackjack.card) is dealt by the studio and read by the camera
    before the round goes on; the initial deal, the step card and the dealer's cards all match."""
    from contract import blackjack as BJ
    from tests.edge.conftest import fund

    # Hand 2H+3D (5) against the dealer's 9S; the hit takes 4C; the dealer then draws KH (19).
    shoe = ["2H", "9S", "3D", "4C", "KH"] + ["TS"] * 411
    monkeypatch.setattr(BJ, "shoe", lambda seed, cs, n: list(shoe))
    cfg, dealers = fed_config(tmp_path, {"blackjack-1": "blackjack"})
    cfg.tables[0].options = {"decision_window_s": 3}
    edge = Edge(cfg)
    await edge.start()
    c = edge.casino
    psn = c.ensure_player("alice")
    await fund(c, psn, 10_000)
    events = c.events.subscribe("table:blackjack-1")
    studios = [start_studio(cfg, "blackjack-1", dealers["blackjack-1"])]
    try:
        while True:  # the first round after the feed is up
            ev = await asyncio.wait_for(events.get(), 60)
            if ev and ev.get("type") == "round.opened":
                break
        await c.bet(psn, "blackjack-1", BJ.SPOT, 100)
        while True:
            ev = await asyncio.wait_for(events.get(), 30)
            if ev and ev.get("type") == "blackjack.dealt":
                break
        await c.act(psn, "blackjack-1", {"action": "hit", "step": 1})
        while True:
            ev = await asyncio.wait_for(events.get(), 30)
            if ev and ev.get("type") == "blackjack.card":
                break
        await c.act(psn, "blackjack-1", {"action": "stand", "step": 2})
        while True:
            ev = await asyncio.wait_for(events.get(), 30)
            if ev and ev.get("type") in ("round.settled", "round.voided"):
                break
    finally:
        c.events.unsubscribe(events)
        stop(studios)
        await edge.stop()
    s = JournalStore(tmp_path / "journal.db")
    entries = s.read(1)
    s.close()
    [r] = [r for r in rounds_of(entries, "blackjack-1").values() if "bet.placed" in r]
    mine = [e["data"] for e in entries if e["kind"] == "vision.checked" and e["data"]["n"] == r["bet.placed"]["data"]["n"]]
    assert [(m["expected"], m["result"]) for m in mine] == [
        ({"hand0": "2H", "dealer0": "9S", "hand1": "3D"}, "match"), ({"step1": "4C"}, "match"),
        ({"dealer1": "KH"}, "match")]
    assert r["round.settled"]["data"]["outcome"] == {"dealer": ["9S", "KH"], "steps": 1}
    assert mine[1]["latency_ms"] is not None and "round.video" in r


async def test_a_reveal_the_camera_never_shows_voids_the_round(tmp_path: Path):
    """The dealer never deals (a studio without the dealer link): the reveal is unreadable by the
    deadline, journaled, counted for the alert, and the round is voided (dealer_error)."""
    cfg, _dealers = fed_config(tmp_path, {"roulette-1": "roulette"})
    cfg.video.vision.timeout_s = 1.5
    edge = Edge(cfg)
    await edge.start()
    studio = start_plain_studio(cfg, "roulette-1")
    before = M.VISION.labels("roulette-1", "unreadable")._value.get()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and ended(edge.casino.store.read(1), "roulette-1") < 1:
            await asyncio.sleep(0.3)
    finally:
        stop([studio])
        await edge.stop()
    s = JournalStore(tmp_path / "journal.db")
    entries = s.read(1)
    s.close()
    r = next(r for r in rounds_of(entries, "roulette-1").values() if "vision.checked" in r)
    assert r["vision.checked"]["data"]["result"] == "unreadable"
    assert r["round.voided"]["data"]["reason"] == "dealer_error" and "round.settled" not in r
    assert "round.video" in r   # the voided round keeps its clip
    assert M.VISION.labels("roulette-1", "unreadable")._value.get() > before
