"""Browser suite: a real edge subprocess (web client at /play) driven by headless Debian Chromium."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from contract import tokens

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EdgeProc:
    def __init__(self, tmp: Path, key: Any, *, media: bool = False, edge_id: str = "mt-1", jurisdiction: str = "MT",
                 nats_url: str | None = None):
        self.key = key
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        pub = tmp / "token.pub"
        pub.write_text(tokens.public_pem(key))
        cmd = [sys.executable, "-m", "tests.browser.edge_server", "--dir", str(tmp), "--port", str(self.port),
               "--pub-key", str(pub), "--edge-id", edge_id, "--jurisdiction", jurisdiction]
        if media:
            cmd.append("--media")
        if nats_url:
            cmd += ["--nats", nats_url]
        self.log = (tmp / f"{edge_id}.log").open("w+")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, text=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("READY") or self.proc.poll() is not None:
                break
        if not line.startswith("READY"):
            self.stop()
            self.log.seek(0)
            raise RuntimeError(f"edge did not start: {self.log.read()[-3000:]}")

    def token(self, sub: str, jurisdiction: str = "MT") -> str:
        return tokens.issue(self.key, sub, "player", jurisdiction)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = httpx.post(self.url + path, json=body, timeout=10)
        r.raise_for_status()
        return r.json()

    def fund(self, sub: str, amount: int) -> int:
        return self.post("/__test/credit", {"player_id": sub, "amount": amount})["balance"]

    def api(self, sub: str, path: str) -> Any:
        r = httpx.get(self.url + path, headers={"Authorization": f"Bearer {self.token(sub)}"}, timeout=10)
        r.raise_for_status()
        return r.json()

    def page_url(self, sub: str, **extra: str) -> str:
        q = "&".join(f"{k}={v}" for k, v in extra.items())
        return f"{self.url}/play/?token={self.token(sub)}" + (f"&{q}" if q else "")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def signing_key() -> Any:
    return tokens.new_signing_key()


@pytest.fixture(scope="session")
def edge(tmp_path_factory: pytest.TempPathFactory, signing_key: Any) -> Iterator[EdgeProc]:
    e = EdgeProc(tmp_path_factory.mktemp("edge"), signing_key)
    yield e
    e.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors  # type: ignore[attr-defined]
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def shot(page: Any, name: str, full_page: bool = True) -> Path:
    """Save a screenshot under artifacts/browser/ (git-ignored) and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
