"""The casino: composition of the edge's application services (`edge_agent/app/`).

`Casino` builds one `Engine` (journal port + folded state + events) and the services on it, and
exposes them: adapters call `casino.<service>.<command>` (`rounds`, `betting`, `cashier`,
`players`, `commands`, `views`, `oversight`), each command returning once durable. The methods
below are the same operations under their historical names — the synchronous ones journal now
and are durable with the next group commit (tools, simulations and tests drive rounds with them).
"""
from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from contract import sync as S
from edge_agent import metrics as M
from edge_agent.app.betting import Betting
from edge_agent.app.cashier import Cashier
from edge_agent.app.commands import CloudCommands
from edge_agent.app.engine import Engine
from edge_agent.app.notices import Notices
from edge_agent.app.oversight import Oversight
from edge_agent.app.players import Players
from edge_agent.app.rounds import RoundScheduler
from edge_agent.app.seeds import SeedVault
from edge_agent.app.views import Views
from edge_agent.config import EdgeConfig
from edge_agent.domain import games
from edge_agent.domain import state as ST
from edge_agent.events import EventHub
from edge_agent.journal.store import JournalStore


class Casino:
    def __init__(self, config: EdgeConfig, store: JournalStore | None = None, *,
                 clock: Callable[[], int] | None = None, random_bytes: Callable[[int], bytes] = os.urandom):
        self.config = config
        self.clock = clock or (lambda: int(time.time() * 1000))
        self.store = store or JournalStore(config.db_path, clock=self.clock)
        self.engine = Engine(config, self.store, self.clock)
        self.seeds = SeedVault(self.engine, random_bytes)
        self.betting = Betting(self.engine)
        self.rounds = RoundScheduler(self.engine, self.seeds, Notices(self.engine), self.betting.check_extra_stake)
        self.cashier = Cashier(self.engine)
        self.players = Players(self.engine, self.rounds)
        self.commands = CloudCommands(self.engine, self.cashier, self.players, self.rounds)
        self.views = Views(self.engine)
        self.oversight = Oversight(self.engine)
        self.engine.replay()
        self.seeds.load()

    @property
    def state(self) -> ST.EdgeState:
        return self.engine.state

    @property
    def events(self) -> EventHub:
        return self.engine.events

    @property
    def notices(self) -> dict[str, list[dict[str, Any]]]:
        return self.engine.notices

    # --- start-up and shutdown ----------------------------------------------------------------

    async def start(self, run_tables: bool = True) -> None:
        self.store.bind_loop(asyncio.get_running_loop())
        self.store.on_commit.append(lambda rows, secs: M.JOURNAL_COMMIT.observe(secs))
        self.rounds.prepare()
        await self.store.durable(self.store.seq)
        self.engine.running = True
        if run_tables:
            self.rounds.start_tables()

    async def stop(self) -> None:
        """Graceful stop (SIGTERM): void rounds still taking bets, settle closed ones, flush."""
        self.engine.running = False
        await self.rounds.stop()
        # A fenced journal takes no entries: its open rounds are recovered at the next start,
        # once it has been reconciled with the cloud.
        if self.store.fence_reason is None:
            self.rounds.recover_rounds(reason="edge_shutdown")
        await self.store.durable(self.store.seq)

    def close(self) -> None:
        self.store.close()

    # --- rounds -------------------------------------------------------------------------------

    def open_round(self, table_id: str) -> ST.Round:
        return self.rounds.open_round(table_id)

    def close_round(self, table_id: str) -> None:
        self.rounds.close_round(table_id)

    async def settle_round(self, table_id: str) -> dict[str, Any] | None:
        return await self.rounds.settle_round(table_id)

    async def act(self, psn: str, table_id: Any, action: Mapping[str, Any]) -> dict[str, Any]:
        return await self.rounds.act(psn, table_id, action)

    def submit_act(self, psn: str, table_id: Any, action: Mapping[str, Any], answer: games.Answer) -> None:
        self.rounds.submit(psn, table_id, action, answer)

    async def feed_up(self, table_id: str) -> None:
        await self.rounds.feed_up(table_id)

    async def feed_down(self, table_id: str, reason: str = "studio_feed_lost") -> None:
        await self.rounds.feed_down(table_id, reason)

    async def void_round(self, table_id: str, reason: str, by: str) -> dict[str, Any]:
        return await self.rounds.void_round(table_id, reason, by)

    async def set_table_enabled(self, table_id: str, enabled: bool, reason: str, by: str) -> None:
        await self.rounds.set_table_enabled(table_id, enabled, reason, by)

    # --- bets ---------------------------------------------------------------------------------

    def place_bet(self, psn: str, table_id: Any, spot: Any, amount: Any, *, rules_version: Any = None,
                  player_seed: Any = "", idem: tuple[str, str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.betting.place_bet(psn, table_id, spot, amount, rules_version=rules_version,
                                      player_seed=player_seed, idem=idem)

    async def bet(self, psn: str, table_id: Any, spot: Any, amount: Any, **kw: Any) -> dict[str, Any]:
        return await self.betting.bet(psn, table_id, spot, amount, **kw)

    async def bet_idempotent(self, psn: str, key: str, body: bytes, req: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return await self.betting.bet_idempotent(psn, key, body, req)

    # --- players, wallet, limits --------------------------------------------------------------

    def pseudonym(self, player_id: str) -> str:
        return self.players.pseudonym(player_id)

    def ensure_player(self, player_id: str, profile: dict[str, Any] | None = None) -> str:
        return self.players.ensure_player(player_id, profile)

    def start_session(self, psn: str) -> str:
        return self.players.start_session(psn)

    def end_session(self, psn: str, reason: str = "logout") -> None:
        self.players.end_session(psn, reason)

    def set_limit(self, psn: str, kind: str, period: str, amount: Any) -> dict[str, Any]:
        return self.players.set_limit(psn, kind, period, amount)

    def set_reality_check(self, psn: str, minutes: Any) -> dict[str, Any]:
        return self.players.set_reality_check(psn, minutes)

    def exclude(self, psn: str, kind: str, duration: str, origin: str | None = None,
                until_ts: int | None = None) -> dict[str, Any]:
        return self.players.exclude(psn, kind, duration, origin, until_ts)

    def request_deposit(self, psn: str, amount: Any, method: str = "card") -> dict[str, Any]:
        return self.cashier.request_deposit(psn, amount, method)

    def credit_deposit(self, psn: str, deposit_id: str, amount: int) -> dict[str, Any]:
        return self.cashier.credit_deposit(psn, deposit_id, amount)

    def request_withdrawal(self, psn: str, amount: Any, rail: str = "bank") -> dict[str, Any]:
        return self.cashier.request_withdrawal(psn, amount, rail)

    def request_kyc(self, psn: str, document: bytes) -> dict[str, Any]:
        return self.cashier.request_kyc(psn, document)

    async def apply_command(self, cmd: S.Command) -> list[dict[str, Any]]:
        return await self.commands.apply(cmd)

    # --- views --------------------------------------------------------------------------------

    def wallet(self, psn: str) -> dict[str, Any]:
        return self.views.wallet(psn)

    def limits_view(self, psn: str) -> dict[str, Any]:
        return self.views.limits(psn)

    def table_view(self, table_id: str) -> dict[str, Any]:
        return self.views.table(table_id)

    def round_proof(self, table_id: str, chain_id: str, n: int) -> dict[str, Any]:
        return self.views.round_proof(table_id, chain_id, n)
