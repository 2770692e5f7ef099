"""Composition of one edge appliance: casino + API (+ media, sync, regulator, checkpoints).

Shutdown order matters for "nothing lost": stop taking requests, then let the casino void or
settle its rounds and flush the journal, then let sync drain what it can, then close.
"""
from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
import uvicorn
from fastapi import APIRouter, FastAPI

from edge_agent.api import wsframes
from edge_agent.api.app import create_app
from edge_agent.api.wsproto import PlayerProtocol
from edge_agent.casino import Casino
from edge_agent.config import EdgeConfig, load_config

if TYPE_CHECKING:  # the optional parts, imported only when configured
    from edge_agent.audit import litestream
    from edge_agent.audit.checkpoints import CheckpointPublisher
    from edge_agent.media.service import MediaService
    from edge_agent.sync.service import SyncService

log = structlog.get_logger("edge")


class Edge:
    def __init__(self, config: EdgeConfig) -> None:
        self.config = config
        self.casino = Casino(config)
        self.media: MediaService | None = None
        self.sync: SyncService | None = None
        self.checkpoints: CheckpointPublisher | None = None
        routers: list[APIRouter] = []
        if config.media is not None:
            from edge_agent.media.casino_policy import CasinoViewerPolicy
            from edge_agent.media.service import MediaService
            from edge_agent.media.whep import build_router

            self.media = MediaService(config.media, on_feed_up=self.casino.feed_up,
                                      on_feed_down=self.casino.feed_down,
                                      token_public_key_pem=config.token_public_key(),
                                      jurisdiction=config.jurisdiction, policy=CasinoViewerPolicy(self.casino))
            self.media.policy.bind(self.media)  # type: ignore[union-attr]
            routers.append(build_router(self.media))
        routers.extend(self._optional_routers())
        self.app: FastAPI = create_app(self.casino, extra_routers=routers)
        from edge_agent.evidence.wiring import attach

        self.round_evidence = attach(self)  # round video and the vision check (config `video`)
        self._mount_web()
        if config.nats.url:
            from edge_agent.sync.service import SyncService

            self.sync = SyncService(self.casino, config,
                                    viewers=(self.media.viewer_count if self.media else (lambda: 0)))
            self.app.state.edge.health_checks["sync"] = self.sync.health
        self.replicator: litestream.Replicator | None = None

    def _optional_routers(self) -> list[APIRouter]:
        routers: list[APIRouter] = []
        key = self.config.token_public_key()
        if key is not None:
            from edge_agent.regulator.router import regulator_router

            routers.append(regulator_router(self.casino, key))
        return routers

    def _mount_web(self) -> None:
        web = Path(__file__).parent / "web" / "static"
        if web.is_dir():
            from starlette.staticfiles import StaticFiles

            self.app.mount("/play", StaticFiles(directory=web, html=True), name="web")

    async def start(self) -> None:
        self._start_replica()
        await self.casino.start()
        self.round_evidence.start()
        # Who wrote this journal, for exports made from the file alone (audit/export.py).
        self.casino.store.put_setting("edge.id", self.config.edge_id)
        self.casino.store.put_setting("edge.jurisdiction", self.config.jurisdiction)
        if self.media is not None:
            await self.media.start()
        if self.sync is not None:
            await self.sync.start()
            self._start_checkpoints()

    def _start_replica(self) -> None:
        """Litestream, as a child process, replicating the journal to the in-country replica.

        Started before the first append so that the replica follows the journal from its start;
        stopped after the journal is closed so that it ships the last frames."""
        if self.config.replica is None:
            return
        from edge_agent.audit import litestream

        cfg_path = Path(self.config.db_path).with_suffix(".litestream.yml")
        litestream.write_config(cfg_path, self.config.db_path, self.config.replica,
                                metrics_addr=self.config.replica_metrics_addr)
        self.replicator = litestream.Replicator(cfg_path).start()

    def _start_checkpoints(self) -> None:
        if self.config.checkpoint_key_file is None or self.sync is None:
            return
        from contract.tokens import load_private
        from edge_agent.audit.checkpoints import CheckpointPublisher

        key = load_private(Path(self.config.checkpoint_key_file).read_text())
        self.checkpoints = CheckpointPublisher(self.casino, key, self.sync.publish_checkpoint,
                                               self.config.checkpoint_interval_s)
        self.checkpoints.start()

    async def stop(self) -> None:
        try:
            if self.checkpoints is not None:
                await self.checkpoints.stop()
            if self.media is not None:
                await self.media.stop()
            await self.casino.stop()
            await self.round_evidence.stop()
        finally:
            try:
                if self.sync is not None:
                    await self.sync.stop()
            finally:
                self.casino.close()
                if self.replicator is not None:
                    await asyncio.to_thread(self.replicator.stop)


async def serve_async(config: EdgeConfig) -> None:
    if config.nats.url:
        # A journal restored from a replica may be behind what the cloud already holds: import
        # the missing entries before the first append, so that the chain is continued, not forked.
        from edge_agent.sync.reconcile import reconcile_from_cloud

        result = await reconcile_from_cloud(config)
        log.info("reconciled with the cloud", action=result.action)
    edge = Edge(config)
    await edge.start()
    # The replayed state is long-lived: keep it out of the collector's scans, and collect
    # young objects less often, so that a full collection does not stall acknowledgements.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    # A thread that wants the GIL back (the broadcast fan-out between its batches, the journal
    # writer with a commit done) waits up to the switch interval behind the event loop: 5 ms by
    # default, i.e. ~100 ms over one table-wide message at 5,000 players. 0.5 ms instead.
    sys.setswitchinterval(0.0005)
    server = uvicorn.Server(uvicorn.Config(wsframes.capture(edge.app), host=config.http.host, port=config.http.port,
                                           log_level="warning", lifespan="off", ws=os.environ.get("EDGE_WS_IMPL") or PlayerProtocol,
                                           ws_max_size=65_536, timeout_graceful_shutdown=5))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    log.info("edge serving", edge=config.edge_id, jurisdiction=config.jurisdiction, port=config.http.port)
    await asyncio.wait([task, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await task
    await edge.stop()
    log.info("edge stopped cleanly", edge=config.edge_id, head_seq=edge.casino.store.seq)


def serve(config_path: Path) -> None:
    config = load_config(config_path)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve_async(config))
