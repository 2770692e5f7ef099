"""The real services, running, scraped: what the alert rules and dashboards may rely on.

Starts the demo's system in-process (demo.system: a real nats-server, the control plane, two
edges each with its Litestream child serving Litestream's own metrics, the studios over SRT),
makes the facts the metrics count happen (bets accepted and refused, an HTTP error, the
deposits the demo funds its players with), then scrapes every endpoint Prometheus would.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import websockets
from prometheus_client.parser import text_string_to_metric_families

from demo.system import JURISDICTIONS, Demo


@dataclass
class Scrape:
    """Per endpoint kind ("edge", "litestream", "control-plane"): sample names -> label names
    seen, and the families declared (a labelled family without samples yet is declared only)."""

    samples: dict[str, set[str]] = field(default_factory=dict)
    declared: set[str] = field(default_factory=set)
    journal_kinds: set[str] = field(default_factory=set)

    def add(self, text: str) -> None:
        for fam in text_string_to_metric_families(text):
            self.declared.add(fam.name)
            if fam.type == "counter":
                self.declared.add(fam.name + "_total")
            if fam.type == "histogram":
                self.declared |= {fam.name + s for s in ("_bucket", "_sum", "_count")}
            for s in fam.samples:
                self.samples.setdefault(s.name, set()).update(s.labels)


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
