"""Schemathesis against the edge's OpenAPI (player API, operator actions, regulator API), with
player, operator and regulator tokens: no server error and no status code the schema does not
declare. Bounded (25 examples per operation, ~10 s)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from contract import sync as S
from contract import tokens
from edge_agent.api.app import create_app
from edge_agent.casino import Casino
from edge_agent.regulator.router import regulator_router
from tests.edge.conftest import PUBLIC_PEM, SIGNING_KEY, edge_config
from tests.support.live import serve
from tests.support.openapi_fuzz import fuzz

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
        await casino.start()  # table loops run: rounds open, so bets can be accepted
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


def test_edge_openapi_holds_for_every_role(edge_url: str) -> None:
    report = fuzz(edge_url, TOKENS, path_values={"table_id": ["roulette-1", "baccarat-1"]})
    assert report.operations >= 30
    assert not report.failures, "\n\n".join(report.failures)
    # It reached the handlers, not only the auth and validation layers.
    assert report.count(2) >= 40, report.statuses
