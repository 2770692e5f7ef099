"""Vision accuracy, detection latency and CPU per table, on the studio picture through the ladder.

The studio simulator's picture (cards dealt with motion, lighting drift and flicker, noise; the
roulette plate) is rendered at the camera's pace, scaled and encoded by the real ladder and fed
to the edge's vision stage (its own decoder thread), which must read every reveal. Deals follow
random outcomes of each game; a second phase deals one wrong card/number in every other reveal
(the simulator's fault mode), which must all be caught.

- accuracy: reveals read exactly as dealt / reveals (a reveal = one check of what one dealing
  step put on the table: a roulette number, a baccarat deal, a blackjack deal or card);
- false mismatches: honest reveals judged `mismatch`; unreadable: honest reveals not read in time;
- latency: decision time - capture time stamped in the first picture of the deciding run (p50, p95);
- CPU: the vision thread's CPU time / wall time, per table (decode of the rung + reading).

    python -m benchmarks.video.vision [--reveals 500] [--faults 60] [--rung 360p]
Last line: {"bench": "video_vision", ...}
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time

from edge_agent.media.config import default_ladder
from edge_agent.media.transcode import Ladder
from edge_agent.studio import cards as K
from edge_agent.studio.dealer import Dealer
from edge_agent.studio.render import TableRenderer
from edge_agent.vision.reader import CODES
from edge_agent.vision.stage import TableVision


def deals(game: str, rnd: random.Random, count: int) -> list[dict]:
    out: list[dict] = []
    while len(out) < count:
        if game == "roulette":
            out.append({"number": rnd.randrange(37)})
        elif game == "baccarat":
            slots = ["player0", "banker0", "player1", "banker1"] + ["player2", "banker2"][: rnd.randrange(3)]
            out.append({s: rnd.choice(CODES) for s in slots})
        else:
            dealt = {"hand": [rnd.choice(CODES), rnd.choice(CODES)], "dealer_up": rnd.choice(CODES)}
            steps = [{"step": s, "card": rnd.choice(CODES)} for s in range(1, rnd.randrange(1, 4))]
            out.extend(K.blackjack_reveals(dealt, steps, [dealt["dealer_up"]] + [rnd.choice(CODES)
                                                                                  for _ in range(rnd.randrange(1, 4))]))
    return out[:count]


async def run_game(game: str, reveals: list[dict], fps: int, rung, studio_h: int, fault_every: int) -> dict:
    studio_w = studio_h * 16 // 9
    renderer = TableRenderer(game, studio_w, studio_h, game=game)
    dealer = Dealer(game, studio_w, studio_h, fps, deal_interval_s=0.12, fault_every=fault_every)
    ladder = Ladder([rung], fps, fps)
    vision = TableVision(game, game, rung.width, rung.height)
    verdicts = []
    i, t0 = 0, time.monotonic()
    wall0 = time.perf_counter()
    try:
        for reveal in reveals:
            if game != "blackjack" or "hand0" in reveal:
                dealer.instruct({"op": "clear"})
            fut = vision.expect(reveal, timeout_s=5.0)
            dealer.instruct({"op": "deal", "reveal": reveal, "order": list(reveal)})
            while not fut.done():
                delay = t0 + i / fps - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                frame = renderer.render(i, int(time.time() * 1000), None, dealer)
                for _r, key, payloads, _s in ladder.encode(frame, i * 90000 // fps):
                    vision.on_frame(key, payloads)
                i += 1
                await asyncio.sleep(0)
            verdicts.append(fut.result())
    finally:
        vision.stop()
    wall = time.perf_counter() - wall0
    return {"verdicts": verdicts, "faults": len(dealer.faults), "cpu_pct": 100 * vision.cpu_s / wall,
            "wall_s": wall, "frames": i, "dropped": vision.dropped}


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


async def main_async(a: argparse.Namespace) -> dict:
    rung = next(r for r in default_ladder() if r.name == a.rung)
    rnd = random.Random(a.seed)
    share = {"roulette": 0.4, "baccarat": 0.3, "blackjack": 0.3}
    per_game, honest, faulty = {}, [], []
    cpu = []
    for game, f in share.items():
        r = await run_game(game, deals(game, rnd, max(1, int(a.reveals * f))), a.fps, rung, a.studio_height, 0)
        honest.extend(r["verdicts"])
        cpu.append(r["cpu_pct"])
        per_game[game] = {"reveals": len(r["verdicts"]),
                          "correct": sum(v.result == "match" for v in r["verdicts"]),
                          "cpu_pct": round(r["cpu_pct"], 1), "dropped_frames": r["dropped"]}
    for game in share:
        r = await run_game(game, deals(game, rnd, a.faults // 3), a.fps, rung, a.studio_height, 2)
        faulty.append((r["verdicts"], r["faults"]))
    lat = [v.latency_ms for v in honest if v.result == "match" and v.latency_ms is not None]
    caught = sum(sum(v.result == "mismatch" for v in vs) for vs, _ in faulty)
    dealt_wrong = sum(n for _, n in faulty)
    correct = sum(v.result == "match" for v in honest)
    return {"bench": "video_vision", "rung": rung.name, "studio": f"{a.studio_height}p", "fps": a.fps,
            "reveals": len(honest), "correct": correct, "accuracy_pct": round(100 * correct / len(honest), 2),
            "false_mismatches": sum(v.result == "mismatch" for v in honest),
            "unreadable": sum(v.result == "unreadable" for v in honest),
            "faults_dealt": dealt_wrong, "faults_caught": caught,
            "faulty_runs_false_mismatch": sum(sum(v.result == "mismatch" for v in vs) for vs, _ in faulty) - caught,
            "latency_p50_ms": pct(lat, 0.5), "latency_p95_ms": pct(lat, 0.95), "latency_max_ms": max(lat or [0]),
            "vision_cpu_per_table_pct": round(sum(cpu) / len(cpu), 1), "per_game": per_game,
            "load1": round(os.getloadavg()[0], 2)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--reveals", type=int, default=500)
    p.add_argument("--faults", type=int, default=60)
    p.add_argument("--rung", default="360p")
    p.add_argument("--studio-height", type=int, default=720)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--seed", type=int, default=18)
    print(json.dumps(asyncio.run(main_async(p.parse_args()))))


if __name__ == "__main__":
    main()
