"""The edge's sync with the cloud over NATS JetStream (wire: contract/sync.py; docs/SYNC.md).

- Outbox: the journal *is* the outbox. Committed entries after the last acknowledged seq are
  read (own SQLite connection, in a worker thread), filtered by the residency policy and
  published in seq order to `casino.journal.<edge>` with `Nats-Msg-Id = <edge>:<seq>`, pipelined
  in batches. The acknowledged seq advances over the contiguous prefix of PubAcks (a duplicate
  PubAck is success) and is kept in the `kv` table (`sync.sent_seq`), written only after the ack.
  All of this runs on the service's own thread, event loop and NATS connection: the bet path's
  loop pays one coalesced wake-up of that loop per group commit, nothing else (publishing shared
  the bet loop before and cost it 30 % of its WebSocket bets). Commands are applied on the
  casino's loop (`Casino` is single-threaded), handed over and awaited.
- Link down: bets go on (nothing here is on their path); the client reconnects forever; the
  backlog drains on reconnect. Publishing is not buffered by the client while disconnected.
- High-water mark: on every (re)connect, before publishing, the cloud's last (seq, hash) for this
  edge is asked. If the cloud holds a seq this journal lacks, or another hash at a seq it has, the
  journal is fenced (no appends: `edge_out_of_sync`), health fails, publishing and commands stop
  (`reconcile.reconcile_from_cloud` before start repairs a journal that is merely behind).
- Commands in: a durable pull consumer `edge-<edge>` on `casino.cmd.<edge>`; each is applied once
  (`Casino.apply_command` is idempotent by id and journals `command.applied`) and acked after it
  returns; malformed ones are terminated and logged.
- Heartbeats on core NATS every `config.nats.heartbeat_s`.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import structlog
from nats.js import api
from pydantic import ValidationError

from contract import sync as S
from edge_agent import metrics as M
from edge_agent.config import EdgeConfig
from edge_agent.domain.errors import DomainError
from edge_agent.journal.store import JournalFenced, open_readonly
from edge_agent.sync import cloud
from edge_agent.sync.residency import ResidencyFilter
from edge_agent.sync.streams import ensure_streams
from natswire import LeanClient, header_block, header_status, hpub

log = structlog.get_logger("sync")

T = TypeVar("T")

KV_SENT = "sync.sent_seq"

# link / publisher states (health detail)
STARTING, CONNECTED, DISCONNECTED, BEHIND, FORKED = "starting", "connected", "disconnected", "behind", "forked"


def command_consumer(edge_id: str) -> str:
    return f"edge-{edge_id}"


def inbox_prefix(edge_id: str) -> str:
    """Per-edge reply inbox, so that server permissions can confine each edge to its own replies."""
    return f"_INBOX_{edge_id}"


class JournalConflict(RuntimeError):
    """The cloud holds entries this journal lacks or contradicts: appending would fork the chain."""


class SyncService:
    def __init__(self, casino: Any, config: EdgeConfig, *, viewers: Callable[[], int] = lambda: 0,
                 ensure_streams: bool | None = None, batch_size: int = 500, max_inflight: int = 4000,
                 ack_timeout: float = 5.0, request_timeout: float = 2.0, max_backoff: float = 10.0,
                 conflict_recheck_s: float = 30.0, linger_s: float = 0.0,
                 journal_stream: str | None = S.JOURNAL_STREAM, fence_on_conflict: bool = True,
                 viewer_capacity: Callable[[], int] = lambda: 0) -> None:
        self.casino = casino
        self.store = casino.store
        self.config = config
        self.edge_id = config.edge_id
        self.viewers = viewers
        self.viewer_capacity = viewer_capacity
        self.ensure_streams = config.nats.ensure_streams if ensure_streams is None else ensure_streams
        self.batch_size = batch_size
        self.ack_timeout = ack_timeout
        self.request_timeout = request_timeout
        self.max_inflight = max_inflight
        self.linger_s = linger_s
        self.max_backoff = max_backoff
        self.conflict_recheck_s = conflict_recheck_s
        self.journal_stream = journal_stream
        self.fence_on_conflict = fence_on_conflict
        self.filter = ResidencyFilter(config.residency)
        self.subject = S.journal_subject(self.edge_id)
        self.nc: Any = None
        self.js: Any = None
        self.state = STARTING
        self.conflict: str | None = None
        self.published = 0        # messages acknowledged since start (duplicates included)
        self.duplicates = 0       # of which the stream said "duplicate"
        self.commands_applied = 0
        self.commands_rejected = 0
        self.last_error: str | None = None
        self._sent = 0
        self._running = False
        self._tasks: list[asyncio.Task[None]] = []
        self._hwm_needed = True
        self._poke_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None  # the sync thread's loop
        self._casino_loop: asyncio.AbstractEventLoop | None = None  # the bet path's loop
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None  # set on the sync loop to end it
        self._reader: sqlite3.Connection | None = None
        self._hook = self._on_commit
        self._bets_seen = (time.monotonic(), 0)
        self._ack_prefix: str | None = None
        self._ack_results: dict[int, bool | str] = {}  # seq -> duplicate? or the error
        self._ack_window = (1, 0)  # seqs whose acks are awaited
        self._ack_wait_for = 0
        self._new_events()

    def _new_events(self) -> None:
        """Events bind to the loop that first waits on them: fresh ones for each sync thread."""
        self._wake = asyncio.Event()
        self._link = asyncio.Event()
        self._ack_event = asyncio.Event()

    # --- public surface -----------------------------------------------------------------------

    @property
    def sent_seq(self) -> int:
        """Last seq the JetStream journal stream acknowledged (contiguous from 1)."""
        return self._sent

    @property
    def lag(self) -> int:
        return max(0, self.store.durable_seq - self._sent)

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(ok, detail) for /healthz: not ok only when the journal conflicts with the cloud.

        A link that is down is not a failure of the edge: bets go on and the backlog drains later."""
        return self.conflict is None, {"state": self.state, "connected": self.connected, "lag": self.lag,
                                       "sent_seq": self._sent, "conflict": self.conflict,
                                       "last_error": self.last_error}

    async def start(self) -> None:
        """Start the sync thread; returns at once (NATS may well be unreachable)."""
        if self._running:
            return
        self._running = True
        self._casino_loop = asyncio.get_running_loop()
        self._sent = await asyncio.to_thread(self._load_sent_once)
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._thread_main(ready)),
                                        name=f"sync-{self.edge_id}", daemon=True)
        self._thread.start()
        await asyncio.wrap_future(ready)

    async def stop(self, drain_timeout: float = 2.0) -> None:
        """Give the outbox up to `drain_timeout` to publish what is durable, then disconnect."""
        if not self._running:
            return
        deadline = time.monotonic() + drain_timeout
        while (self.connected and self.conflict is None and self._sent < self.store.durable_seq
               and time.monotonic() < deadline):
            self._poke()
            await asyncio.sleep(0.02)
        self._running = False
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopped.set)
            except RuntimeError:
                pass  # its loop already ended
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)
            self._thread = None

    async def _thread_main(self, ready: concurrent.futures.Future[None]) -> None:
        """The sync thread: connection, outbox, commands and heartbeats on their own loop."""
        self._loop = asyncio.get_running_loop()
        self._new_events()
        self._stopped = asyncio.Event()
        try:
            self._reader = open_readonly(self.store.path)
            self.store.on_commit.append(self._hook)
            self._update_metrics()
            self._tasks = [asyncio.create_task(self._main(), name=f"sync-{self.edge_id}")]
        except BaseException as exc:
            ready.set_exception(exc)
            raise
        ready.set_result(None)
        try:
            await self._stopped.wait()
        finally:
            await self._shutdown()
            self._loop = None

    async def _shutdown(self) -> None:
        try:
            self.store.on_commit.remove(self._hook)
        except ValueError:
            pass
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception) as exc:  # noqa: BLE001 - ending anyway
                log.debug("sync task ended", error=repr(exc))
        self._tasks.clear()
        if self.nc is not None:
            try:
                await asyncio.wait_for(self.nc.close(), 3)
            except Exception as exc:  # noqa: BLE001 - closing a broken connection
                log.debug("sync close failed", error=repr(exc))
            self.nc = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _poke(self) -> None:
        """Wake the outbox from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._wake.set)
            except RuntimeError:
                pass

    async def _on_sync_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the sync thread's loop (where the NATS connection lives)."""
        if self._loop is None or asyncio.get_running_loop() is self._loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def _on_casino_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the bet path's loop (the casino's state is single-threaded)."""
        if self._casino_loop is None or asyncio.get_running_loop() is self._casino_loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._casino_loop))

    async def publish_checkpoint(self, subject: str, payload: bytes) -> Any:
        """`CheckpointPublisher`'s publish callable: JetStream publish on `casino.checkpoint.<edge>`,
        raising when it is not acknowledged (the publisher retries at its next tick). The
        Nats-Msg-Id is derived from the payload, so a retry of the same checkpoint is deduplicated."""
        if subject != S.checkpoint_subject(self.edge_id):
            raise ValueError(f"not this edge's checkpoint subject: {subject}")
        if not self.connected or self.js is None:
            raise ConnectionError("sync is not connected")
        msg_id = f"{self.edge_id}:checkpoint:{hashlib.sha256(payload).hexdigest()[:32]}"
        return await self._on_sync_loop(
            self.js.publish(subject, payload, timeout=self.ack_timeout, headers={"Nats-Msg-Id": msg_id}))

    # --- the kv mark --------------------------------------------------------------------------

    def _load_sent_once(self) -> int:
        conn = open_readonly(self.store.path)
        try:
            row = conn.execute("SELECT value FROM kv WHERE key = ?", (KV_SENT,)).fetchone()
        finally:
            conn.close()
        return int(row[0]) if row else 0

    def _advance(self, seq: int) -> None:
        if seq <= self._sent:
            return
        self._sent = seq
        # Ordered with the entries around it by the writer thread; not awaited (a lost write only
        # means re-publishing a few entries, which dedup and the idempotent consumer absorb).
        self.store.side_write([("INSERT OR REPLACE INTO kv VALUES (?, ?)", (KV_SENT, str(seq)))])
        M.SYNC_LAST_ACK.set(time.time())
        self._update_metrics()

    def _update_metrics(self) -> None:
        M.SYNC_LAG.labels(edge=self.edge_id).set(self.lag)

    # --- wake-ups from the journal writer -----------------------------------------------------

    def _on_commit(self, rows: int, seconds: float) -> None:
        """Writer thread, once per group commit: coalesce into one loop wake-up."""
        if rows and not self._poke_pending and self._loop is not None and not self._loop.is_closed():
            self._poke_pending = True
            try:
                self._loop.call_soon_threadsafe(self._poked)
            except RuntimeError:
                self._poke_pending = False

    def _poked(self) -> None:
        self._poke_pending = False
        self._wake.set()

    # --- connection ---------------------------------------------------------------------------

    async def _main(self) -> None:
        backoff = 0.2
        while self._running:
            try:
                await self._connect()
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                self.state = DISCONNECTED
                self.last_error = f"connect: {exc!r}"
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(self.max_backoff, backoff * 2)
        self._tasks += [asyncio.create_task(self._publish_loop(), name=f"sync-out-{self.edge_id}"),
                        asyncio.create_task(self._command_loop(), name=f"sync-cmd-{self.edge_id}"),
                        asyncio.create_task(self._heartbeat_loop(), name=f"sync-hb-{self.edge_id}")]

    async def _connect(self) -> None:
        n = self.config.nats
        ping = max(0.5, min(5.0, n.heartbeat_s))
        opts: dict[str, Any] = {
            "servers": n.servers, "name": f"edge-{self.edge_id}", "allow_reconnect": True,
            "max_reconnect_attempts": -1, "reconnect_time_wait": 1.0, "connect_timeout": 2.0,
            "ping_interval": ping, "max_outstanding_pings": 3,
            # No client-side buffering while disconnected: the journal is the buffer, and a
            # replayed stale buffer could land after entries that overtook it.
            "pending_size": 0, "inbox_prefix": inbox_prefix(self.edge_id),
            "disconnected_cb": self._on_disconnected, "reconnected_cb": self._on_reconnected,
            "error_cb": self._on_error, "closed_cb": self._on_closed,
        }
        if n.user:
            opts.update(user=n.user, password=n.password)
        self.state = DISCONNECTED  # until the first connect succeeds (nats.connect retries forever)
        nc = LeanClient()
        await nc.connect(**opts)
        self.nc = nc
        self.js = nc.jetstream(timeout=self.request_timeout)
        if self.ensure_streams:
            await ensure_streams(self.js, n.stream_replicas)
        self._hwm_needed = True
        self.state = CONNECTED
        self._link.set()
        log.info("sync connected", edge=self.edge_id, url=nc.connected_url.netloc if nc.connected_url else None)

    async def _on_disconnected(self) -> None:
        self._link.clear()
        if self.conflict is None:
            self.state = DISCONNECTED
        log.warning("sync disconnected", edge=self.edge_id, sent_seq=self._sent)

    async def _on_reconnected(self) -> None:
        self._hwm_needed = True
        if self.conflict is None:
            self.state = CONNECTED
        self._link.set()
        self._wake.set()
        log.info("sync reconnected", edge=self.edge_id)

    async def _on_error(self, exc: Exception) -> None:
        self.last_error = repr(exc)
        if "ermission" in str(exc):
            log.error("nats permission violation", edge=self.edge_id, error=str(exc))

    async def _on_closed(self) -> None:
        self._link.clear()

    async def _wait_link(self) -> None:
        try:
            await asyncio.wait_for(self._link.wait(), 1.0)
        except TimeoutError:
            pass

    # --- high-water mark ----------------------------------------------------------------------

    async def _check_hwm(self) -> None:
        """Before publishing after a (re)connect: does the cloud hold anything we do not?"""
        hwm, source = await cloud.query_hwm(self.nc, self.edge_id, timeout=self.request_timeout,
                                            stream=self.journal_stream or S.JOURNAL_STREAM)
        local = await asyncio.to_thread(self._local_head)
        conflict: str | None = None
        state = CONNECTED
        if hwm.seq > local:
            state = BEHIND
            conflict = (f"the cloud holds seq {hwm.seq} but this journal ends at {local}: restored from a "
                        f"replica that is behind; run reconcile_from_cloud before starting the edge")
        elif hwm.seq > 0:
            mine = await asyncio.to_thread(self._hash_at, hwm.seq)
            if mine != hwm.hash:
                state = FORKED
                conflict = (f"the cloud's entry {hwm.seq} has hash {hwm.hash[:16]}… but this journal's has "
                            f"{(mine or '')[:16]}…: the chain forked; operator action needed")
            elif source == cloud.CONTROL_PLANE and hwm.seq > self._sent:
                # The control plane applied these contiguously: nothing before it needs sending.
                self._advance(hwm.seq)
        if conflict is not None:
            self._set_conflict(state, conflict)
        elif self.conflict is not None:
            log.warning("sync conflict cleared", edge=self.edge_id)
            self.conflict = None
            self.store.unfence()
        self.state = state if conflict else (CONNECTED if self.connected else DISCONNECTED)
        self._hwm_needed = False
        log.info("sync high-water mark", edge=self.edge_id, cloud_seq=hwm.seq, source=source, local_seq=local,
                 sent_seq=self._sent, conflict=conflict)

    def _set_conflict(self, state: str, reason: str) -> None:
        if self.conflict != reason:
            log.error("sync: journal conflicts with the cloud; appends refused", edge=self.edge_id, reason=reason)
        self.conflict = reason
        self.state = state
        if self.fence_on_conflict:
            self.store.fence(reason)

    def _local_head(self) -> int:
        assert self._reader is not None
        row = self._reader.execute("SELECT MAX(seq) FROM journal").fetchone()
        return row[0] or 0

    def _hash_at(self, seq: int) -> str | None:
        assert self._reader is not None
        row = self._reader.execute("SELECT hash FROM journal WHERE seq = ?", (seq,)).fetchone()
        return row[0] if row else None

    # --- outbox -------------------------------------------------------------------------------

    def _load_batch(self, from_seq: int, limit: int) -> list[tuple[int, bytes]]:
        """Worker thread: committed rows from `from_seq`, as wire payloads."""
        assert self._reader is not None
        rows = self._reader.execute(
            "SELECT seq, ts, kind, data, prev, hash FROM journal WHERE seq >= ? ORDER BY seq LIMIT ?",
            (from_seq, limit)).fetchall()
        out: list[tuple[int, bytes]] = []
        expected = from_seq
        for seq, ts, kind, data, prev, h in rows:
            if seq != expected:  # never publish across a hole (cannot happen: seq is contiguous)
                break
            out.append((seq, self.filter.payload_row(seq, ts, kind, data, prev, h)))
            expected += 1
        return out

    async def _publish_loop(self) -> None:
        backoff = 0.1
        while self._running:
            try:
                if not self.connected:
                    self._update_metrics()  # the lag grows while the link is down
                    await self._wait_link()
                    continue
                if self._hwm_needed or (self.conflict is not None):
                    if self.conflict is not None and not self._hwm_needed:
                        await asyncio.sleep(self.conflict_recheck_s)
                    await self._check_hwm()
                    if self.conflict is not None:
                        continue
                if await self._publish_run():
                    backoff = 0.1
                else:
                    await asyncio.sleep(backoff * (0.5 + random.random()))
                    backoff = min(self.max_backoff, backoff * 2)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - never let the outbox die
                self.last_error = f"outbox: {exc!r}"
                log.warning("sync outbox error", edge=self.edge_id, error=repr(exc))
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(self.max_backoff, backoff * 2)

    async def _publish_run(self) -> bool:
        """Publish from sent+1 on with up to `max_inflight` entries awaiting their PubAck; advance
        over the contiguous acknowledged prefix. Returns False on a failed or missing ack (the
        caller backs off; everything after `sent_seq` is published again, dedup absorbs it), True
        when it stopped for another reason (link down, a new high-water-mark check, stop).

        Per entry this costs one buffered publish and one small ack callback (no future, no JSON
        parse), on the sync thread's loop."""
        await self._ensure_ack_sub()
        results = self._ack_results
        results.clear()
        nxt = self._sent + 1
        nc = self.nc
        extra = {"Nats-Expected-Stream": self.journal_stream} if self.journal_stream else {}
        subject, ack_prefix = self.subject.encode(), (self._ack_prefix or "").encode()
        try:
            while self._running and self.connected and not self._hwm_needed and self.conflict is None:
                room = self.max_inflight - (nxt - self._sent - 1)
                batch: list[tuple[int, bytes]] = []
                if room > 0:
                    if self.linger_s and self.store.durable_seq - nxt < self.batch_size // 4:
                        await asyncio.sleep(self.linger_s)  # caught up: let a few commits gather
                    self._wake.clear()
                    # inline: this is the sync thread (SQLite releases the GIL while it reads)
                    batch = self._load_batch(nxt, min(self.batch_size, room))
                    if batch:
                        self._ack_window = (self._sent + 1, batch[-1][0])
                    if batch:
                        # One buffered write per batch of pre-encoded HPUBs (natswire): nats-py's
                        # per-publish subject validation and header encoding was a third of
                        # the outbox's CPU at backlog speed.
                        await nc.publish_raw(b"".join(
                            hpub(subject, b"%s%d" % (ack_prefix, seq),
                                 header_block({"Nats-Msg-Id": S.journal_msg_id(self.edge_id, seq), **extra}), payload)
                            for seq, payload in batch), len(batch))
                        nxt = batch[-1][0] + 1
                self._update_metrics()
                if nxt == self._sent + 1:  # nothing in flight
                    try:
                        await asyncio.wait_for(self._wake.wait(), 1.0)
                    except TimeoutError:
                        pass
                    continue
                if not batch or nxt - self._sent - 1 >= self.max_inflight:
                    # nothing more to send now: wait for the oldest ack (or a new commit)
                    self._ack_wait_for = self._sent + 1
                    if self._ack_wait_for not in results:
                        self._ack_event.clear()
                        waker = asyncio.ensure_future(self._wake.wait())
                        acked = asyncio.ensure_future(self._ack_event.wait())
                        done, _ = await asyncio.wait([acked, waker], timeout=self.ack_timeout,
                                                     return_when=asyncio.FIRST_COMPLETED)
                        waker.cancel()
                        acked.cancel()
                        if not done:
                            self.last_error = f"puback {self._sent + 1}: no acknowledgement in {self.ack_timeout}s"
                            return False
                top = self._sent
                while top + 1 in results:
                    r = results.pop(top + 1)
                    if isinstance(r, str):
                        self.last_error = f"puback {top + 1}: {r}"
                        self._advance(top)
                        return False
                    self.published += 1
                    self.duplicates += r
                    top += 1
                self._advance(top)
            return True
        except Exception as exc:  # noqa: BLE001 - link lost mid-publish
            self.last_error = f"publish: {exc!r}"
            return False
        finally:
            self._ack_window = (1, 0)
            results.clear()

    async def _ensure_ack_sub(self) -> None:
        """One wildcard subscription for every PubAck: `<inbox>.acks.<nuid>.<seq>` (survives reconnects)."""
        if self._ack_prefix is None:
            self._ack_prefix = f"{inbox_prefix(self.edge_id)}.acks.{self.nc._nuid.next().decode()}."
            await self.nc.raw_subscribe(self._ack_prefix + "*", self._on_ack)

    def _on_ack(self, subject: bytes, _reply: bytes, data: bytes, headers: bytes | None) -> None:
        try:
            seq = int(subject[len(self._ack_prefix or ""):])
        except ValueError:
            return
        lo, hi = self._ack_window
        if not lo <= seq <= hi:
            return  # from an earlier attempt: that range is being published again anyway
        if not data:  # a status message: 503 no responders (no stream for the subject)
            status = header_status(headers) if headers else "?"
            res: bool | str = f"no stream acknowledged (status {status}): NoStreamResponse"
        elif b'"error"' in data:
            res = f"PubAck error: {data[:300].decode('utf-8', 'replace')}"
        else:
            res = b'"duplicate"' in data  # present only when true (`"duplicate": true`)
        self._ack_results[seq] = res
        if seq == self._ack_wait_for:
            self._ack_event.set()

    # --- commands -----------------------------------------------------------------------------

    async def _command_loop(self) -> None:
        sub: Any = None
        backoff = 0.2
        subject = S.command_subject(self.edge_id)
        durable = command_consumer(self.edge_id)
        while self._running:
            try:
                if not self.connected:
                    await self._wait_link()
                    continue
                if sub is None:
                    cfg = api.ConsumerConfig(durable_name=durable, filter_subject=subject,
                                             ack_policy=api.AckPolicy.EXPLICIT, ack_wait=10.0,
                                             deliver_policy=api.DeliverPolicy.ALL, max_ack_pending=256)
                    sub = await self.js.pull_subscribe(subject, durable=durable, stream=S.COMMAND_STREAM,
                                                       config=cfg)
                try:
                    msgs = await sub.fetch(64, timeout=2.0)
                except TimeoutError:
                    continue
                backoff = 0.2
                for msg in msgs:
                    await self._handle_command(msg)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - consumer gone, link lost, ...: rebuild and retry
                self.last_error = f"commands: {exc!r}"
                if sub is not None:
                    try:
                        await sub.unsubscribe()
                    except Exception as unsub_exc:  # noqa: BLE001 - the link is gone: nothing to stop
                        log.debug("command unsubscribe failed", error=repr(unsub_exc))
                    sub = None
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(self.max_backoff, backoff * 2)

    async def _handle_command(self, msg: Any) -> None:
        try:
            cmd = S.parse_command(msg.data)
        except (ValidationError, ValueError) as exc:
            self.commands_rejected += 1
            log.error("malformed command terminated", edge=self.edge_id, error=str(exc)[:500],
                      data=msg.data[:200].decode("utf-8", "replace"))
            await msg.term()
            return
        if self.conflict is not None:
            await msg.nak(delay=5.0)  # applying would append to a journal that must not grow
            return
        try:
            await self._on_casino_loop(self.casino.apply_command(cmd))
        except JournalFenced:
            await msg.nak(delay=5.0)
            return
        except DomainError as exc:
            self.commands_rejected += 1
            log.error("command refused by the domain: terminated", edge=self.edge_id, command_id=cmd.id,
                      type=cmd.type, code=exc.code, error=exc.message)
            await msg.term()
            return
        except Exception as exc:
            log.exception("command failed; redelivery later", edge=self.edge_id, command_id=cmd.id)
            self.last_error = f"command {cmd.id}: {exc!r}"
            await msg.nak(delay=2.0)
            return
        self.commands_applied += 1
        await msg.ack()  # the journal holds command.applied now: a redelivery is a no-op

    # --- heartbeats ---------------------------------------------------------------------------

    def heartbeat(self) -> S.Heartbeat:
        now = time.monotonic()
        accepted = sum(v for (_, result), v in list(M.BETS.counts.items()) if result == "accepted")
        t0, n0 = self._bets_seen
        rate = int((accepted - n0) / (now - t0)) if now > t0 else 0
        self._bets_seen = (now, accepted)
        http = self.config.http
        return S.Heartbeat(edge_id=self.edge_id, jurisdiction=self.config.jurisdiction,
                           public_url=http.public_url or f"http://{http.host}:{http.port}",
                           ts=int(time.time() * 1000), head_seq=self.store.durable_seq,
                           viewers=int(self.viewers()), viewer_capacity=int(self.viewer_capacity()),
                           bets_per_s=max(0, rate), healthy=self.conflict is None)

    async def _heartbeat_loop(self) -> None:
        subject = S.heartbeat_subject(self.edge_id)
        while self._running:
            try:
                if self.connected:
                    await self.nc.publish(subject, self.heartbeat().model_dump_json().encode())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                self.last_error = f"heartbeat: {exc!r}"
            await asyncio.sleep(self.config.nats.heartbeat_s)
