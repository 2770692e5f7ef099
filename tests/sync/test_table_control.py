"""`table.control` from the control plane: the edge does what its own operator API does, once per
command id; a void meant for a round that is over never voids the next one."""
from __future__ import annotations

from contract import journal as J
from contract import sync as S
from tests.sync.conftest import edge_config, start_casino, stop_casino, until


def cmd(i: int, action: str, **kw: object) -> S.TableControl:
    return S.TableControl(id=f"table.control:mt-1:{i}", ts=0, table_id="roulette-1", action=action,  # type: ignore[arg-type]
                          reason="dealer error", by="mark", **kw)


async def test_table_control_commands(tmp_path) -> None:  # type: ignore[no-untyped-def]
    c = await start_casino(edge_config(tmp_path, None, tables=[
        {"table_id": "roulette-1", "game": "roulette", "betting_window_s": 5, "reveal_s": 0.05}]))
    try:
        t = c.state.tables["roulette-1"]
        await until(lambda: t.round is not None, what="a round open")
        r = t.round
        assert r is not None

        # Stale: names another round -> recorded as applied, nothing voided.
        out = await c.apply_command(cmd(1, "void", chain_id=r.chain_id, round_n=r.n + 1))
        assert [e["kind"] for e in out] == [S.COMMAND_APPLIED] and t.round is r

        out = await c.apply_command(cmd(2, "void", chain_id=r.chain_id, round_n=r.n))
        assert [e["kind"] for e in out] == [J.ROUND_VOIDED, S.COMMAND_APPLIED]
        assert out[0]["data"]["n"] == r.n and out[0]["data"]["reason"] == "dealer error"
        assert await c.apply_command(cmd(2, "void", chain_id=r.chain_id, round_n=r.n)) == []  # once per id

        await until(lambda: t.round is not None and t.round.n > r.n, what="the next round")
        out = await c.apply_command(cmd(3, "disable"))
        assert [e["kind"] for e in out] == [S.TABLE_STATUS, J.ROUND_VOIDED, S.COMMAND_APPLIED]
        assert out[0]["data"] == {"table_id": "roulette-1", "enabled": False, "reason": "dealer error", "by": "mark"}
        assert out[1]["data"]["reason"] == "table_disabled"
        assert not t.enabled and t.round is None

        out = await c.apply_command(cmd(4, "enable"))
        assert [e["kind"] for e in out] == [S.TABLE_STATUS, S.COMMAND_APPLIED] and t.enabled
        await until(lambda: t.round is not None, what="rounds again once enabled")

        unknown = S.TableControl(id="table.control:mt-1:5", ts=0, table_id="nope", action="disable",
                                 reason="x", by="mark")
        assert [e["kind"] for e in await c.apply_command(unknown)] == [S.COMMAND_APPLIED]
    finally:
        await stop_casino(c)
