"""Read-only views for players, operators and regulators: wallet, limits, tables, round proofs."""
from __future__ import annotations

from typing import Any

from contract import journal as J
from edge_agent.app.engine import Engine
from edge_agent.domain import errors as E
from edge_agent.domain import ledger as L
from edge_agent.domain import responsible as RG


class Views:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def wallet(self, psn: str) -> dict[str, Any]:
        st = self._engine.state
        rg = st.player(psn)
        now = self._engine.clock()
        return {
            "player": psn, "currency": self._engine.config.currency, "balance": st.cash(psn),
            "in_play": st.in_play(psn), "pending_withdrawal": st.ledger.balance(L.pending(psn)),
            "kyc": st.kyc.get(psn, "unverified"),
            "session": {
                "session_id": rg.session_id, "started_ts": rg.session_start,
                "elapsed_ms": (now - rg.session_start) if rg.session_start else 0,
                "net_position": rg.session_net, "staked": rg.session_staked,
                "reality_check_min": rg.reality_check_min,
            },
        }

    def limits(self, psn: str) -> dict[str, Any]:
        rg = self._engine.state.player(psn)
        now = self._engine.clock()
        return {
            "limits": {f"{k}_{p}": rg.limit(k, p).view(now) if (k, p) in rg.limits else {"amount": None}
                       for k in RG.LIMIT_KINDS for p in RG.WINDOWS},
            "excluded_until": rg.excluded_until or None, "break_until": rg.break_until or None,
            "reality_check_min": rg.reality_check_min,
        }

    def table(self, table_id: str) -> dict[str, Any]:
        t = self._engine.table(table_id)
        r = t.round
        return {
            "table_id": table_id, "game": t.spec.game, "rules": t.rules.describe(), "live": t.accepting,
            "enabled": t.enabled, "feed_live": t.feed_live, "betting_window_s": t.spec.betting_window_s,
            "chain": ({"chain_id": t.chain.chain_id, "length": t.chain.length, "commitment": t.chain.commitment,
                       "used": t.chain.used} if t.chain else None),
            "round": ({"chain_id": r.chain_id, "n": r.n, "status": r.status, "closes_ts": r.closes_ts,
                       "bets": len(r.bets)} if r else None),
            "last_result": t.last_result,
        }

    def round_proof(self, table_id: str, chain_id: str, n: int) -> dict[str, Any]:
        """Everything needed to re-check a round (CONTRACT section 3), straight from the journal."""
        eng = self._engine
        eng.table(table_id)
        store = eng.store
        chain_seq = store.chain_seq(table_id, chain_id)
        span = store.round_span(table_id, chain_id, n)
        if span is None:
            r = eng.state.tables[table_id].round
            if r is not None and r.chain_id == chain_id and r.n == n:
                span = (r.opened_seq, store.durable_seq)
        if chain_seq is None or span is None:
            raise E.DomainError(E.NOT_FOUND, "no such round", 404)
        chain = store.read(chain_seq, chain_seq)[0]
        mine = [e for e in store.read(span[0], span[1])
                if e["data"].get("table_id") == table_id and e["data"].get("chain_id") == chain_id
                and e["data"].get("n") == n]
        end = next((e for e in mine if e["kind"] in (J.ROUND_SETTLED, J.ROUND_VOIDED)), None)
        bets = [e for e in mine if e["kind"] == J.BET_PLACED]
        proof: dict[str, Any] = {
            "table_id": table_id, "chain_id": chain_id, "n": n,
            "commitment": chain["data"]["commitment"], "chain_length": chain["data"]["length"],
            "status": "open" if end is None else ("settled" if end["kind"] == J.ROUND_SETTLED else "voided"),
            "bets": [{"bet_id": b["data"]["bet_id"], "player_seed": b["data"]["player_seed"],
                      "spot": b["data"]["spot"], "amount": b["data"]["amount"]} for b in bets],
            "entries": [chain] + mine,
        }
        if end is not None and end["kind"] == J.ROUND_SETTLED:
            d = end["data"]
            proof.update(game=d["game"], server_seed=d["server_seed"], client_seed=d["client_seed"],
                         outcome=d["outcome"], payouts=d["payouts"])
        elif end is not None:
            proof.update(reason=end["data"]["reason"], refunds=end["data"]["refunds"])
        return proof
