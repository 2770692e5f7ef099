"""The page finds its edge through the control plane's discovery (GET /v1/discovery)."""
from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse

from contract import tokens
from tests.browser.conftest import free_port, shot

pytestmark = pytest.mark.browser


class ServerThread:
    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def stub_cp(edge: Any) -> Iterator[tuple[str, list[str]]]:
    """A stand-in with the control plane's response shape (control_plane/api.py `discovery`)."""
    app = FastAPI()
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"])
    asked: list[str] = []
    public = tokens.public_pem(edge.key)

    @app.get("/v1/discovery")
    async def discovery(request: Request) -> JSONResponse:
        p = tokens.verify(public, request.headers["authorization"][7:])
        asked.append(p.jurisdiction)
        if p.jurisdiction != "MT":
            return JSONResponse({"error": {"code": "no_edge_in_jurisdiction", "message":
                                           f"no edge serves jurisdiction {p.jurisdiction}"}}, status_code=404)
        # Least loaded first: a dead edge (nothing listens there), then the real one.
        dead = f"http://127.0.0.1:{free_port()}"
        return JSONResponse({"jurisdiction": "MT", "probe": "rtt", "candidates": [
            {"edge_id": "mt-dead", "url": dead, "load": 0.0, "viewers": 0, "viewer_capacity": 500},
            {"edge_id": "mt-1", "url": edge.url, "load": 0.1, "viewers": 50, "viewer_capacity": 500}]})

    srv = ServerThread(app)
    yield srv.url, asked
    srv.stop()


def test_page_discovers_its_edge(page: Any, edge: Any, stub_cp: tuple[str, list[str]]) -> None:
    cp, asked = stub_cp
    edge.fund("hana", 10_000)
    page.goto(edge.page_url("hana", cp=cp))
    page.wait_for_selector("#edge-info:has-text('mt-1 · MT')", timeout=10_000)
    assert asked == ["MT"]
    found = page.evaluate("() => window.__casino.edge")
    assert found["url"] == edge.url and found["edge_id"] == "mt-1"
    rtts = {c["edge_id"]: c["rttMs"] for c in found["candidates"]}
    assert rtts["mt-dead"] is None and rtts["mt-1"] is not None   # probed, the dead one skipped
    page.wait_for_selector("#balance:has-text('€100.00')")
    shot(page, "discovery-1-found-edge")


def test_no_edge_in_jurisdiction_is_told_clearly(page: Any, edge: Any, stub_cp: tuple[str, list[str]]) -> None:
    cp, asked = stub_cp
    page.goto(f"{edge.url}/play/?token={edge.token('yusuf', 'TR')}&cp={cp}")
    page.wait_for_selector("#blocked:visible", timeout=10_000)
    assert asked == ["TR"]
    assert "Not available in your jurisdiction" in page.inner_text("#blocked-title")
    assert "jurisdiction TR" in page.inner_text("#blocked-text")
    # Never served from abroad: the page did not open a socket to any edge.
    assert page.evaluate("() => window.__casino.ws") is None
    shot(page, "discovery-2-no-edge-in-jurisdiction")


@pytest.fixture
def real_cp(tmp_path: Any, edge: Any, signing_key: Any) -> Iterator[Any]:
    if importlib.util.find_spec("control_plane.app") is None:
        pytest.skip("control_plane.app is not there yet")
    from contract import sync as S
    from control_plane.app import create_app
    from control_plane.config import ControlPlaneConfig

    keyfile = tmp_path / "cp" / "token.pem"
    keyfile.parent.mkdir()
    keyfile.write_text(tokens.private_pem(signing_key))   # the key the edge fixture trusts
    cfg = ControlPlaneConfig(database_url=f"sqlite:///{tmp_path / 'cp.db'}", data_dir=tmp_path / "cp",
                             token_signing_key_path=keyfile, heartbeat_timeout_s=60)
    app = create_app(cfg)
    srv = ServerThread(app)
    cp = app.state.cp
    # The edge registers and reports health (over NATS in production; straight in here).
    cp.registry.register("mt-1", "MT", edge.url, None)
    cp.registry.heartbeat(S.Heartbeat(edge_id="mt-1", jurisdiction="MT", public_url=edge.url,
                                      ts=int(time.time() * 1000), head_seq=1, viewers=3, viewer_capacity=500))
    yield srv.url
    srv.stop()


def test_page_discovers_its_edge_with_the_real_control_plane(page: Any, edge: Any, real_cp: str) -> None:
    edge.fund("ivo", 10_000)
    page.goto(edge.page_url("ivo", cp=real_cp))
    page.wait_for_selector("#edge-info:has-text('mt-1 · MT')", timeout=6_000)
    assert page.evaluate("() => window.__casino.edge.edge_id") == "mt-1"
    shot(page, "discovery-3-real-control-plane")
    page.goto(f"{edge.url}/play/?token={edge.token('yusuf', 'TR')}&cp={real_cp}")
    page.wait_for_selector("#blocked:visible", timeout=10_000)
    assert "Not available in your jurisdiction" in page.inner_text("#blocked-title")
