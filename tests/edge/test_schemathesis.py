"""Schemathesis against the edge's OpenAPI (player API, operator actions, regulator API), with
player, operator and regulator tokens: no server error and no status code the schema does not
declare. Bounded (a few examples per operation) so it stays well under a minute."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from contract import sync as S
from contract import tokens
from edge_agent.api.app import create_app
from edge_agent.casino import Casino
from edge_agent.regulator.router import regulator_router
from tests.edge.conftest import PUBLIC_PEM, SIGNING_KEY, edge_config
from tests.support.live import serve

EXAMPLES = 25
STATS: dict[str, int] = {}

TOKENS = {
    "player": tokens.issue(SIGNING_KEY, "st-player", "player", "MT"),
    "operator": tokens.issue(SIGNING_KEY, "st-operator", "operator", "MT"),
    "regulator": tokens.issue(SIGNING_KEY, "st-regulator", "regulator", "MT"),
}


@pytest.fixture(scope="module")
def edge_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("edge")

    async def setup():  # type: ignore[no-untyped-def]
        casino = Casino(edge_config(tmp))
        await casino.start()
        psn = casino.ensure_player("st-player")
        await casino.apply_command(S.DepositCredit(id="st-dep", ts=0, deposit_id="st-dep", player=psn,
                                                   amount=10_000_000, currency="EUR"))
        app = create_app(casino, extra_routers=[regulator_router(casino, PUBLIC_PEM)])

        async def teardown() -> None:
            await casino.stop()
            casino.close()
        return app, teardown

    with serve(setup) as url:
        yield url


def _operations(url: str) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    return [r.ok() for r in schema.get_all_operations()]


def _cases(op: schemathesis.APIOperation) -> st.SearchStrategy[schemathesis.Case]:
    """Valid and invalid requests; where a route names a table, also the real ones (so bets,
    voids and proofs get past the 404)."""
    strategies = [op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE)]
    if "{table_id}" in op.path:
        for table in ("roulette-1", "baccarat-1"):
            strategies.append(op.as_strategy(GenerationMode.POSITIVE, path_parameters={"table_id": table}))
    return st.one_of(strategies)


def test_edge_openapi_holds_for_every_role(edge_url: str) -> None:
    ops = _operations(edge_url)
    assert len(ops) >= 20, [o.label for o in ops]
    failures: list[str] = []
    for op in ops:
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=_cases(op), role=st.sampled_from(sorted(TOKENS)))
        def run(case: schemathesis.Case, role: str) -> None:
            headers = {"Authorization": f"Bearer {TOKENS[role]}"}
            response = case.call(base_url=edge_url, headers=headers, timeout=30)
            STATS[f"{op.label} {response.status_code}"] = STATS.get(f"{op.label} {response.status_code}", 0) + 1
            try:
                case.validate_response(response, checks=[not_a_server_error, status_code_conformance],
                                       headers=headers)
            except BaseExceptionGroup as exc:  # collect all operations' failures, not only the first
                failures.append(f"{op.label} as {role}: {str(exc)[:600]}")
                raise

        try:
            run()
        except BaseExceptionGroup:  # recorded in failures
            pass
    assert not failures, "\n\n".join(failures)
