"""The composition root of the control plane: storage, adapters, services, NATS bus, background
loops and the HTTP app are built here, and only here (nothing below imports this module).

    cp = ControlPlane(config)          # cp.app is the FastAPI app
    await cp.start()                   # migrations, streams, consumers, loops
    ...
    await cp.stop()
"""
from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx
import structlog

from contract import tokens
from control_plane.adapters import keys
from control_plane.adapters.db import leases as L
from control_plane.adapters.db.engine import make_engine, migrate
from control_plane.adapters.kyc_vendor import SimulatedKycVendor
from control_plane.adapters.nats.bus import Bus
from control_plane.adapters.outbox import Outbox
from control_plane.adapters.psp import SimulatedPsp
from control_plane.adapters.rails import SimulatedBankRail, SimulatedCryptoRail
from control_plane.config import ControlPlaneConfig
from control_plane.http.app import build_app
from control_plane.http.deps import Services
from control_plane.metrics import Metrics
from control_plane.ports.kyc_vendor import KycVendor
from control_plane.ports.payout_rail import PayoutRail
from control_plane.ports.psp import PaymentProvider
from control_plane.services.aml_flags import AmlFlags
from control_plane.services.audit import AuditService
from control_plane.services.checkpoints import CheckpointService
from control_plane.services.deposits import Deposits
from control_plane.services.high_water_mark import HighWaterMarks
from control_plane.services.journal_apply import JournalApplier
from control_plane.services.kyc import KycService
from control_plane.services.operator_log import OperatorLog
from control_plane.services.processor import Processor
from control_plane.services.registry import Registry
from control_plane.services.reviews import Reviews
from control_plane.services.tables import Tables
from control_plane.services.tokens import TokenIssuer
from control_plane.services.withdrawals import Withdrawals

log = structlog.get_logger("control_plane")


def default_rails(config: ControlPlaneConfig) -> dict[str, PayoutRail]:
    rails: dict[str, PayoutRail] = {}
    r = config.rails
    if r.bank.enabled:
        rails["bank"] = SimulatedBankRail(config.state_path(r.bank.state_path, "rail-bank.db"), r.bank.answer_delay_s)
    if r.crypto.enabled:
        rails["crypto"] = SimulatedCryptoRail(config.state_path(r.crypto.state_path, "rail-crypto.db"),
                                              r.crypto.confirmations, r.crypto.block_interval_s)
    return rails


class ControlPlane:
    def __init__(self, config: ControlPlaneConfig, *, rails: Mapping[str, PayoutRail] | None = None,
                 psp: PaymentProvider | None = None, vendor: KycVendor | None = None) -> None:
        self.config = config
        self.metrics = Metrics()
        self.engine = make_engine(config.database_url)
        self.signing_key = keys.load_or_create(config.token_signing_key_path)
        self.public_pem = tokens.public_pem(self.signing_key)
        self.registry = Registry(self.engine, self.metrics, config.heartbeat_timeout_s, config.auto_register_edges)
        self.applier = JournalApplier(self.engine, self.metrics)
        self.checkpoints = CheckpointService(self.engine, self.metrics)
        self.kyc = KycService(self.engine)
        self.outbox = Outbox(self.engine)
        self.rails: Mapping[str, PayoutRail] = rails if rails is not None else default_rails(config)
        self.psp: PaymentProvider = psp or SimulatedPsp(config.state_path(config.psp.state_path, "psp.db"),
                                                        config.psp.decline_methods)
        self._vendor_given = vendor
        # this replica's leases (which edges it applies, which money step it is on): one session
        self.leases = L.Leases(self.engine, config.replica)
        self.processor = Processor(self.engine, config, self.metrics, self.rails, self.psp, vendor, self.wake_publisher,
                                   self.leases)
        self.bus: Bus | None = None
        self.app = build_app(Services(
            config=config, metrics=self.metrics, signing_key=self.signing_key, public_pem=self.public_pem,
            registry=self.registry, kyc=self.kyc, checkpoints=self.checkpoints, audit=AuditService(self.engine),
            deposits=Deposits(self.engine), withdrawals=Withdrawals(self.engine, self.rails), reviews=Reviews(self.engine),
            aml_flags=AmlFlags(self.engine), outbox=self.outbox, tables=Tables(self.engine),
            operator_log=OperatorLog(self.engine),
            tokens=TokenIssuer(self.engine, self.signing_key, config.token_ttl_s), nats_connected=self.nats_connected,
            wake_processor=self.wake_processor, wake_publisher=self.wake_publisher))
        self._work = asyncio.Event()
        self._publish = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.config.migrate_on_start:
            await asyncio.to_thread(migrate, self.engine)
        self._work, self._publish = asyncio.Event(), asyncio.Event()
        if self._vendor_given is None and self.config.kyc.vendor == "simulated":
            self.processor.vendor = SimulatedKycVendor(self._deliver_kyc_webhook, self.config.kyc.callback_secret,
                                                       self.config.kyc.vendor_delay_s)
        if self.config.nats.url:
            self.bus = Bus(self.config.nats, self.metrics, self.applier, self.checkpoints, self.registry,
                           HighWaterMarks(self.engine), self._on_applied, self.leases)
            await self.bus.start()
        self._tasks = [asyncio.create_task(self._processor_loop(), name="cp-processor"),
                       asyncio.create_task(self._publisher_loop(), name="cp-publisher")]
        self._started = True
        self._work.set()
        self._publish.set()
        log.info("control plane started", db=self.engine.url.render_as_string(hide_password=True),
                 nats=self.config.nats.url)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        self._tasks = []
        if self.bus is not None:
            await self.bus.stop()
            self.bus = None
        if self.processor.vendor is not None:
            await self.processor.vendor.close()
        await asyncio.to_thread(self.leases.close)  # every lease free at once for the other replicas
        self._started = False
        self.engine.dispose()
        log.info("control plane stopped")

    def close_adapters(self) -> None:
        """Close the simulated external systems (only when this process owns them)."""
        for r in self.rails.values():
            getattr(r, "close", lambda: None)()
        getattr(self.psp, "close", lambda: None)()

    # --- wake-ups ---------------------------------------------------------------------------------

    def _on_applied(self, work: bool, cmds: bool) -> None:
        if work:
            self._work.set()
        if cmds:
            self._publish.set()

    def nats_connected(self) -> bool:
        return self.bus is not None and self.bus.connected

    def wake_processor(self) -> None:
        self._work.set()

    def wake_publisher(self) -> None:
        self._publish.set()

    async def _processor_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._work.wait(), self.config.processor_interval_s)
            except TimeoutError:
                pass
            self._work.clear()
            try:
                await self.processor.run_once()
                await asyncio.to_thread(self.checkpoints.check_pending)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the loop must survive; state is in the database
                self.metrics.errors.labels("processor").inc()
                log.error("processor pass failed", error=repr(exc))
                await asyncio.sleep(0.5)

    async def _publisher_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._publish.wait(), 1.0)
            except TimeoutError:
                pass
            self._publish.clear()
            try:
                await self.publish_pending()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - NATS away: stays in the outbox, retried
                self.metrics.errors.labels("publish").inc()
                log.warning("command publish failed", error=repr(exc))
                await asyncio.sleep(0.5)

    async def publish_pending(self) -> int:
        """Publish the command outbox: one replica at a time (the OUTBOX lease), so N replicas do
        not publish every command N times (harmless -- same Nats-Msg-Id, applied once by id --
        but wasted)."""
        if self.bus is None or self.bus.js is None:
            return 0
        if not await asyncio.to_thread(self.leases.try_acquire, L.OUTBOX, "commands"):
            return 0  # another replica publishes; this one takes over when it dies
        rows = await asyncio.to_thread(self.outbox.pending, 500)
        done: list[str] = []
        try:
            for r in rows:
                # Nats-Msg-Id = command id: a re-publish after a crash is dropped by JetStream,
                # and the edge applies each id once anyway.
                await self.bus.publish_command(r.edge_id, r.id, r.body)
                self.metrics.commands_published.labels(r.type).inc()
                done.append(r.id)
        finally:
            if done:
                await asyncio.to_thread(self.outbox.mark_published, done)
        if len(rows) == 500:
            self._publish.set()
        return len(done)

    # --- KYC vendor webhook, delivered through the HTTP endpoint ------------------------------------

    async def _deliver_kyc_webhook(self, body: bytes, signature: str) -> None:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://control-plane") as client:
            r = await client.post("/v1/kyc/callback", content=body,
                                  headers={"X-Signature": signature, "Content-Type": "application/json"})
            if r.status_code >= 500:
                raise RuntimeError(f"callback failed: {r.status_code}")
        self._publish.set()
