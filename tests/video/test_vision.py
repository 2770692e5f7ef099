"""The vision stage reads every reveal of a run of rounds of each game from the encoded feed, and
catches every card or number the simulated dealer deals wrong on purpose."""
from __future__ import annotations

import asyncio
import random
import time

import pytest

from edge_agent.media.config import Rung
from edge_agent.media.transcode import Ladder
from edge_agent.studio import cards as K
from edge_agent.studio.dealer import Dealer, wrong
from edge_agent.studio.render import TableRenderer
from edge_agent.vision.reader import CODES
from edge_agent.vision.stage import TableVision

W, H, FPS = 640, 360, 25
RUNG = Rung(name="360p", width=W, height=H, bitrate_kbps=800)


def reveals(game: str, rnd: random.Random, rounds: int) -> list[dict]:
    out: list[dict] = []
    for i in range(rounds):
        if game == "roulette":
            out.append({"number": rnd.randrange(37)})
        elif game == "baccarat":
            slots = ["player0", "banker0", "player1", "banker1"] + (["player2", "banker2"][: i % 3])
            out.append({s: rnd.choice(CODES) for s in slots})
        else:  # blackjack: the initial deal, two step cards, the dealer's cards (K.blackjack_reveals)
            dealt = {"hand": [rnd.choice(CODES), rnd.choice(CODES)], "dealer_up": rnd.choice(CODES)}
            steps = [{"step": s, "card": rnd.choice(CODES)} for s in (1, 2)]
            out.extend(K.blackjack_reveals(dealt, steps, [dealt["dealer_up"], rnd.choice(CODES), rnd.choice(CODES)]))
    return out


async def play(game: str, expected: list[dict], fault_every: int = 0) -> tuple[list, Dealer]:
    renderer = TableRenderer("t", W, H, game=game)
    dealer = Dealer(game, W, H, FPS, deal_interval_s=0.08, fault_every=fault_every)
    ladder = Ladder([RUNG], FPS, FPS)
    vision = TableVision("t", game, W, H)
    verdicts = []
    i = 0
    try:
        for n, reveal in enumerate(expected):
            if game != "blackjack" or "hand0" in reveal:
                dealer.instruct({"op": "clear"})
            fut = vision.expect(reveal, timeout_s=5.0)
            dealer.instruct({"op": "deal", "n": n, "reveal": reveal, "order": list(reveal)})
            while not fut.done():
                frame = renderer.render(i, int(time.time() * 1000), None, dealer)
                for _r, key, payloads, _s in ladder.encode(frame, i * 90000 // FPS):
                    vision.on_frame(key, payloads)
                i += 1
                await asyncio.sleep(0.005)  # the camera's pace, compressed: the vision thread keeps up
            verdicts.append(fut.result())
    finally:
        vision.stop()
    return verdicts, dealer


@pytest.mark.parametrize("game", ["roulette", "baccarat", "blackjack"])
async def test_every_reveal_of_a_run_of_rounds_is_read(game):
    expected = reveals(game, random.Random(game), 8 if game != "blackjack" else 3)
    verdicts, _ = await play(game, expected)
    assert [v.result for v in verdicts] == ["match"] * len(expected)
    assert [v.seen for v in verdicts] == expected
    assert all(v.latency_ms is not None and v.latency_ms >= 0 for v in verdicts)


@pytest.mark.parametrize("game", ["roulette", "baccarat", "blackjack"])
async def test_every_deliberately_wrong_deal_is_caught(game):
    expected = reveals(game, random.Random(f"{game}-fault"), 6 if game != "blackjack" else 2)
    verdicts, dealer = await play(game, expected, fault_every=2)
    results = [v.result for v in verdicts]
    assert results == ["match", "mismatch"] * (len(expected) // 2) + ["match"] * (len(expected) % 2)
    for v, (slot, dealt, instructed) in zip([v for v in verdicts if v.result == "mismatch"], dealer.faults):
        assert v.expected[slot] == instructed and v.seen[slot] == dealt == wrong(instructed)


async def test_a_reveal_the_camera_never_shows_is_unreadable():
    vision = TableVision("t", "roulette", W, H)
    try:
        v = await vision.expect({"number": 7}, timeout_s=0.3)
    finally:
        vision.stop()
    assert v.result == "unreadable" and v.seen == {}
