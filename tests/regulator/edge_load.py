"""A real edge under load for the Litestream test: rounds every 50 ms, bettors as fast as they can.

Usage: python tests/regulator/edge_load.py DB_PATH  (runs until killed)
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from contract import sync as S
from edge_agent.casino import Casino
from edge_agent.config import EdgeConfig
from edge_agent.domain.errors import DomainError


async def bettor(c: Casino, psn: str) -> None:
    spots = ["red", "black", "odd", "even", "straight:17", "dozen:2"]
    i = 0
    while True:
        try:
            await c.bet(psn, "roulette-1", spots[i % len(spots)], 100)
            i += 1
            await asyncio.sleep(0.002)
        except DomainError as e:
            if e.code == "insufficient_funds":
                dep = f"dep-{psn[:6]}-{c.store.seq}"
                await c.apply_command(S.DepositCredit(id=dep, ts=0, deposit_id=dep, player=psn, amount=1_000_000,
                                                      currency="EUR"))
            else:
                await asyncio.sleep(0.005)


async def main(db: str) -> None:
    cfg = EdgeConfig(edge_id="mt-1", jurisdiction="MT", db_path=Path(db), residency_key_hex="00" * 32,
                     tables=[{"table_id": "roulette-1", "game": "roulette", "betting_window_s": 0.05,
                              "reveal_s": 0.0, "limits": {"max_per_round": 10_000_000,
                                                          "max_bet_per_spot": 10_000_000}}])
    c = Casino(cfg)
    await c.start()
    players = [c.ensure_player(f"p{i}", {"display_name": f"Player {i}"}) for i in range(8)]
    await asyncio.gather(*(bettor(c, p) for p in players))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
