"""The real services, running, scraped: what the alert rules and dashboards may rely on.

Starts the demo's system in-process (demo.system: a real nats-server, the control plane, two
edges each with its Litestream child serving Litestream's own metrics, the studios over SRT),
makes the facts the metrics count happen (bets accepted and refused, an HTTP error, the
deposits the demo funds its players with), then scrapes every endpoint Prometheus would.
"""
from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import websockets
from prometheus_client.parser import text_string_to_metric_families

from demo.system import JURISDICTIONS, Demo

# Series the run cannot be sure to make happen: per-viewer loss (no WHEP viewer joins), frames
# sent late to viewers (none may be late), rounds that lost their clip (none should). For these the
# family must be declared and no label of theirs may be relied on; every other series needs samples.
UNSAMPLED_OK = frozenset({"media_viewer_loss_ratio", "media_rung_late_frames_total", "casino_video_failures_total"})


@dataclass
class Scrape:
    """Per endpoint kind ("edge", "litestream", "control-plane"): sample names -> label names
    seen, and the families declared (a labelled family without samples yet is declared only)."""

    samples: dict[str, set[str]] = field(default_factory=dict)
    declared: set[str] = field(default_factory=set)
    journal_kinds: set[str] = field(default_factory=set)

    def add(self, text: str) -> None:
        # Series names as exposed: the parser renames a counter's samples to `<family>_total`,
        # but Litestream's `litestream_sync_error_count` is stored by Prometheus under its own name.
        exposed = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.MULTILINE))
        for fam in text_string_to_metric_families(text):
            self.declared.add(fam.name)
            if fam.type == "counter":
                self.declared.add(fam.name + "_total")
            if fam.type == "histogram":
                self.declared |= {fam.name + s for s in ("_bucket", "_sum", "_count")}
            for s in fam.samples:
                name = s.name if s.name in exposed or not s.name.endswith("_total") else s.name[: -len("_total")]
                self.samples.setdefault(name, set()).update(s.labels)


async def _bets(edge: str, token: str) -> None:
    """One accepted bet and one refused (below the table minimum), over the player WebSocket."""
    async with websockets.connect(f"ws://{edge}/v1/ws?token={token}") as ws:
        results: list[str] = []
        deadline = time.monotonic() + 40
        req = 0
        while len(results) < 2 and time.monotonic() < deadline:
            req += 1
            amount = 100 if "bet.accepted" not in results else 1
            await ws.send(json.dumps({"type": "bet", "req": req, "table_id": "baccarat-1", "spot": "banker",
                                      "amount": amount}))
            end = time.monotonic() + 2
            while time.monotonic() < end:
                try:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                except TimeoutError:
                    continue
                if msg.get("req") == req and msg["type"] in ("bet.accepted", "bet.refused"):
                    if msg["type"] == "bet.accepted" or msg["error"]["code"] != "betting_closed":
                        results.append(msg["type"])
                    break
            await asyncio.sleep(0.3)
        assert results == ["bet.accepted", "bet.refused"], results


def _until(pred: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():  # type: ignore[operator]
                return
        except (httpx.HTTPError, KeyError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for: {what}")


def _money(demo: Demo) -> None:
    """The Malta player passes KYC, deposits past the due-diligence threshold (an AML flag) and
    withdraws to the bank rail (a payout): the control plane's money metrics get samples."""
    from tests.ops.test_ansible_jurisdictions import kyc_document

    edge = httpx.Client(base_url=f"http://127.0.0.1:{demo.ports['mt-1']}", timeout=10,
                        headers={"Authorization": f"Bearer {demo.players['mt-1']}"})
    psn = edge.get("/v1/me").json()["player"]
    assert edge.post("/v1/kyc", content=kyc_document(psn)).status_code == 202
    _until(lambda: edge.get("/v1/wallet").json()["kyc"] == "verified", 60, "KYC verified")
    assert edge.post("/v1/wallet/deposits", json={"amount": 200_000, "method": "card"}).status_code == 202
    _until(lambda: edge.get("/v1/wallet").json()["balance"] >= 240_000, 60, "deposit credited")
    wid = edge.post("/v1/wallet/withdrawals", json={"amount": 10_000, "rail": "bank"}).json()["withdrawal_id"]
    _until(lambda: {w["withdrawal_id"]: w["status"] for w in edge.get("/v1/wallet/withdrawals").json()}.get(wid)
           == "paid", 90, "withdrawal paid")


def _intruder(demo: Demo, edge_id: str) -> None:
    """A caller at the studio link with the wrong stream id and no passphrase (stock
    srt-live-transmit): refused and counted, while the real studio stays live."""
    port = demo.ports[f"srt-{edge_id}"]
    import socket

    from tests.media.conftest import free_port

    subprocess.run(["srt-live-transmit", "-q", "-t:3", f"udp://127.0.0.1:{free_port(socket.SOCK_DGRAM)}",
                    f"srt://127.0.0.1:{port}?mode=caller&streamid=intruder"],
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=20, check=False)
    metrics = f"http://127.0.0.1:{demo.ports[edge_id]}/metrics"
    _until(lambda: "\nmedia_srt_callers_refused_total{" in httpx.get(metrics, timeout=5).text, 30,
           f"the intruder counted on {edge_id}")


def run_and_scrape(root: Path) -> Scrape:
    demo = Demo(root)
    scrape = Scrape()
    try:
        demo.start()
        report = demo.check()
        assert report["ok"], report
        for j in JURISDICTIONS:
            edge = f"127.0.0.1:{demo.ports[j['edge_id']]}"
            asyncio.run(_bets(edge, demo.players[j["edge_id"]]))
            assert httpx.get(f"http://{edge}/v1/wallet", timeout=5).status_code == 401  # an error code counted
            # what a player's page reports after reading the clock in the picture
            r = httpx.post(f"http://{edge}/v1/telemetry/latency", json={"table_id": "roulette-1", "glass_to_glass_ms": 180},
                           headers={"Authorization": f"Bearer {demo.players[j['edge_id']]}"}, timeout=5)
            assert r.status_code == 204, r.text
        _money(demo)
        _intruder(demo, JURISDICTIONS[0]["edge_id"])
        # The dashboards read rounds ended; on a slow box the run above can finish inside the
        # first round, so wait for one to end on every edge rather than scrape too early.
        for j in JURISDICTIONS:
            url = f"http://127.0.0.1:{demo.ports[j['edge_id']]}/metrics"
            _until(lambda url=url: "\ncasino_rounds_total{" in httpx.get(url, timeout=5).text, 120,
                   f"a round ended on {j['edge_id']}")
        time.sleep(3)  # a heartbeat, a Litestream sync, fan-out worker reports
        for j in JURISDICTIONS:
            scrape.add(httpx.get(f"http://127.0.0.1:{demo.ports[j['edge_id']]}/metrics", timeout=5).text)
            scrape.add(httpx.get(f"http://127.0.0.1:{demo.ports['litestream-' + j['edge_id']]}/metrics",
                                 timeout=5).text)
        scrape.add(httpx.get(f"{demo.cp_url}/metrics", timeout=5).text)
    finally:
        demo.stop()
    import sqlite3

    for j in JURISDICTIONS:
        with sqlite3.connect(root / j["edge_id"] / "journal.db") as db:
            scrape.journal_kinds |= {k for (k,) in db.execute("SELECT DISTINCT kind FROM journal")}
    return scrape
