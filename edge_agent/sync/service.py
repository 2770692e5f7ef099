"""The edge's sync with the cloud over NATS JetStream (wire: contract/sync.py; docs/SYNC.md): the
edge process's side. The publishing itself runs in a child process (publisher_process.py) that
this service starts, feeds and restarts.

- Outbox: the journal *is* the outbox. The publisher process reads committed entries after
  `sent_seq` from the SQLite file (read-only), filters them by the residency policy, publishes
  them with `Nats-Msg-Id = <edge>:<seq>` and reports the acknowledged seq; this service writes
  it to the `kv` table (`sync.sent_seq`) through the journal's writer, and serves the lag metric.
  On the bet path: one byte written to a pipe per group commit (the writer thread), nothing else.
- Publisher process died (kill -9, OOM, a bug): the next one starts after a backoff from the
  last `sent_seq` it reported; what was in flight is published again and the stream's msg-id
  dedup drops it. Bets go on meanwhile (nothing here is on their path); the lag grows.
- Link down, high-water mark, fence: as before, decided in the publisher (it holds the
  connection); when it reports a conflict with the cloud this service fences the journal
  (no appends: `edge_out_of_sync`) and health fails; when it reports it cleared, unfences.
- Commands in: the publisher hands each command over; it is applied here, on the casino's loop
  (`Casino.apply_command` is idempotent by id and journals `command.applied`), and the answer
  (ack / term / nak) goes back for the publisher to give the JetStream message.
- Heartbeats every `config.nats.heartbeat_s`, made here (the facts are the edge's), sent by the
  publisher when it is connected.
"""
from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
from pydantic import ValidationError

from contract import sync as S
from edge_agent import metrics as M
from edge_agent.children import die_with_parent
from edge_agent.config import EdgeConfig
from edge_agent.domain.errors import DomainError
from edge_agent.journal.store import JournalFenced, open_readonly
from edge_agent.sync import channel as C
from edge_agent.sync.publisher_process import (
    BEHIND,
    CONNECTED,
    DISCONNECTED,
    FORKED,
    STARTING,
    command_consumer,
    inbox_prefix,
)

log = structlog.get_logger("sync")

KV_SENT = "sync.sent_seq"
PUBLISHER_DOWN = "publisher_down"  # state while the publisher process is being restarted

__all__ = ["BEHIND", "CONNECTED", "DISCONNECTED", "FORKED", "KV_SENT", "PUBLISHER_DOWN", "STARTING",
           "JournalConflict", "SyncService", "command_consumer", "inbox_prefix"]


class JournalConflict(RuntimeError):
    """The cloud holds entries this journal lacks or contradicts: appending would fork the chain."""


class SyncService:
    def __init__(self, casino: Any, config: EdgeConfig, *, viewers: Callable[[], int] = lambda: 0,
                 ensure_streams: bool | None = None, batch_size: int = 500, max_inflight: int = 4000,
                 ack_timeout: float = 5.0, request_timeout: float = 2.0, max_backoff: float = 10.0,
                 conflict_recheck_s: float = 30.0, journal_stream: str | None = S.JOURNAL_STREAM,
                 fence_on_conflict: bool = True, viewer_capacity: Callable[[], int] = lambda: 0,
                 restart_backoff: float = 0.2, linger_s: float = 0.002) -> None:
        self.casino = casino
        self.store = casino.store
        self.config = config
        self.edge_id = config.edge_id
        self.viewers = viewers
        self.viewer_capacity = viewer_capacity
        self.ack_timeout = ack_timeout
        self.max_backoff = max_backoff
        self.restart_backoff = restart_backoff
        self.fence_on_conflict = fence_on_conflict
        # What the publisher process needs besides the edge's identity, its NATS and residency.
        self._opts = {"ensure_streams": config.nats.ensure_streams if ensure_streams is None else ensure_streams,
                      "batch_size": batch_size, "max_inflight": max_inflight, "ack_timeout": ack_timeout,
                      "request_timeout": request_timeout, "max_backoff": max_backoff,
                      "conflict_recheck_s": conflict_recheck_s, "journal_stream": journal_stream,
                      "linger_s": linger_s}
        # as the publisher last reported them
        self.state = STARTING
        self.connected = False
        self.connected_url: str | None = None
        self.conflict: str | None = None
        self.last_error: str | None = None
        self.published = 0        # messages acknowledged since start (duplicates included)
        self.duplicates = 0       # of which the stream said "duplicate"
        self.commands_applied = 0
        self.commands_rejected = 0
        self.restarts = 0         # publisher processes that ended without being asked to
        self.publisher_pid: int | None = None
        self._sent = 0
        self._counted = (0, 0)    # (published, duplicates) of the publishers that ended
        self._fenced = False
        self._running = False
        self._chan: C.Channel | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._spawned = asyncio.Event()
        self._checkpoints: dict[int, asyncio.Future[str | None]] = {}
        self._next_id = 0
        self._command_task: asyncio.Task[None] | None = None
        # The poke pipe lives as long as the service: every publisher process inherits its read
        # end, so a restart loses no wake-up and the writer thread never writes to a closed fd.
        self._poke_r = self._poke_w = -1
        self._poke_lock = threading.Lock()
        self._hook = self._on_commit
        self._bets_seen = (time.monotonic(), 0)

    # --- public surface -----------------------------------------------------------------------

    @property
    def sent_seq(self) -> int:
        """Last seq the JetStream journal stream acknowledged (contiguous from 1)."""
        return self._sent

    @property
    def lag(self) -> int:
        return max(0, self.store.durable_seq - self._sent)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(ok, detail) for /healthz: not ok only when the journal conflicts with the cloud.

        A link that is down is not a failure of the edge (bets go on, the backlog drains later),
        nor is a publisher process being restarted (its `restarts` count and the lag tell)."""
        return self.conflict is None, {"state": self.state, "connected": self.connected, "lag": self.lag,
                                       "sent_seq": self._sent, "conflict": self.conflict,
                                       "last_error": self.last_error,
                                       "publisher": {"pid": self.publisher_pid, "up": self._chan is not None,
                                                     "restarts": self.restarts}}

    async def start(self) -> None:
        """Start the publisher process; returns once it is spawned (NATS may well be unreachable)."""
        if self._running:
            return
        self._running = True
        self._sent = await asyncio.to_thread(self._load_sent_once)
        self._poke_r, self._poke_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.store.on_commit.append(self._hook)
        self._update_metrics()
        M.SYNC_PUBLISHER_RESTARTS.labels(edge=self.edge_id)  # the series exists from 0 (alerts use increase())
        self._tasks = [asyncio.create_task(self._supervise(), name=f"sync-sup-{self.edge_id}"),
                       asyncio.create_task(self._tick_loop(), name=f"sync-tick-{self.edge_id}")]
        await asyncio.wait([self._tasks[0], asyncio.ensure_future(self._spawned.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        if self._tasks[0].done():
            self._tasks[0].result()  # the spawn failed: say why

    async def stop(self, drain_timeout: float = 2.0) -> None:
        """Give the outbox up to `drain_timeout` to publish what is durable, then stop the publisher."""
        if not self._running:
            return
        deadline = time.monotonic() + drain_timeout
        # (a publisher still starting gets the same time: it may well connect and drain in it)
        while ((self.connected or self.state == STARTING) and self.conflict is None and self._sent < self.store.durable_seq
               and time.monotonic() < deadline):
            await asyncio.sleep(0.02)
        self._running = False
        if self._chan is not None:
            self._chan.send(C.STOP)
        proc = self._proc
        if proc is not None:
            try:
                await asyncio.to_thread(proc.wait, 10)
            except subprocess.TimeoutExpired:
                log.warning("sync publisher did not stop; killing it", edge=self.edge_id, pid=proc.pid)
                proc.kill()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        try:
            self.store.on_commit.remove(self._hook)
        except ValueError:
            pass
        with self._poke_lock:  # the writer thread is not inside a poke once we hold it
            os.close(self._poke_r)
            os.close(self._poke_w)
            self._poke_r = self._poke_w = -1

    async def publish_checkpoint(self, subject: str, payload: bytes) -> None:
        """`CheckpointPublisher`'s publish callable: a JetStream publish on `casino.checkpoint.<edge>`
        by the publisher process, raising when it is not acknowledged (the checkpoint publisher
        retries at its next tick). The Nats-Msg-Id is derived from the payload (deduplicated)."""
        if subject != S.checkpoint_subject(self.edge_id):
            raise ValueError(f"not this edge's checkpoint subject: {subject}")
        chan = self._chan
        if not self.connected or chan is None:
            raise ConnectionError("sync is not connected")
        self._next_id += 1
        cid = self._next_id
        fut: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._checkpoints[cid] = fut
        chan.send(C.CHECKPOINT, id=cid, payload=base64.b64encode(payload).decode())
        try:
            error = await asyncio.wait_for(fut, self.ack_timeout + 2.0)
        finally:
            self._checkpoints.pop(cid, None)
        if error is not None:
            raise ConnectionError(f"checkpoint not acknowledged: {error}")

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
        # Never ahead of the cloud: the publisher reports only acknowledged, contiguous seqs.
        self.store.side_write([("INSERT OR REPLACE INTO kv VALUES (?, ?)", (KV_SENT, str(seq)))])
        M.SYNC_LAST_ACK.set(time.time())
        self._update_metrics()

    def _update_metrics(self) -> None:
        M.SYNC_LAG.labels(edge=self.edge_id).set(self.lag)

    # --- wake-ups from the journal writer -----------------------------------------------------

    def _on_commit(self, rows: int, seconds: float) -> None:
        """Writer thread, once per group commit: one byte to the publisher (never blocks)."""
        if rows:
            with self._poke_lock:
                if self._poke_w >= 0:
                    C.poke(self._poke_w)

    # --- the publisher process ----------------------------------------------------------------

    async def _supervise(self) -> None:
        """Run the publisher process; start a new one whenever it ends unasked (backoff).

        Never two at once: the next one is spawned only after the last one is reaped, so two
        publishers never interleave on the stream (each would still be deduplicated, but the
        reported mark would be racy)."""
        backoff = self.restart_backoff
        while self._running:
            started = time.monotonic()
            rc = await self._run_publisher()
            if not self._running:
                break
            self.restarts += 1
            M.SYNC_PUBLISHER_RESTARTS.labels(edge=self.edge_id).inc()
            log.error("sync publisher process ended; starting another", edge=self.edge_id, returncode=rc,
                      sent_seq=self._sent)
            if time.monotonic() - started > 30:
                backoff = self.restart_backoff
            await asyncio.sleep(backoff)
            backoff = min(self.max_backoff, backoff * 2)

    async def _run_publisher(self) -> int | None:
        """One publisher process's life: spawn, hand over, serve its messages until it ends."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # On the loop's thread, not a worker's: PR_SET_PDEATHSIG fires when the *thread* that
            # forked ends. A fork+exec of a few ms, once per publisher process.
            proc = subprocess.Popen(  # noqa: ASYNC220
                [sys.executable, "-m", "edge_agent.sync.publisher_process", "--channel-fd", str(theirs.fileno()),
                 "--poke-fd", str(self._poke_r)],
                pass_fds=(theirs.fileno(), self._poke_r), preexec_fn=die_with_parent())  # noqa: PLW1509
        finally:
            theirs.close()
        self._proc, self.publisher_pid = proc, proc.pid
        chan = await C.Channel.open(mine.detach())
        chan.send(C.INIT, edge_id=self.edge_id, db_path=str(self.store.path), sent=self._sent,
                  nats=self.config.nats.model_dump(mode="json"),
                  residency=self.config.residency.model_dump(mode="json"), opts=self._opts)
        self._chan = chan
        M.SYNC_PUBLISHER_UP.labels(edge=self.edge_id).set(1)
        self._spawned.set()
        base_pub, base_dup = self._counted
        last = (0, 0)
        try:
            while True:
                msg = await chan.recv()
                if msg is None:
                    break
                t = msg["t"]
                if t == C.SENT:
                    last = (int(msg["published"]), int(msg["duplicates"]))
                    self.published, self.duplicates = base_pub + last[0], base_dup + last[1]
                    self._advance(int(msg["seq"]))
                elif t == C.STATE:
                    self._on_state(msg)
                elif t == C.COMMAND:  # one at a time: the publisher waits for each answer
                    self._command_task = asyncio.create_task(self._apply_command(chan, msg))
                elif t == C.CHECKPOINT_DONE:
                    fut = self._checkpoints.pop(msg["id"], None)
                    if fut is not None and not fut.done():
                        fut.set_result(msg["error"])
        finally:
            self._chan = None
            M.SYNC_PUBLISHER_UP.labels(edge=self.edge_id).set(0)
            self._counted = (base_pub + last[0], base_dup + last[1])
            self.connected = False
            self.connected_url = None
            if self._running:
                self.state = PUBLISHER_DOWN
            for fut in self._checkpoints.values():
                if not fut.done():
                    fut.set_result("the publisher process ended")
            await chan.close()
        return await asyncio.to_thread(_reap, proc)

    def _on_state(self, msg: dict[str, Any]) -> None:
        self.state, self.connected, self.connected_url = msg["state"], bool(msg["connected"]), msg["url"]
        self.last_error = msg["last_error"]
        conflict = msg["conflict"]
        if conflict is not None:
            if self.fence_on_conflict:
                self.store.fence(conflict)  # the publisher stopped publishing; appends stop here
                self._fenced = True
        elif self.conflict is not None and self._fenced:
            self.store.unfence()
            self._fenced = False
        self.conflict = conflict

    # --- commands -----------------------------------------------------------------------------

    async def _apply_command(self, chan: C.Channel, msg: dict[str, Any]) -> None:
        result, delay = self._classify(await self._apply(base64.b64decode(msg["data"])))
        chan.send(C.COMMAND_DONE, id=msg["id"], result=result, delay=delay)

    @staticmethod
    def _classify(outcome: str) -> tuple[str, float | None]:
        return {"applied": (C.ACK, None), "rejected": (C.TERM, None), "fenced": (C.NAK, 5.0)}.get(
            outcome, (C.NAK, 2.0))

    async def _apply(self, data: bytes) -> str:
        """applied | rejected (terminate: it can never apply) | fenced | failed (redeliver later)."""
        try:
            cmd = S.parse_command(data)
        except (ValidationError, ValueError) as exc:
            self.commands_rejected += 1
            log.error("malformed command terminated", edge=self.edge_id, error=str(exc)[:500],
                      data=data[:200].decode("utf-8", "replace"))
            return "rejected"
        if self.conflict is not None:
            return "fenced"  # applying would append to a journal that must not grow
        try:
            await self.casino.apply_command(cmd)
        except JournalFenced:
            return "fenced"
        except DomainError as exc:
            self.commands_rejected += 1
            log.error("command refused by the domain: terminated", edge=self.edge_id, command_id=cmd.id,
                      type=cmd.type, code=exc.code, error=exc.message)
            return "rejected"
        except Exception as exc:
            log.exception("command failed; redelivery later", edge=self.edge_id, command_id=cmd.id)
            self.last_error = f"command {cmd.id}: {exc!r}"
            return "failed"
        self.commands_applied += 1
        return "applied"  # the journal holds command.applied now: a redelivery is a no-op

    # --- heartbeats and the lag gauge ---------------------------------------------------------

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

    async def _tick_loop(self) -> None:
        """The lag gauge moves while nothing is acknowledged too (link or publisher down); a
        heartbeat goes out every `heartbeat_s` while the publisher is connected."""
        every = self.config.nats.heartbeat_s
        next_hb = time.monotonic()
        while self._running:
            self._update_metrics()
            if time.monotonic() >= next_hb:
                next_hb = time.monotonic() + every
                chan = self._chan
                if chan is not None and self.connected:
                    try:
                        chan.send(C.HEARTBEAT, payload=self.heartbeat().model_dump_json())
                    except Exception as exc:  # noqa: BLE001 - a heartbeat is never worth stopping for
                        log.warning("heartbeat not sent", edge=self.edge_id, error=repr(exc))
            await asyncio.sleep(min(0.25, every))


def _reap(proc: subprocess.Popen[bytes]) -> int | None:
    try:
        return proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()  # its channel closed but it lingers: it can do nothing useful any more
        return proc.wait()
