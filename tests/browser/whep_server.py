"""A media-only edge for the third-party player tests: the WHEP endpoint (MediaService + its
HTTP adapter) and the player page under /player/, on 127.0.0.1.

    python -m tests.browser.whep_server --port P --config media.json
prints READY when serving; GET /__live/{table} says whether the table's feed is live.
"""
from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.staticfiles import StaticFiles

from edge_agent.media.config import MediaConfig
from edge_agent.media.service import MediaService
from edge_agent.media.whep import build_router

PLAYER_DIR = Path(__file__).parent / "whep_player"


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--config", type=Path, required=True)
    a = ap.parse_args()
    cfg = MediaConfig(**json.loads(a.config.read_text()))

    async def noop(*_: object) -> None:
        return None

    service = MediaService(cfg, on_feed_up=noop, on_feed_down=noop, token_public_key_pem=None)
    app = FastAPI()
    app.include_router(build_router(service))

    @app.get("/__live/{table_id}")
    async def live(table_id: str) -> JSONResponse:
        return JSONResponse({"live": service.is_live(table_id), "viewers": service.viewer_count()})

    app.mount("/player", StaticFiles(directory=PLAYER_DIR, html=True), name="player")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=a.port, log_level="warning",
                                           lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    await service.start()
    print("READY", flush=True)
    try:
        await task
    finally:
        await service.stop()


if __name__ == "__main__":
    asyncio.run(main())
