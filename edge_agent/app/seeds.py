"""Custody of the tables' seed chains (CONTRACT section 3).

The secret top seed of a chain commits in the same transaction as its `fairness.chain` entry
(the commitment), so no round can use a chain whose secret could be lost. A round's seed is
handed out only to settle it (or to its game's play phase, which never reveals it).
"""
from __future__ import annotations

import secrets
from collections.abc import Callable

from contract import fairness
from contract import journal as J
from edge_agent.app.engine import Engine
from edge_agent.app.ports import ChainSecret
from edge_agent.domain import state as ST


class SeedVault:
    def __init__(self, engine: Engine, random_bytes: Callable[[int], bytes]) -> None:
        self._engine = engine
        self._random_bytes = random_bytes
        self._seeds: dict[tuple[str, str], list[bytes]] = {}

    def load(self) -> None:
        """Derive the chains the replayed state still uses from their stored secrets."""
        for s in self._engine.store.chain_secrets():
            t = self._engine.state.tables.get(s.table_id)
            if t and t.chain and t.chain.chain_id == s.chain_id:
                self._seeds[(s.table_id, s.chain_id)] = fairness.derive_chain(s.seed_top, s.length)

    def holds(self, table_id: str, chain_id: str) -> bool:
        return (table_id, chain_id) in self._seeds

    def seed(self, r: ST.Round) -> bytes:
        return self._seeds[(r.table_id, r.chain_id)][r.n]

    def ensure_chain(self, t: ST.Table) -> ST.Chain:
        """The table's current chain, or a fresh one journaled when it is used up (or its secret is lost)."""
        table_id = t.spec.table_id
        if t.chain is None or t.chain.used >= t.chain.length or not self.holds(table_id, t.chain.chain_id):
            length = self._engine.config.chain_length
            seed_top = self._random_bytes(32)
            chain_id = secrets.token_hex(8)
            seeds = fairness.derive_chain(seed_top, length)
            self._seeds[(table_id, chain_id)] = seeds
            self._engine.record(J.FAIRNESS_CHAIN, {"table_id": table_id, "chain_id": chain_id, "length": length,
                                                   "commitment": seeds[0].hex()},
                                [ChainSecret(table_id, chain_id, seed_top, length)])
        assert t.chain is not None
        return t.chain
