"""The casino's viewer policy on a real Casino: exclusion/break refuse and close live sessions,
a regulator's watch is journalled in the access log."""
from __future__ import annotations

import asyncio
from pathlib import Path

from contract import tokens
from edge_agent.casino import Casino
from edge_agent.media.casino_policy import CasinoViewerPolicy
from tests.edge.conftest import edge_config


class Service:
    def __init__(self) -> None:
        self.closed: list[tuple[str, str]] = []

    async def close_sessions_of(self, player_id: str, reason: str = "") -> int:
        self.closed.append((player_id, reason))
        return 1


def principal(sub: str, role: str = "player") -> tokens.Principal:
    return tokens.Principal(sub=sub, role=role, jurisdiction="MT", exp=2**40)  # type: ignore[arg-type]


async def test_exclusion_and_break_close_live_sessions(tmp_path: Path) -> None:
    c = Casino(edge_config(tmp_path))
    await c.start(run_tables=False)
    try:
        policy, svc = CasinoViewerPolicy(c), Service()
        policy.bind(svc)  # type: ignore[arg-type]
        psn = c.ensure_player("alice")
        c.ensure_player("bob")
        assert policy.refusal("alice") is None and policy.refusal("nobody-yet") is None
        policy.opened(principal("alice"), "roulette-1", "s1")
        policy.opened(principal("bob"), "roulette-1", "s2")
        c.exclude(psn, "self_exclusion", "6m")
        for _ in range(100):
            if svc.closed:
                break
            await asyncio.sleep(0.01)
        assert svc.closed == [("alice", "self_exclusion")]
        refusal = policy.refusal("alice")
        assert refusal is not None and refusal.status == 403 and refusal.code == "player_excluded"
        c.exclude(c.pseudonym("bob"), "break", "1d")
        for _ in range(100):
            if len(svc.closed) == 2:
                break
            await asyncio.sleep(0.01)
        assert svc.closed[1] == ("bob", "break")
        assert policy.refusal("bob").code == "player_on_break"  # type: ignore[union-attr]
        # A regulator's watch is in the journal's access log.
        seq = c.store.seq
        policy.opened(principal("reg-1", "regulator"), "roulette-1", "s3")
        assert c.store.seq == seq + 1
    finally:
        await c.stop()
        c.close()
