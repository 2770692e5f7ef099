"""Players: pseudonyms, registration, sessions and responsible gambling (limits, reality
checks, breaks and self-exclusion). Personal data goes to the in-country `players` record only;
the journal names a player by pseudonym (CONTRACT section 6)."""
from __future__ import annotations

import secrets
from typing import Any

from contract import sync as S
from contract.pseudonym import pseudonym
from edge_agent.app.engine import Engine
from edge_agent.app.ports import PlayerRecord
from edge_agent.app.rounds import RoundScheduler
from edge_agent.domain import errors as E
from edge_agent.domain import games
from edge_agent.domain import responsible as RG
from edge_agent.domain import state as ST


class Players:
    def __init__(self, engine: Engine, rounds: RoundScheduler) -> None:
        self._engine = engine
        self._rounds = rounds
        self._residency_key = engine.config.residency_key()
        self._psn_cache: dict[str, str] = {}

    def pseudonym(self, player_id: str) -> str:
        psn = self._psn_cache.get(player_id)
        if psn is None:
            psn = self._psn_cache[player_id] = pseudonym(self._residency_key, player_id)
        return psn

    def ensure_player(self, player_id: str, profile: dict[str, Any] | None = None) -> str:
        """Register a player on first sight: personal data in `players`, a pseudonym in the journal."""
        eng = self._engine
        psn = self.pseudonym(player_id)
        if psn not in eng.state.players:
            p = profile or {}
            eng.record(ST.PLAYER_REGISTERED, {"player": psn, "jurisdiction": eng.config.jurisdiction}, [
                PlayerRecord(player_id, psn, p.get("display_name"), p.get("email"), p.get("birth_date"),
                             p.get("address"), eng.clock())])
        return psn

    # --- sessions -----------------------------------------------------------------------------

    def start_session(self, psn: str) -> str:
        rg = self._engine.state.player(psn)
        RG.check_can_play(rg, self._engine.clock())
        if rg.session_id is None:
            self._engine.record(ST.SESSION_STARTED, {"player": psn, "session_id": secrets.token_hex(8)})
        assert rg.session_id is not None
        return rg.session_id

    def end_session(self, psn: str, reason: str = "logout") -> None:
        rg = self._engine.state.player(psn)
        if rg.session_id is not None:
            self._engine.record(ST.SESSION_ENDED, {"player": psn, "session_id": rg.session_id, "reason": reason})

    # --- responsible gambling (journal now; the async forms return once durable) --------------

    def set_limit(self, psn: str, kind: str, period: str, amount: Any) -> dict[str, Any]:
        RG.validate_limit_request(kind, period, amount)
        lim = self._engine.state.player(psn).limit(kind, period)
        eff = RG.limit_change_effective_ts(lim, amount, self._engine.clock())
        return self._engine.record(ST.LIMITS_CHANGED, {"player": psn, "limit": kind, "period": period,
                                                       "amount": amount, "effective_ts": eff})

    async def change_limit(self, psn: str, kind: str, period: str, amount: Any) -> dict[str, Any]:
        e = self.set_limit(psn, kind, period, amount)
        await self._engine.durable(e)
        return e

    def set_reality_check(self, psn: str, minutes: Any) -> dict[str, Any]:
        if minutes is not None and (not isinstance(minutes, int) or isinstance(minutes, bool)
                                    or not 1 <= minutes <= 24 * 60):
            raise E.DomainError(E.INVALID_REQUEST, "reality_check_min must be 1..1440 minutes or null")
        return self._engine.record(ST.PLAYER_SETTINGS, {"player": psn, "reality_check_min": minutes})

    async def change_reality_check(self, psn: str, minutes: Any) -> dict[str, Any]:
        e = self.set_reality_check(psn, minutes)
        await self._engine.durable(e)
        return e

    def exclude(self, psn: str, kind: str, duration: str, origin: str | None = None,
                until_ts: int | None = None) -> dict[str, Any]:
        """A break or a self-exclusion: the session ends and the player's open bets are refunded."""
        eng = self._engine
        spans = RG.BREAKS if kind == "break" else RG.EXCLUSIONS
        if kind not in ("break", "self_exclusion"):
            raise E.DomainError(E.INVALID_REQUEST, "kind must be break or self_exclusion")
        if until_ts is None:
            if duration not in spans:
                raise E.DomainError(E.INVALID_REQUEST, f"duration must be one of {tuple(spans)}")
            until_ts = eng.clock() + spans[duration]
        e = eng.record(S.PLAYER_EXCLUDED, {"player": psn, "until_ts": until_ts, "kind": kind,
                                           "duration": duration, "origin": origin or eng.config.edge_id})
        # Bets in rounds still running are refunded by voiding those rounds (CONTRACT: a round is
        # settled whole or voided whole; the verifier pays every bet of a settled round).
        for t in eng.state.tables.values():
            if t.round is not None and t.round.staked.get(psn):
                if t.round.status == ST.CLOSED and games.get(t.round.game).play_kinds:
                    # Cards are being shown (blackjack): voiding now would let a player cancel a
                    # hand gone bad by taking a break. Their hands stand; the round settles as dealt.
                    continue
                self._rounds.void(t, "player_excluded")
        eng.publish_player(psn, {"type": "session.ended", "reason": kind, "until_ts": until_ts})
        return e

    async def take_break(self, psn: str, duration: str) -> dict[str, Any]:
        e = self.exclude(psn, "break", duration)
        await self._engine.durable()  # the voids that followed too
        return e

    async def self_exclude(self, psn: str, duration: str) -> dict[str, Any]:
        e = self.exclude(psn, "self_exclusion", duration)
        await self._engine.durable()
        return e
