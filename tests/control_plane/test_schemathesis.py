"""Schemathesis against the control plane's OpenAPI with player, operator and regulator tokens:
no server error and no status code the schema does not declare (bounded: ~10 s)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from contract import sync as S
from contract import tokens
from control_plane.runtime import ControlPlane
from tests.control_plane.conftest import cp_config
from tests.support.live import serve
from tests.support.openapi_fuzz import fuzz


@pytest.fixture(scope="module")
def cp_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    tmp: Path = tmp_path_factory.mktemp("cp")
    box: dict[str, dict[str, str]] = {}

    async def setup():  # type: ignore[no-untyped-def]
        cp = ControlPlane(cp_config(tmp, f"sqlite:///{tmp / 'cp.db'}", None))
        await cp.start()
        cp.registry.heartbeat(S.Heartbeat(edge_id="mt-1", jurisdiction="MT", ts=0, head_seq=0, public_url="http://mt-1"))
        key = cp.signing_key
        box["tokens"] = {"player": tokens.issue(key, "st-player", "player", "MT"),
                         "operator": tokens.issue(key, "st-operator", "operator", "MT"),
                         "regulator": tokens.issue(key, "st-regulator", "regulator", "MT")}

        async def teardown() -> None:
            await cp.stop()
            cp.close_adapters()
        return cp.app, teardown

    with serve(setup) as url:
        yield url, box["tokens"]


def test_control_plane_openapi_holds_for_every_role(cp_url: tuple[str, dict[str, str]]) -> None:
    url, toks = cp_url
    report = fuzz(url, toks, path_values={"edge_id": ["mt-1"], "jurisdiction": ["MT"]})
    assert report.operations >= 15
    assert not report.failures, "\n\n".join(report.failures)
    assert report.count(2) >= 15, report.statuses
