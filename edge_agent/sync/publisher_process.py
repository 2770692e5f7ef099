"""The edge's sync publisher, in its own OS process (started and supervised by `SyncService`).

    python -m edge_agent.sync.publisher_process --channel-fd N --poke-fd M   (the edge starts it)

Why a process: publishing costs ≈ 11 µs of CPU per entry; on the edge's thread it came out of the
bet loop's share of one GIL (30 % fewer WebSocket bets with the sync on). Here it costs the bet
path one byte written to a pipe per group commit and one short line read per acknowledged batch.

What it owns: the NATS connection, the outbox (outbox.py), the high-water-mark check on every
(re)connect, the command consumer (each command is handed to the edge to apply, then acked,
nak'd or terminated as the edge answers), heartbeats and checkpoint publishes (payloads made by
the edge). What it does not own: the journal. It opens the SQLite file read-only (WAL readers
never block the writer, and Litestream sees nothing new); the `sync.sent_seq` mark, the fence
and every append stay with the edge, which writes them when this process reports.

Durability invariants:
- It reports `sent` only for seqs the stream acknowledged, contiguously: the edge's mark never
  runs ahead of the cloud.
- It starts from the mark the edge hands over in `init`; after a kill -9 the edge starts a new
  one from its last reported `sent`, which re-publishes what was in flight (msg-id dedup).
- It exits when the edge's end of the channel closes (and PR_SET_PDEATHSIG ends it with the edge).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import random
import sqlite3
import time
from typing import Any

import structlog
from nats.js import api

from contract import sync as S
from edge_agent.config import NatsConfig, ResidencyPolicy
from edge_agent.journal.store import open_readonly
from edge_agent.sync import channel as C
from edge_agent.sync import cloud
from edge_agent.sync.outbox import Outbox
from edge_agent.sync.residency import ResidencyFilter
from edge_agent.sync.streams import ensure_streams
from natswire import LeanClient

log = structlog.get_logger("sync.publisher")

REPORT_S = 0.005  # acknowledged seqs are reported to the edge at most this often

# link / publisher states (health detail)
STARTING, CONNECTED, DISCONNECTED, BEHIND, FORKED = "starting", "connected", "disconnected", "behind", "forked"


def command_consumer(edge_id: str) -> str:
    return f"edge-{edge_id}"


def inbox_prefix(edge_id: str) -> str:
    """Per-edge reply inbox, so that server permissions can confine each edge to its own replies."""
    return f"_INBOX_{edge_id}"


class Publisher:
    def __init__(self, chan: C.Channel, poke_fd: int, init: dict[str, Any]) -> None:
        o = init["opts"]
        self.chan = chan
        self.poke_fd = poke_fd
        self.edge_id: str = init["edge_id"]
        self.db_path: str = init["db_path"]
        self.nats = NatsConfig(**init["nats"])
        self.ensure_streams: bool = o["ensure_streams"]
        self.request_timeout: float = o["request_timeout"]
        self.max_backoff: float = o["max_backoff"]
        self.conflict_recheck_s: float = o["conflict_recheck_s"]
        self.journal_stream: str | None = o["journal_stream"]
        self.ack_timeout: float = o["ack_timeout"]
        self.reader: sqlite3.Connection = open_readonly(self.db_path)
        self.outbox = Outbox(self.reader, ResidencyFilter(ResidencyPolicy(**init["residency"])), self.edge_id,
                             journal_stream=self.journal_stream, batch_size=o["batch_size"],
                             max_inflight=o["max_inflight"], ack_timeout=self.ack_timeout,
                             inbox=inbox_prefix(self.edge_id), on_error=self._error, linger_s=o["linger_s"])
        self.outbox.sent = int(init["sent"])
        self.nc: Any = None
        self.js: Any = None
        self.state = STARTING
        self.conflict: str | None = None
        self.last_error: str | None = None
        self._running = True
        self._hwm_needed = True
        self._link = asyncio.Event()
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}  # command id -> the edge's answer
        self._next_id = 0
        self._reported: tuple[Any, ...] = ()
        self._tasks: list[asyncio.Task[None]] = []
        self._sent_due = False

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    # --- reporting to the edge ----------------------------------------------------------------

    def _error(self, text: str) -> None:
        self.last_error = text

    def _advance(self, seq: int) -> None:
        """Acknowledged up to `seq`: told to the edge at most every `REPORT_S` (each report costs
        the bet loop a wake-up and the journal a kv write; a later one covers the earlier)."""
        if not self._sent_due:
            self._sent_due = True
            asyncio.get_running_loop().call_later(REPORT_S, self._send_sent)

    def _send_sent(self) -> None:
        self._sent_due = False
        self.chan.send(C.SENT, seq=self.outbox.sent, published=self.outbox.published,
                       duplicates=self.outbox.duplicates)

    def _report(self) -> None:
        """The link's state, sent when it changed."""
        url = self.nc.connected_url.netloc if self.connected and self.nc.connected_url else None
        now = (self.state, self.connected, self.conflict, self.last_error, url)
        if now != self._reported:
            self._reported = now
            self.chan.send(C.STATE, state=now[0], connected=now[1], conflict=now[2], last_error=now[3], url=now[4])

    async def _report_loop(self) -> None:
        while self._running:
            self._report()
            await asyncio.sleep(0.1)

    # --- the process --------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self.poke_fd, self._on_poke)
        tasks = [asyncio.create_task(self._main()), asyncio.create_task(self._report_loop())]
        try:
            await self._channel_loop()  # until the edge says stop or goes away
        finally:
            self._running = False
            loop.remove_reader(self.poke_fd)
            for t in tasks + self._tasks:
                t.cancel()
            await asyncio.gather(*tasks, *self._tasks, return_exceptions=True)
            if self.nc is not None:
                try:
                    await asyncio.wait_for(self.nc.close(), 3)
                except Exception as exc:  # noqa: BLE001 - closing a broken connection
                    log.debug("sync close failed", error=repr(exc))
            self.reader.close()
            if self._sent_due:  # the last acknowledgements, before the channel closes
                self._send_sent()
            await self.chan.close()

    def _on_poke(self) -> None:
        got = C.drain_pokes(self.poke_fd)
        if got is None:  # the edge closed the pipe: it is stopping (the channel says so too)
            asyncio.get_running_loop().remove_reader(self.poke_fd)
        elif got:
            self.outbox.wake.set()

    async def _channel_loop(self) -> None:
        while True:
            msg = await self.chan.recv()
            if msg is None or msg["t"] == C.STOP:
                return
            t = msg["t"]
            if t == C.COMMAND_DONE:
                fut = self._pending.pop(msg["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
            elif t == C.HEARTBEAT:
                if self.connected:
                    try:
                        await self.nc.publish(S.heartbeat_subject(self.edge_id), msg["payload"].encode())
                    except Exception as exc:  # noqa: BLE001 - the link went; the next one goes
                        self.last_error = f"heartbeat: {exc!r}"
            elif t == C.CHECKPOINT:
                asyncio.create_task(self._checkpoint(msg))

    async def _checkpoint(self, msg: dict[str, Any]) -> None:
        """A checkpoint the edge signed: JetStream publish; the Nats-Msg-Id is derived from the
        payload, so a retry of the same checkpoint is deduplicated."""
        payload = base64.b64decode(msg["payload"])
        error: str | None = None
        try:
            if not self.connected or self.js is None:
                raise ConnectionError("sync is not connected")
            msg_id = f"{self.edge_id}:checkpoint:{hashlib.sha256(payload).hexdigest()[:32]}"
            await self.js.publish(S.checkpoint_subject(self.edge_id), payload, timeout=self.ack_timeout,
                                  headers={"Nats-Msg-Id": msg_id})
        except Exception as exc:  # noqa: BLE001 - handed back to the edge, which retries
            error = repr(exc)
        self.chan.send(C.CHECKPOINT_DONE, id=msg["id"], error=error)

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
        self._tasks = [asyncio.create_task(self._publish_loop(), name=f"sync-out-{self.edge_id}"),
                       asyncio.create_task(self._command_loop(), name=f"sync-cmd-{self.edge_id}")]

    async def _connect(self) -> None:
        n = self.nats
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
        # (the state stays STARTING until the first attempt fails: the edge's stop() gives a
        # publisher that is starting its drain time)
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
        log.warning("sync disconnected", edge=self.edge_id, sent_seq=self.outbox.sent)

    async def _on_reconnected(self) -> None:
        self._hwm_needed = True
        if self.conflict is None:
            self.state = CONNECTED
        self._link.set()
        self.outbox.wake.set()
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
        local = self._local_head()
        conflict: str | None = None
        state = CONNECTED
        if hwm.seq > local:
            state = BEHIND
            conflict = (f"the cloud holds seq {hwm.seq} but this journal ends at {local}: restored from a "
                        f"replica that is behind; run reconcile_from_cloud before starting the edge")
        elif hwm.seq > 0:
            mine = self._hash_at(hwm.seq)
            if mine != hwm.hash:
                state = FORKED
                conflict = (f"the cloud's entry {hwm.seq} has hash {hwm.hash[:16]}… but this journal's has "
                            f"{(mine or '')[:16]}…: the chain forked; operator action needed")
            elif source == cloud.CONTROL_PLANE and hwm.seq > self.outbox.sent:
                # The control plane applied these contiguously: nothing before it needs sending.
                self.outbox.sent = hwm.seq
                self._advance(hwm.seq)
        if conflict is not None:
            if self.conflict != conflict:
                log.error("sync: journal conflicts with the cloud; appends refused", edge=self.edge_id,
                          reason=conflict)
            self.conflict = conflict
            self.state = state
        elif self.conflict is not None:
            log.warning("sync conflict cleared", edge=self.edge_id)
            self.conflict = None
        if conflict is None:
            self.state = CONNECTED if self.connected else DISCONNECTED
        self._hwm_needed = False
        self._report()  # the edge fences (or unfences) the journal on this report, at once
        log.info("sync high-water mark", edge=self.edge_id, cloud_seq=hwm.seq, source=source, local_seq=local,
                 sent_seq=self.outbox.sent, conflict=conflict)

    def _local_head(self) -> int:
        row = self.reader.execute("SELECT MAX(seq) FROM journal").fetchone()
        return row[0] or 0

    def _hash_at(self, seq: int) -> str | None:
        row = self.reader.execute("SELECT hash FROM journal WHERE seq = ?", (seq,)).fetchone()
        return row[0] if row else None

    # --- outbox -------------------------------------------------------------------------------

    def _may_publish(self) -> bool:
        return self._running and self.connected and not self._hwm_needed and self.conflict is None

    async def _publish_loop(self) -> None:
        backoff = 0.1
        while self._running:
            try:
                if not self.connected:
                    await self._wait_link()
                    continue
                if self._hwm_needed or (self.conflict is not None):
                    if self.conflict is not None and not self._hwm_needed:
                        await asyncio.sleep(self.conflict_recheck_s)
                    await self._check_hwm()
                    if self.conflict is not None:
                        continue
                if await self.outbox.run(self.nc, self._may_publish, self._advance):
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

    # --- commands: applied by the edge --------------------------------------------------------

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
        """Hand the command to the edge and wait for its answer; ack only after the edge applied
        it (its journal then holds `command.applied`, so a redelivery is a no-op there)."""
        if self.conflict is not None:
            await msg.nak(delay=5.0)  # applying would append to a journal that must not grow
            return
        self._next_id += 1
        cid = self._next_id
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[cid] = fut
        self.chan.send(C.COMMAND, id=cid, data=base64.b64encode(msg.data).decode())
        try:
            answer = await fut  # the edge answers every command; if it goes, so does this process
        finally:
            self._pending.pop(cid, None)
        if answer["result"] == C.ACK:
            await msg.ack()
        elif answer["result"] == C.TERM:
            await msg.term()
        else:
            await msg.nak(delay=float(answer.get("delay") or 2.0))


async def _amain(channel_fd: int, poke_fd: int) -> None:
    chan = await C.Channel.open(channel_fd)
    init = await chan.recv()
    if init is None or init["t"] != C.INIT:
        raise SystemExit("sync publisher: no init from the edge")
    pub = Publisher(chan, poke_fd, init)
    log.info("sync publisher started", edge=pub.edge_id, sent_seq=pub.outbox.sent)
    t0 = time.monotonic()
    await pub.run()
    log.info("sync publisher stopped", edge=pub.edge_id, sent_seq=pub.outbox.sent,
             seconds=round(time.monotonic() - t0, 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--channel-fd", type=int, required=True)
    ap.add_argument("--poke-fd", type=int, required=True)
    a = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_amain(a.channel_fd, a.poke_fd))


if __name__ == "__main__":
    main()
