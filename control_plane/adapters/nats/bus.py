"""NATS adapter: streams, the durable journal and checkpoint consumers, heartbeats, high-water
mark replies, and publishing commands to edges.

Several replicas share the work: heartbeats and high-water-mark requests go to one member of the
queue group `<durable>`; the checkpoint consumer is shared (each delivery to one puller); the
journal is read through one durable consumer per edge (`<durable>-<edge>`), pulled only by the
replica holding that edge's lease (adapters/db/leases.py), re-balanced every `rebalance_s`."""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import threading
from collections.abc import Awaitable, Callable

import structlog
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from contract import streams
from contract import sync as S
from contract.bounds import first_unbounded
from control_plane.adapters.db import leases as L
from control_plane.adapters.nats.pull import Delivery, Puller
from control_plane.config import NatsConfig
from control_plane.metrics import Metrics
from control_plane.services.checkpoints import CheckpointService
from control_plane.services.high_water_mark import HighWaterMarks
from control_plane.services.journal_apply import JournalApplier
from control_plane.services.registry import Registry
from natswire import LeanClient

_LONG_DIGITS = re.compile(rb"[0-9]{19}")  # 19+ digits: maybe past signed 64 bits (or a digit run in a string)

log = structlog.get_logger("control_plane.bus")

Handler = Callable[[list[Delivery]], Awaitable[None]]


def edge_of(subject: str) -> str:
    return subject.split(".", 2)[2]


class Bus:
    def __init__(self, cfg: NatsConfig, metrics: Metrics, applier: JournalApplier,
                 checkpoints: CheckpointService, registry: Registry, marks: HighWaterMarks,
                 on_applied: Callable[[bool, bool], None], leases: L.Leases) -> None:
        self.cfg, self.metrics, self.leases = cfg, metrics, leases
        self.applier, self.checkpoints, self.registry, self.marks = applier, checkpoints, registry, marks
        self.on_applied = on_applied  # (work for the processor, commands to publish)
        self.nc: LeanClient | None = None
        self.js: JetStreamContext | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._journal_thread: threading.Thread | None = None
        self._journal_loop: asyncio.AbstractEventLoop | None = None
        self._journal_task: asyncio.Task[object] | None = None
        self.ack_enabled = True  # tests turn it off to stand for a crash between commit and ack
        self._appliers: dict[str, tuple[asyncio.Task[None], list[bool], Puller]] = {}  # edge -> its consumer
        self.applying: frozenset[str] = frozenset()  # edges this replica applies now (read from any thread)

    async def start(self) -> None:
        assert self.cfg.url
        self._loop = asyncio.get_running_loop()
        self.nc = nc = await self._connect("control-plane")
        self.js = nc.jetstream()
        await self.ensure_streams()
        # queue groups: with several replicas each heartbeat / request is handled once
        await nc.subscribe("casino.heartbeat.*", queue=self.cfg.durable, cb=self._on_heartbeat)
        await nc.subscribe("casino.hwm.*", queue=self.cfg.durable, cb=self._on_hwm)
        self._running = True
        cps = await self._pull(nc, "casino.checkpoint.*", S.CHECKPOINT_STREAM, self.cfg.durable + "-checkpoints")
        self._tasks = [asyncio.create_task(self._consume(cps, self._on_checkpoints), name="cp-checkpoints")]
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._journal_thread = threading.Thread(target=lambda: asyncio.run(self._journal_main(ready)),
                                                name="cp-journal", daemon=True)
        self._journal_thread.start()
        await asyncio.wrap_future(ready)

    async def stop(self) -> None:
        self._running = False
        for t in self._tasks:
            t.cancel()
        # Bounded: a consumer stuck in a client call must not hold shutdown hostage.
        await asyncio.wait(self._tasks, timeout=5) if self._tasks else None
        self._tasks = []
        if self._journal_thread is not None:
            if self._journal_loop is not None and self._journal_task is not None:
                self._journal_loop.call_soon_threadsafe(self._journal_task.cancel)
            await asyncio.to_thread(self._journal_thread.join, 10)
            self._journal_thread = None
        if self.nc is not None:
            await _close(self.nc)
            self.nc = None

    def _js(self) -> JetStreamContext:
        if self.js is None:
            raise RuntimeError("the bus is not started")
        return self.js

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def _connect(self, name: str) -> LeanClient:
        nc = LeanClient()
        await nc.connect(self.cfg.servers, user=self.cfg.user, password=self.cfg.password, token=self.cfg.token,
                         max_reconnect_attempts=-1, reconnect_time_wait=0.5, name=name)
        return nc

    async def _journal_main(self, ready: concurrent.futures.Future[None]) -> None:
        """The journal consumers, on their own thread, event loop and connection: applying a batch
        is CPU work under the GIL, done inline here (no hop to a worker thread per batch), and
        the service's own loop (HTTP, heartbeats, high-water-mark replies) never waits on it.
        One consumer task per edge this replica holds the lease of; `_rebalance` moves them."""
        nc: LeanClient | None = None
        try:
            nc = await self._connect("control-plane-journal")
            self._journal_loop, self._journal_task = asyncio.get_running_loop(), asyncio.current_task()
            ready.set_result(None)
            while self._running:
                try:
                    await self._rebalance(nc)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - NATS or the database away: next round
                    log.warning("journal rebalance failed", error=repr(exc))
                await asyncio.sleep(self.cfg.rebalance_s)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
                return
            raise
        finally:
            for edge in list(self._appliers):
                await self._stop_applier(edge)
            if nc is not None:
                await _close(nc)

    async def journal_edges(self, nc: LeanClient) -> list[str]:
        """The edges with entries in the journal stream (its subjects)."""
        info = await nc.jetstream(timeout=5).stream_info(S.JOURNAL_STREAM, subjects_filter=S.journal_subject("*"))
        return sorted(edge_of(subj) for subj in (info.state.subjects or {}))

    async def _rebalance(self, nc: LeanClient) -> None:
        edges = await self.journal_edges(nc)
        gained, release = await asyncio.to_thread(L.rebalance, self.leases, edges)
        mine = await asyncio.to_thread(self.leases.held, L.EDGE)
        for edge in [e for e in self._appliers if e in release or e not in mine]:
            await self._stop_applier(edge)  # its current batch ends first, then the lease goes
            if edge in release:
                await asyncio.to_thread(self.leases.release, L.EDGE, edge)
            log.info("journal lease given up", edge=edge, replica=self.leases.replica)
        for edge in sorted(mine - set(self._appliers) - release):
            running = [True]
            puller = await self._pull(nc, S.journal_subject(edge), S.JOURNAL_STREAM, f"{self.cfg.durable}-{edge}")
            task = asyncio.create_task(self._consume(puller, self._on_entries, running), name=f"cp-journal-{edge}")
            self._appliers[edge] = (task, running, puller)
            log.info("journal lease taken", edge=edge, replica=self.leases.replica, new=edge in gained)
        self.applying = frozenset(self._appliers)

    async def _stop_applier(self, edge: str) -> None:
        task, running, puller = self._appliers.pop(edge)
        running[0] = False
        try:
            await asyncio.wait_for(asyncio.shield(task), 5)
        except (TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001 - stuck: cancel it
            task.cancel()
        await puller.close()
        self.applying = frozenset(self._appliers)

    async def ensure_streams(self) -> None:
        """Create the sync streams when missing (`contract.streams`, the edge's definition too), at
        `stream_replicas` (3 on a three-node cluster)."""
        await streams.ensure_streams(self._js(), replicas=self.cfg.stream_replicas,
                                     duplicate_window_s=self.cfg.duplicate_window_s)

    async def _pull(self, nc: LeanClient, subject: str, stream: str, durable: str) -> Puller:
        config = ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=self.cfg.ack_wait_s,
                                deliver_policy=DeliverPolicy.ALL, max_ack_pending=10_000, max_deliver=-1,
                                filter_subject=subject)
        # creates (or binds to) the durable consumer; messages are pulled by the Puller
        js = nc.jetstream()
        await js.pull_subscribe(subject, durable=durable, stream=stream, config=config)
        return await Puller(nc, js._prefix, stream, durable).start()

    async def _consume(self, puller: Puller, handle: Handler, running: list[bool] | None = None) -> None:
        """Batches are handled one after the other, in stream order. In a backlog the next batch
        is fetched while the current one is applied. Ends after the current batch once
        `running[0]` is False (a lease given up)."""
        nxt: asyncio.Future[list[Delivery]] | None = None
        running = running or [True]
        try:
            while self._running and running[0]:
                try:
                    msgs = await (nxt or puller.fetch(self.cfg.fetch_batch, timeout=1))
                    nxt = None
                    if not msgs:
                        continue
                except NatsTimeout:
                    nxt = None
                    continue
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - disconnected: the client reconnects by itself
                    nxt = None
                    log.warning("fetch failed", error=repr(exc))
                    await asyncio.sleep(0.5)
                    continue
                if len(msgs) >= self.cfg.fetch_batch:  # a backlog: overlap the next fetch with this apply
                    nxt = asyncio.ensure_future(puller.fetch(self.cfg.fetch_batch, timeout=1))
                    for _ in range(2):  # let it send its pull request (and the client's flusher write
                        await asyncio.sleep(0)  # it) before this loop is busy applying
                await self._handle(puller, msgs, handle)
        finally:
            if nxt is not None:
                nxt.cancel()
            if not running[0]:  # a lease given up: hand back what was delivered but not handled
                await puller.nak(puller.take_buffered())

    async def _handle(self, puller: Puller, msgs: list[Delivery], handle: Handler) -> None:
        try:
            await handle(msgs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. database down: not acked, JetStream redelivers
            self.metrics.errors.labels("consume").inc()
            log.error("apply failed; will be redelivered", error=repr(exc))
            try:
                await puller.nak(msgs)
            except Exception as nak_exc:  # noqa: BLE001 - without a nak it is redelivered after ack_wait
                log.debug("nak failed", error=repr(nak_exc))
            await asyncio.sleep(0.5)
            return
        if self.ack_enabled:  # after commit; a lost ack only means a redelivery, which is a no-op
            await puller.ack(msgs)

    @staticmethod
    def _parse_entries(msgs: list[Delivery]) -> tuple[list[tuple[str, S.SyncedEntry]], list[str], list[tuple[str, str]]]:
        """No database: (edge, entry) pairs, their bodies as received, malformed ones."""
        batch: list[tuple[str, S.SyncedEntry]] = []
        bodies: list[str] = []
        malformed: list[tuple[str, str]] = []
        for m in msgs:
            try:
                entry = S.SyncedEntry.model_validate_json(m.data)
                # An integer the database cannot hold would fail the whole batch on every redelivery:
                # refuse it here. (A run of 20 digits is the cheap hint; only then walk the data.)
                if _LONG_DIGITS.search(m.data) and first_unbounded(entry.data) is not None:
                    malformed.append((m.edge, f"seq {entry.seq}: an integer outside signed 64 bits"))
                    continue
                batch.append((m.edge, entry))
                bodies.append(m.data.decode())
            except (ValidationError, UnicodeDecodeError) as exc:
                malformed.append((m.edge, str(exc)[:500]))
        return batch, bodies, malformed

    async def _on_entries(self, msgs: list[Delivery]) -> None:
        batch, bodies, malformed = self._parse_entries(msgs)

        # On the journal thread's own loop: nothing else waits on it.
        if malformed:
            self.applier.flag_malformed(malformed)
        results = self.applier.apply_batch(batch, bodies) if batch else []
        work = any(r.work for r in results)
        cmds = any(r.commands for r in results)
        if work or cmds:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self.on_applied, work, cmds)

    async def _on_checkpoints(self, msgs: list[Delivery]) -> None:
        for m in msgs:
            try:
                raw = json.loads(m.data)
            except ValueError:
                raw = {}
            await asyncio.to_thread(self.checkpoints.receive, m.edge, raw if isinstance(raw, dict) else {})

    async def _on_heartbeat(self, m: Msg) -> None:
        try:
            hb = S.Heartbeat.model_validate_json(m.data)
        except ValidationError:
            self.metrics.errors.labels("heartbeat").inc()
            return
        if hb.edge_id != edge_of(m.subject):
            self.metrics.errors.labels("heartbeat").inc()
            return
        await asyncio.to_thread(self.registry.heartbeat, hb)

    async def _on_hwm(self, m: Msg) -> None:
        """Empty body: `HighWaterMark` (last contiguous seq + hash held). Body `{"from_seq", "limit"}`:
        the same plus `"entries"`, the SyncedEntry objects held from `from_seq` on (up to the mark),
        so a restored edge can recover what only the cloud still has."""
        edge = edge_of(m.subject)
        try:
            req = json.loads(m.data) if m.data else {}
            from_seq = int(req.get("from_seq", 0)) if isinstance(req, dict) else 0
            limit = max(0, min(int(req.get("limit", 1000)), 1000)) if isinstance(req, dict) else 0
        except (ValueError, TypeError):
            from_seq, limit = 0, 0

        reply = await asyncio.to_thread(self.marks.mark, edge, from_seq, limit)
        if m.reply and self.nc is not None:
            await self.nc.publish(m.reply, json.dumps(reply).encode())

    async def publish_command(self, edge_id: str, cmd_id: str, body: str) -> None:
        await self._js().publish(S.command_subject(edge_id), body.encode(), headers={"Nats-Msg-Id": cmd_id},
                              timeout=5)


async def _close(nc: LeanClient) -> None:
    try:
        await asyncio.wait_for(nc.close(), 5)
    except Exception as exc:  # noqa: BLE001 - closing a broken connection must not stop shutdown
        log.debug("close failed", error=repr(exc))
