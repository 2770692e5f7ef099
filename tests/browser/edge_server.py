"""A real edge (runtime.Edge, web client mounted at /play) for the browser tests, as a subprocess.

    python -m tests.browser.edge_server --dir D --port P --pub-key FILE [--media] [--cp-stub]

Prints "READY <port>" once listening. Test-only routes under /__test/ stand in for the cloud
(confirm a deposit, pay or refuse a withdrawal, exclude a player) — never part of the product.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from fastapi import APIRouter, Request
from starlette.responses import Response

from contract import sync as S
from edge_agent.config import EdgeConfig
from edge_agent.runtime import Edge

TABLES = [{"table_id": "roulette-1", "game": "roulette", "betting_window_s": 4, "reveal_s": 1},
          {"table_id": "baccarat-1", "game": "baccarat", "betting_window_s": 4, "reveal_s": 1},
          {"table_id": "blackjack-1", "game": "blackjack", "betting_window_s": 4, "reveal_s": 1,
           "options": {"decision_window_s": 4}}]


class TestEdge(Edge):
    def _optional_routers(self) -> list[APIRouter]:
        # The regulator package is written in parallel: run without it while it is incomplete.
        try:
            return super()._optional_routers()
        except ImportError as exc:
            print(f"edge_server: optional routers skipped: {exc}", file=sys.stderr, flush=True)
            return []


STUDIOS: list[Any] = []


def test_router(edge: Edge) -> APIRouter:
    r = APIRouter(prefix="/__test")

    @r.post("/studio/{action}")
    async def studio(action: str) -> Response:
        """Stop or restart the studio simulators (the feed goes down / comes back)."""
        from tests.browser.media_support import start_studios

        for p in STUDIOS:
            p.terminate()
        for p in STUDIOS:
            await asyncio.get_running_loop().run_in_executor(None, p.wait)
        STUDIOS.clear()
        if action == "start":
            STUDIOS.extend(start_studios(edge.config.media))
        return Response(orjson.dumps({"studios": len(STUDIOS)}), media_type="application/json")

    casino = edge.casino
    counter = {"n": 0}

    def cid(prefix: str) -> str:
        counter["n"] += 1
        return f"{prefix}-{os.getpid()}-{counter['n']}"

    @r.post("/credit")
    async def credit(request: Request) -> Response:
        b = await request.json()
        psn = casino.ensure_player(b["player_id"])
        dep = b.get("deposit_id") or cid("dep")
        await casino.apply_command(S.DepositCredit(id=cid("cmd"), ts=0, deposit_id=dep, player=psn,
                                                   amount=int(b["amount"]), currency="EUR"))
        return Response(orjson.dumps({"balance": casino.state.cash(psn)}), media_type="application/json")

    @r.post("/credit-requested")
    async def credit_requested(request: Request) -> Response:
        """Confirm every deposit the player asked for at the edge (what the cloud would do)."""
        b = await request.json()
        psn = casino.ensure_player(b["player_id"])
        rows = [e for e in casino.store.iter_all() if e["kind"] == S.DEPOSIT_REQUESTED and e["data"]["player"] == psn]
        for e in rows:
            d = e["data"]
            await casino.apply_command(S.DepositCredit(id=f"c-{d['deposit_id']}", ts=0, deposit_id=d["deposit_id"],
                                                       player=psn, amount=d["amount"], currency="EUR"))
        return Response(orjson.dumps({"credited": len(rows), "balance": casino.state.cash(psn)}),
                        media_type="application/json")

    @r.post("/payout")
    async def payout(request: Request) -> Response:
        b = await request.json()
        psn = casino.ensure_player(b["player_id"])
        done = 0
        for w in list(casino.state.withdrawals.values()):
            if w.player == psn and w.status == "requested":
                await casino.apply_command(S.PayoutResult(id=cid("pay"), ts=0, withdrawal_id=w.withdrawal_id,
                                                          player=psn, status=b["status"], reason=b.get("reason", "")))
                done += 1
                if b.get("one", True):
                    break
        return Response(orjson.dumps({"done": done}), media_type="application/json")

    @r.post("/exclude")
    async def exclude(request: Request) -> Response:
        b = await request.json()
        psn = casino.ensure_player(b["player_id"])
        e = casino.exclude(psn, b.get("kind", "self_exclusion"), b.get("duration", "6m"))
        await casino.store.durable(casino.store.seq)
        return Response(orjson.dumps(e["data"]), media_type="application/json")

    return r


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pub-key", required=True)
    ap.add_argument("--edge-id", default="mt-1")
    ap.add_argument("--jurisdiction", default="MT")
    ap.add_argument("--media", action="store_true", help="turn on the media path (studio + WHEP)")
    ap.add_argument("--nats", default=None, help="sync with a control plane over this NATS server")
    a = ap.parse_args()
    tmp = Path(a.dir)
    kw: dict[str, Any] = {}
    if a.media:
        from tests.browser.media_support import media_config

        kw["media"] = media_config(tmp, [t["table_id"] for t in TABLES])
    if a.nats:
        kw["nats"] = {"url": a.nats, "heartbeat_s": 0.5}
    cfg = EdgeConfig(edge_id=a.edge_id, jurisdiction=a.jurisdiction, db_path=tmp / f"{a.edge_id}.db",
                     residency_key_hex="00" * 32, token_public_key_pem=Path(a.pub_key).read_text(),
                     chain_length=200, tables=TABLES, **kw)
    cfg.http.port = a.port
    edge = TestEdge(cfg)
    edge.app.include_router(test_router(edge))
    from edge_agent.api.web_support import web_router

    edge.app.include_router(web_router(edge.app.state.edge))
    await edge.start()
    from edge_agent.api import wsframes

    # As `edge-agent serve` does: the player socket writes its frames straight to the transport.
    server = uvicorn.Server(uvicorn.Config(wsframes.capture(edge.app), host="127.0.0.1", port=a.port, lifespan="off",
                                           ws="websockets-sansio", log_level="warning"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
        if task.done():
            await task
            sys.exit(1)
    if a.media:
        from tests.browser.media_support import start_studios

        STUDIOS.extend(start_studios(cfg.media))
    print(f"READY {a.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for p in STUDIOS:
        p.terminate()
    for p in STUDIOS:
        try:
            p.wait(5)
        except Exception:  # noqa: BLE001
            p.kill()
    server.should_exit = True
    await task
    await edge.stop()


if __name__ == "__main__":
    asyncio.run(main())
