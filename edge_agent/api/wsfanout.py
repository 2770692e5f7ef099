"""Broadcast writes off the event loop: one message (already framed) to many player sockets.

A table-wide message at a table of 5,000 players is 5,000 sends, ~26 µs of kernel TCP work each
on loopback: ~130 ms of one core, during which the event loop could not answer a decision. Here
the sends of sockets that have nothing else queued are done by worker threads, so they use the
second core while the loop keeps working: `_wsfanout.Sender`'s own threads, which never take the
GIL (the loop hands them batches and reads what they finished from an eventfd), or without the C
extension a thread pool running the pure-Python `send_each` below (`os.write` releases the GIL).
The hub hands the threads each batch as soon as it is claimed (events.HANDOFF), so the first
players' sends overlap the claiming of the rest. Pool threads need the GIL to take a batch and to
give it back; while both cores were busy sending, the loop then waited for a core in the middle
of claiming the next batch (the deal at 5,000 players: 20–26 ms of the loop's CPU took 52–61 ms).

Per-socket order is kept by `wsframes.FrameWriter` (the sink): a socket is handed over only when
nothing is queued for it and its transport buffer is empty; while the thread holds it, every other
write to it (queued events, the socket's own replies, uvicorn's pings and close frames) waits; the
part the kernel did not take (a full send buffer, an error) goes to the transport before them.
The threads write to the sink's own dup() of the socket's fd, kept while the socket lives, so a
socket closed meanwhile cannot pass its number to a new connection. EDGE_WS_FANOUT=0 switches the
path off (every write from the loop).
"""
from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import structlog

log = structlog.get_logger(__name__)

ENABLED = os.environ.get("EDGE_WS_FANOUT", "1").lower() not in ("0", "false", "no", "off")
# Fewer sockets than this are written at once from the loop: a thread hand-off costs more.
MIN_THREADED = 16
# The thread takes a batch this many sockets at a time (~6 ms of sends): each chunk's sockets are
# given back to the loop when it is done, so that an acknowledgement waits at most about that long.
CHUNK = 250
# Two threads (this box has two cores): a table-wide message at 5,000 players is ~130 ms of sends
# for one; a socket is in one chunk at a time, so its order does not depend on which thread runs it.
THREADS = 2
# The threads' nice value (_wsfanout.Sender). 0: at 5,000 players a lower priority (5) slowed the
# sends behind the players' own processes more than it helped the loop (docs/BENCHMARKS.md).
NICE = int(os.environ.get("EDGE_WS_FANOUT_NICE", "0"))
# SCHED_BATCH threads (same share of the CPU, no preemption on wake-up): a batch handed over
# wakes a thread, which otherwise took the core from the loop in the middle of claiming the next
# sockets; the loop's CPU per request fell by ~10% at 5,000 players (docs/BENCHMARKS.md).
BATCH = os.environ.get("EDGE_WS_FANOUT_BATCH", "1").lower() not in ("0", "false", "no", "off")


def _py_send_each(fds: list[int], data: bytes | list[bytes], close_fds: bool) -> list[tuple[int, int]]:
    """The pure-Python `_wsfanout.send_each` (same contract; see _wsfanout.c)."""
    left: list[tuple[int, int]] = []
    for i, fd in enumerate(fds):
        d = data[i] if isinstance(data, list) else data
        off = 0
        try:
            while off < len(d):
                k = os.write(fd, d[off:] if off else d)
                if k <= 0:
                    break
                off += k
        except InterruptedError:
            pass
        except OSError:  # BlockingIOError (full buffer) or the peer gone: the transport takes the rest
            pass
        if off < len(d):
            left.append((i, off))
        if close_fds:
            os.close(fd)
    return left


try:
    from edge_agent.api._wsfanout import Sender, send_each

    AVAILABLE = True
except ImportError:  # not built (no compiler at install time): same contract in Python, pool threads
    Sender = None
    send_each = _py_send_each
    AVAILABLE = False


class Sink(Protocol):
    """A socket the broadcaster may write to (wsframes.FrameWriter)."""

    def claim(self) -> int | None:
        """The sink's own dup() of the socket's fd (kept while the socket lives), the socket now
        held for the thread; None: not now."""

    def release(self, rest: bytes) -> None:
        """The thread is done with the socket: write `rest` (what the kernel did not take) first."""


class Broadcaster:
    """Hands chunks of (sink, data) to the worker threads; `encode` frames the
    texts of a message (the hub calls it once per fan-out, not once per socket)."""

    def __init__(self, encode: Callable[[list[str]], bytes]) -> None:
        self.encode = encode
        self._pool: ThreadPoolExecutor | None = None  # without the C extension
        self._sender: Any = None                      # _wsfanout.Sender, bound to one event loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._batches: dict[int, tuple[Sequence[Sink], list[int], bytes | list[bytes]]] = {}
        self.batches = 0
        self.handed_back = 0  # sockets whose write the transport finished (partial or refused)
        # Replies claimed during this loop turn (`reply`), sent together at its end.
        self._replies: tuple[list[Sink], list[int], list[bytes]] | None = None
        self._replies_loop: asyncio.AbstractEventLoop | None = None

    def send(self, sinks: Sequence[Sink], fds: list[int], data: bytes | list[bytes], urgent: bool = False) -> None:
        """Write data (one bytes for all, or one per sink) to the claimed sinks; `urgent` batches
        (replies) go to the threads ahead of any broadcast batch still queued."""
        if not sinks:
            return
        if len(sinks) < MIN_THREADED:
            self._finish(sinks, fds, data, self._send(fds, data))
            return
        loop = asyncio.get_running_loop()
        sender = self._sender_for(loop) if Sender is not None and send_each is not _py_send_each else None
        if sender is None and self._pool is None:
            self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="ws-fanout")
        for k in range(0, len(sinks), CHUNK):
            s, f = sinks[k:k + CHUNK], fds[k:k + CHUNK]
            d = data[k:k + CHUNK] if isinstance(data, list) else data
            self.batches += 1
            if sender is None:
                fut = loop.run_in_executor(self._pool, self._send, f, d)
                fut.add_done_callback(functools.partial(self._done, s, f, d))
                continue
            try:
                self._batches[sender.submit(f, d, urgent)] = (s, f, d)
            except Exception:
                log.exception("broadcast batch refused; the transports write it")
                self._finish(s, f, d, None)

    def reply(self, sink: Sink, fd: int, data: bytes) -> None:
        """Send one claimed sink's own reply (an acknowledgement) with the others of this loop
        turn, as one batch: the replies to one journal commit's decisions are hundreds of sends
        at 5,000 players, and each send on loopback wakes the player's process, which may take the
        core from the loop right then; from the threads, the loop keeps reading decisions."""
        loop = asyncio.get_running_loop()
        if self._replies is None or self._replies_loop is not loop:
            self._replies, self._replies_loop = ([], [], []), loop  # a closed loop's claims died with it
            loop.call_soon(self._send_replies)
        sinks, fds, datas = self._replies
        sinks.append(sink)
        fds.append(fd)
        datas.append(data)

    def _send_replies(self) -> None:
        if self._replies is not None:
            (sinks, fds, datas), self._replies = self._replies, None
            self.send(sinks, fds, datas, urgent=True)  # not behind a broadcast's 5,000 sends

    def _sender_for(self, loop: asyncio.AbstractEventLoop) -> Any:
        """The Sender whose completions this loop reads (a new one when the loop changed)."""
        if self._loop is not loop:
            self._close_sender()
            self._sender = Sender(THREADS, NICE, BATCH)
            self._loop = loop
            loop.add_reader(self._sender.fileno(), self._collect)
        return self._sender

    def _collect(self) -> None:
        """Batches the threads have sent: give their sockets back (FrameWriter.release)."""
        for batch, left in self._sender.completed():
            s, f, d = self._batches.pop(batch)
            self._finish(s, f, d, left)

    def _close_sender(self) -> None:
        if self._sender is None:
            return
        sender, loop = self._sender, self._loop
        self._sender = self._loop = None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(sender.fileno())
        sender.close()  # what is queued is sent first
        if loop is not None and not loop.is_closed():
            for batch, left in sender.completed():
                s, f, d = self._batches.pop(batch)
                self._finish(s, f, d, left)
        self._batches.clear()  # a closed loop's sockets: nobody left to give them back to

    def _done(self, sinks: Sequence[Sink], fds: list[int], data: bytes | list[bytes], fut: Any) -> None:
        self._finish(sinks, fds, data, fut.result())

    @staticmethod
    def _send(fds: list[int], data: bytes | list[bytes]) -> list[tuple[int, int]] | None:
        try:
            return send_each(fds, data, False)  # the sinks' own fds: they close them (FrameWriter.stop)
        except Exception:
            log.exception("broadcast write failed before sending; the transports write it")
            return None

    def _finish(self, sinks: Sequence[Sink], fds: list[int], data: bytes | list[bytes],
                left: list[tuple[int, int]] | None) -> None:
        rests: dict[int, int] = dict(left) if left is not None else {i: 0 for i in range(len(sinks))}
        self.handed_back += len(rests)
        for i, s in enumerate(sinks):
            sent = rests.get(i)
            if sent is None:
                s.release(b"")
            else:
                d = data[i] if isinstance(data, list) else data
                s.release(d[sent:])

    def close(self) -> None:
        self._close_sender()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
