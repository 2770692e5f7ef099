"""`edge-agent simulate`: N rounds with P simulated players through the real engine, no video."""
from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

from contract import sync as S
from edge_agent.blackjack_strategy import play_out
from edge_agent.casino import Casino
from edge_agent.config import EdgeConfig
from edge_agent.domain import games
from edge_agent.domain.errors import DomainError


def simulation_config(db: Path, game: str, edge_id: str = "sim-1", jurisdiction: str = "SIM") -> EdgeConfig:
    return EdgeConfig(edge_id=edge_id, jurisdiction=jurisdiction, db_path=db, residency_key_hex="5a" * 32,
                      tables=[{"table_id": f"{g}-1", "game": g, "betting_window_s": 3600, "reveal_s": 0}
                              for g in games.names()])


async def simulate(db: Path, rounds: int, players: int, game: str = "roulette", seed: int | None = None) -> dict[str, Any]:
    rng = random.Random(seed)
    cfg = simulation_config(db, game)
    casino = Casino(cfg, random_bytes=(lambda n: rng.randbytes(n)) if seed is not None else __import__("os").urandom)
    await casino.start(run_tables=False)
    table_id = f"{game}-1"
    spots = games.get(game).spots()
    psns = [casino.ensure_player(f"sim-player-{i}") for i in range(players)]
    for i, psn in enumerate(psns):
        if casino.state.cash(psn) < 100_000:
            await casino.apply_command(S.DepositCredit(id=f"sim-dep-{i}-{casino.store.seq}", ts=casino.clock(),
                                                       deposit_id=f"sim-dep-{i}-{casino.store.seq}", player=psn,
                                                       amount=1_000_000, currency=cfg.currency))
    accepted = refused = 0
    decisions: dict[str, int] = {}
    for _ in range(rounds):
        if casino.state.tables[table_id].round is None:
            casino.open_round(table_id)
        for psn in psns:
            # blackjack: one hand per player and round (a second bet would be refused)
            for _ in range(rng.randint(0, 3) if game != "blackjack" else int(rng.random() < 0.9)):
                try:
                    casino.place_bet(psn, table_id, rng.choice(spots), rng.choice((100, 200, 500, 1000, 2500)),
                                     player_seed=f"{rng.getrandbits(32):08x}")
                    accepted += 1
                except DomainError:
                    refused += 1
        if game == "blackjack":  # every simulated player decides in every step (basic strategy)
            for k, v in (await play_out(casino, table_id, rng)).items():
                decisions[k] = decisions.get(k, 0) + v
        else:
            await casino.settle_round(table_id)
    await casino.stop()
    head = (casino.store.seq, casino.store.head)
    casino.close()
    return {"rounds": rounds, "players": players, "bets_accepted": accepted, "bets_refused": refused,
            "head_seq": head[0], "head_hash": head[1], "db": str(db)} | ({"decisions": decisions} if decisions else {})


def run(db: Path, rounds: int, players: int, game: str, seed: int | None) -> dict[str, Any]:
    return asyncio.run(simulate(db, rounds, players, game, seed))
