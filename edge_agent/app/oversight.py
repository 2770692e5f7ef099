"""The journal record of every regulator query (who, what, when: the entry's ts)."""
from __future__ import annotations

from typing import Any

from contract.bounds import is_int64
from contract.kinds import REGULATOR_QUERY
from edge_agent.app.engine import Engine


def _clean(v: Any) -> Any:
    if isinstance(v, bool) or v is None or is_int64(v):  # a bigger int becomes text, never a float
        return v
    if isinstance(v, float):
        return str(v)  # the journal holds no floats
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return str(v)[:200]


class Oversight:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record_query(self, regulator: str, jurisdiction: str, route: str, params: dict[str, Any],
                     status: int) -> dict[str, Any]:
        """Journal one regulator query. Not yet durable.

        `params` must name players by pseudonym only: the journal never holds personal data."""
        return self._engine.record(REGULATOR_QUERY, {"regulator": regulator, "jurisdiction": jurisdiction,
                                                     "route": route, "params": _clean(params),
                                                     "status": int(status)})

    async def journal_query(self, regulator: str, jurisdiction: str, route: str, params: dict[str, Any],
                            status: int = 200) -> dict[str, Any]:
        """Journal a regulator query and return once durable (answer only what is recorded)."""
        e = self.record_query(regulator, jurisdiction, route, params, status)
        await self._engine.durable(e)
        return e
