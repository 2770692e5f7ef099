"""The operator back office end to end in headless Chromium at 1366x768: a real control plane
(`control-plane serve`), a real MT edge syncing over a real nats-server, and an ON edge's journal
published on the same bus. Money moves through the real paths (KYC at the edge -> simulated vendor ->
KycResult back; withdrawals at the edge -> AML review in the page -> bank rail -> PayoutResult ->
the edge settles), and table actions go to the edge as commands and come back through its journal.
Screenshots are saved under artifacts/browser/."""
from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from contract import sync as S
from contract import tokens
from tests.browser.conftest import ROOT, EdgeProc, free_port, shot
from tests.support.nats import NatsServer

LAPTOP = {"width": 1366, "height": 768}


def until(pred: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll until pred() is truthy. The timeout only stops a hung test; it asserts no speed."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class ControlPlaneProc:
    def __init__(self, tmp: Path, key: Any, nats_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = key
        keyfile = tmp / "cp" / "token.pem"
        keyfile.parent.mkdir(parents=True)
        keyfile.write_text(tokens.private_pem(key))  # the key the edge trusts
        cfg = {"database_url": f"sqlite:///{tmp / 'cp' / 'cp.db'}", "data_dir": str(tmp / "cp"),
               "token_signing_key_path": str(keyfile), "heartbeat_timeout_s": 10, "processor_interval_s": 0.1,
               "nats": {"url": nats_url}, "http": {"host": "127.0.0.1", "port": self.port},
               "kyc": {"vendor_delay_s": 0.1},
               # Ontario's due-diligence threshold in CAD, so that CAD amounts can be held too
               "aml": {"cdd_threshold": {"EUR": 200_000, "CAD": 1_000_000}}}
        (tmp / "cp.yaml").write_text(yaml.safe_dump(cfg))
        self.log = (tmp / "cp.log").open("w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "control_plane.cli", "serve", "--config",
                                      str(tmp / "cp.yaml")], cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            until(self._up, 30, "control plane up with NATS")
        except AssertionError:
            self.stop()
            self.log.seek(0)
            raise RuntimeError(f"control plane did not start: {self.log.read()[-3000:]}") from None

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError("control plane exited")
        try:
            return bool(httpx.get(self.url + "/healthz", timeout=1).json().get("nats"))
        except httpx.HTTPError:
            return False

    def token(self, sub: str, jurisdiction: str) -> str:
        return tokens.issue(self.key, sub, "operator", jurisdiction)

    def get(self, path: str, jurisdiction: str = "*") -> Any:
        r = httpx.get(self.url + path, headers={"Authorization": f"Bearer {self.token('test', jurisdiction)}"},
                      timeout=10)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        r = httpx.post(self.url + path, json=body, headers={"Authorization": f"Bearer {self.token('test', '*')}"},
                       timeout=10)
        r.raise_for_status()
        return r.json()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def publish_journal(nats_url: str, edge_id: str, entries: list[dict[str, Any]]) -> None:
    """An edge's journal entries onto the bus, the way edge_agent/sync publishes them (own thread:
    Playwright's sync API owns this one's event loop)."""
    import json

    import nats

    async def main() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        for e in entries:
            await js.publish(S.journal_subject(edge_id), json.dumps(e).encode(),
                             headers={"Nats-Msg-Id": S.journal_msg_id(edge_id, e["seq"])})
        await nc.close()

    t = threading.Thread(target=lambda: asyncio.run(main()))
    t.start()
    t.join(30)


def kyc_document(psn: str, want_edd: bool) -> bytes:
    """A document whose reference (edge: "kyc-" + sha256(pseudonym + document)[:24]) makes the
    simulated vendor answer edd_required (contains "edd") or verified (does not)."""
    for i in range(100_000):
        doc = f"passport-{i}".encode()
        if ("edd" in hashlib.sha256(psn.encode() + doc).hexdigest()[:24]) == want_edd:
            return doc
    raise AssertionError("no such document")


class Casino:
    """NATS, the control plane and the MT edge, with the money the scenario needs."""

    def __init__(self, tmp: Path) -> None:
        self.nats = NatsServer(tmp / "nats").start()
        self.key = tokens.new_signing_key()
        self.cp = ControlPlaneProc(tmp, self.key, self.nats.url)
        self.edge = EdgeProc(tmp, self.key, nats_url=self.nats.url)
        until(lambda: any(e["id"] == "mt-1" and e["healthy"] for e in self.cp.get("/v1/edges")["edges"]),
              30, "mt-1 registered by its heartbeat")
        self.cp.post("/v1/edges", {"id": "on-1", "jurisdiction": "ON"})

    def player_call(self, method: str, sub: str, path: str, **kw: Any) -> Any:
        r = httpx.request(method, self.edge.url + path, timeout=10,
                          headers={"Authorization": f"Bearer {self.edge.token(sub)}"}, **kw)
        assert r.status_code < 300, r.text
        return r.json()

    def stop(self) -> None:
        self.edge.stop()
        self.cp.stop()
        self.nats.stop()


@pytest.fixture(scope="module")
def casino(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Casino]:
    c = Casino(tmp_path_factory.mktemp("backoffice"))
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def laptop(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport=LAPTOP)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors  # type: ignore[attr-defined]
    yield pg
    ctx.close()


def open_tab(page: Any, tab: str) -> None:
    page.click(f"button[data-tab={tab}]")
    page.wait_for_selector(f"body[data-loaded={tab}]", timeout=10_000)


def fits_the_screen(page: Any) -> None:
    assert page.evaluate("() => document.documentElement.scrollWidth") <= LAPTOP["width"], "horizontal scroll"


def test_operator_runs_the_casino_from_the_back_office(casino: Casino, laptop: Any) -> None:
    cp, edge, page = casino.cp, casino.edge, laptop

    # --- the MT player's money, through the real edge and control plane -------------------------
    psn = casino.player_call("GET", "nina", "/v1/me")["player"]
    casino.player_call("POST", "nina", "/v1/kyc", content=kyc_document(psn, want_edd=False))
    until(lambda: casino.player_call("GET", "nina", "/v1/wallet")["kyc"] == "verified", 30, "KYC verified at the edge")
    edge.fund("nina", 600_000)
    wids = [casino.player_call("POST", "nina", "/v1/wallet/withdrawals", json={"amount": a, "rail": "bank"})
            ["withdrawal_id"] for a in (195_000, 192_000, 199_000)]
    held = wids[2]  # the third amount just under EUR 2,000 within the window: structuring
    until(lambda: [r["withdrawal_id"] for r in cp.get("/v1/reviews")["reviews"]] == [held], 30, "held for review")

    psn2 = casino.player_call("GET", "omar", "/v1/me")["player"]
    casino.player_call("POST", "omar", "/v1/kyc", content=kyc_document(psn2, want_edd=True))
    until(lambda: cp.get(f"/v1/kyc/MT/{psn2}")["status"] == "edd_required", 30, "enhanced due diligence")

    # --- and an ON edge's journal: a review the MT operator must never see ----------------------
    from tests.control_plane.conftest import EdgeSim

    on = EdgeSim("on-1")
    entries = [on.add(S.KYC_REQUESTED, {"player": "p-on", "reference": "doc"})]
    publish_journal(casino.nats.url, "on-1", entries)
    until(lambda: cp.get("/v1/kyc/ON/p-on")["status"] == "verified", 30, "ON KYC")
    entries = [on.add(S.WITHDRAWAL_REQUESTED, {"withdrawal_id": f"on-w{i}", "player": "p-on", "amount": a,
                                               "currency": "CAD", "rail": "bank"})
               for i, a in enumerate((900_000, 950_000, 990_000))]
    publish_journal(casino.nats.url, "on-1", entries)

    # --- the MT operator's morning -------------------------------------------------------------
    page.goto(f"{cp.url}/backoffice/#token={cp.token('mark', 'MT')}")
    page.wait_for_selector("body[data-loaded=reviews]", timeout=10_000)
    assert "token" not in page.url  # taken from the fragment and wiped
    assert page.inner_text("#who-sub") == "mark" and page.inner_text("#who-scope") == "MT"
    row = page.locator(f"#reviews-body tr[data-id='{held}']")
    row.wait_for(timeout=10_000)
    assert page.locator("#reviews-body tr").count() == 1  # not the ON one
    assert "€1,990.00" in row.inner_text() and "STRUCTURING" in row.inner_text().upper()
    approve = row.locator("button[data-action=approve]")
    assert approve.is_disabled()  # no decision without a reason
    fits_the_screen(page)
    shot(page, "backoffice-1-aml-review", full_page=False)
    row.locator("input").fill("source of funds: salary slips checked")
    assert approve.is_enabled()
    approve.click()
    page.wait_for_selector("#reviews-empty:visible", timeout=10_000)

    # The approved payout goes out on the bank rail, and the edge settles it.
    open_tab(page, "withdrawals")
    page.wait_for_selector(f"#wd-body tr[data-id='{held}']:has-text('paid, settled at edge')", timeout=30_000)
    assert page.locator("#wd-body tr").count() == 3
    assert "ON" not in page.inner_text("#wd-body") and "on-w" not in page.inner_text("#wd-body")
    fits_the_screen(page)
    shot(page, "backoffice-2-withdrawals", full_page=False)
    until(lambda: {w["withdrawal_id"]: w["status"] for w in casino.player_call("GET", "nina", "/v1/wallet/withdrawals")}
          .get(held) == "paid", 30, "the edge paid it")

    # KYC: the enhanced-due-diligence case is decided.
    open_tab(page, "kyc")
    krow = page.locator(f"#kyc-body tr[data-id='{psn2}']")
    krow.wait_for(timeout=10_000)
    assert "edd_required" in krow.inner_text() and page.locator("#kyc-body tr").count() == 1
    krow.locator("select").select_option("verified")
    krow.locator("input").fill("EDD file complete")
    shot(page, "backoffice-3-kyc", full_page=False)
    krow.locator("button[data-action=apply]").click()
    page.wait_for_selector("#kyc-empty:visible", timeout=10_000)
    until(lambda: casino.player_call("GET", "omar", "/v1/wallet")["kyc"] == "verified", 30, "KycResult at the edge")

    # Edges and tables: health and lag, then a table disabled and a round voided via the edge.
    open_tab(page, "edges")
    page.wait_for_selector("#edges-body tr[data-id='mt-1']:has-text('healthy')", timeout=10_000)
    assert page.locator("#edges-body tr").count() == 1  # on-1 is ON's
    page.wait_for_selector("#tables-body tr[data-id='mt-1/baccarat-1']", timeout=10_000)
    trow = page.locator("#tables-body tr[data-id='mt-1/baccarat-1']")
    trow.locator("input").fill("shuffler maintenance")
    trow.locator("button[data-action=disable]").click()
    page.wait_for_selector("#tables-body tr[data-id='mt-1/baccarat-1']:has-text('disabled')", timeout=30_000)
    assert edge.api("nina", "/v1/tables/baccarat-1")["enabled"] is False

    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    roulette = page.locator("#tables-body tr[data-id='mt-1/roulette-1']")
    voided = False
    for _ in range(4):  # a void names the round the page showed: if that round ended first, nothing is voided
        page.wait_for_selector("#tables-body tr[data-id='mt-1/roulette-1'] button[data-action=void]", timeout=10_000)
        roulette.locator("input").fill("dealer misdeal")
        before = roulette.inner_text()
        page.wait_for_function(  # a round freshly opened, so the command arrives while it runs
            "(b) => { const r = document.querySelector(\"#tables-body tr[data-id='mt-1/roulette-1']\");"
            " return r && r.innerText !== b && /#\\d+/.test(r.children[4].innerText); }", arg=before, timeout=15_000)
        roulette.locator("button[data-action=void]").click()
        try:
            page.wait_for_selector("#tables-body tr[data-id='mt-1/roulette-1']:has-text('dealer misdeal')",
                                   timeout=8_000)
            voided = True
            break
        except PlaywrightTimeout:  # the round was over when the command arrived: try the next one
            continue
    assert voided, "no round was voided"
    page.wait_for_selector("#cmds-body tr:has-text('sent')", timeout=10_000)
    fits_the_screen(page)
    shot(page, "backoffice-4-edges-and-tables", full_page=False)
    shot(page, "backoffice-4-edges-and-tables-full", full_page=True)

    # Every decision is on record, with its reason.
    open_tab(page, "log")
    page.wait_for_selector("#log-body tr:has-text('table.void')", timeout=10_000)
    log = page.inner_text("#log-body")
    for text in ("review.approve", "source of funds: salary slips checked", "kyc.verified", "EDD file complete",
                 "table.disable", "shuffler maintenance", "table.void", "dealer misdeal"):
        assert text in log
    assert "ON" not in [c.strip() for c in page.locator("#log-body td:nth-child(3)").all_inner_texts()]
    fits_the_screen(page)
    shot(page, "backoffice-5-audit-log", full_page=False)
    assert page.errors == []  # type: ignore[attr-defined]


def test_an_ontario_operator_sees_ontario_only(casino: Casino, laptop: Any) -> None:
    cp, page = casino.cp, laptop
    until(lambda: [r["withdrawal_id"] for r in cp.get("/v1/reviews", "ON")["reviews"]] == ["on-w2"], 30,
          "the ON review")
    page.goto(f"{cp.url}/backoffice/#token={cp.token('olga', 'ON')}")
    page.wait_for_selector("#reviews-body tr[data-id='on-w2']", timeout=10_000)
    assert page.locator("#reviews-body tr").count() == 1
    assert "CA$9,900.00" in page.inner_text("#reviews-body")
    shot(page, "backoffice-6-ontario-reviews", full_page=False)
    open_tab(page, "edges")
    page.wait_for_selector("#edges-body tr[data-id='on-1']", timeout=10_000)
    assert page.locator("#edges-body tr").count() == 1 and page.locator("#tables-body tr").count() == 0
    open_tab(page, "log")
    assert "mark" not in page.inner_text("#log-body")

    # A player's token is refused at sign-in; a bad token is named.
    page.goto(f"{cp.url}/backoffice/#token={casino.edge.token('nina')}")
    page.wait_for_selector("#login:visible", timeout=10_000)
    assert "forbidden" in page.inner_text("#login-error")
    assert not page.is_visible("#panel-log")
    page.fill("#login-token", "not-a-token")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-error:has-text('invalid_token')", timeout=10_000)
    assert not page.is_visible("#tabs") and not page.is_visible("#who")  # nothing of olga's session is left
    shot(page, "backoffice-7-sign-in-refused", full_page=False)
    assert page.errors == []  # type: ignore[attr-defined]
