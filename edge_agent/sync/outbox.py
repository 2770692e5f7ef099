"""The journal outbox: committed entries after `sent_seq`, residency-filtered, published in seq
order to `casino.journal.<edge>` with `Nats-Msg-Id = <edge>:<seq>`, pipelined (runs in the
publisher process, edge_agent/sync/publisher_process.py).

Durability invariants (why it is shaped this way):
- The journal *is* the outbox: rows are read from the SQLite file (a read-only connection, WAL),
  so only committed entries can leave, and nothing is queued anywhere else.
- `sent_seq` advances only over the contiguous prefix of PubAcks (a `duplicate` PubAck is
  success: the stream already holds that id). Any failed or missing ack ends the run; the next
  run publishes everything after `sent_seq` again and the stream's msg-id dedup absorbs what it
  already stored. So a publisher killed at any instant loses nothing and, within the stream's
  duplicate window, stores nothing twice.
- Every payload goes through the residency filter: nothing else of the journal leaves.
"""
from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

from contract import sync as S
from edge_agent.sync.residency import ResidencyFilter
from natswire import header_block, header_status, hpub


class Outbox:
    def __init__(self, reader: sqlite3.Connection, filter: ResidencyFilter, edge_id: str, *,
                 journal_stream: str | None, batch_size: int, max_inflight: int, ack_timeout: float,
                 inbox: str, on_error: Callable[[str], None], linger_s: float = 0.0) -> None:
        self.reader = reader
        self.filter = filter
        self.edge_id = edge_id
        self.subject = S.journal_subject(edge_id)
        self.journal_stream = journal_stream
        self.batch_size = batch_size
        self.max_inflight = max_inflight
        self.ack_timeout = ack_timeout
        self.inbox = inbox
        self.sent = 0
        self.published = 0        # messages acknowledged since start (duplicates included)
        self.duplicates = 0       # of which the stream said "duplicate"
        self.linger_s = linger_s
        self.on_error = on_error  # why a run ended early (the publisher reports the latest error)
        self.wake = asyncio.Event()  # set on a new commit (a poke from the edge)
        self._ack_event = asyncio.Event()
        self._ack_prefix: str | None = None
        self._ack_results: dict[int, bool | str] = {}  # seq -> duplicate? or the error
        self._ack_window = (1, 0)  # seqs whose acks are awaited
        self._ack_wait_for = 0

    def load_batch(self, from_seq: int, limit: int) -> list[tuple[int, bytes]]:
        """Committed rows from `from_seq`, as wire payloads (SQLite releases the GIL while it reads)."""
        rows = self.reader.execute(
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

    async def run(self, nc: Any, keep_going: Callable[[], bool], advance: Callable[[int], None]) -> bool:
        """Publish from sent+1 on with up to `max_inflight` entries awaiting their PubAck; call
        `advance(seq)` over the contiguous acknowledged prefix. Returns False on a failed or missing
        ack (the caller backs off; everything after `sent` is published again, dedup absorbs it),
        True when `keep_going()` turned false (link down, a new high-water-mark check, stop).

        Per entry: one pre-encoded HPUB in a batch written at once, one small ack callback."""
        await self._ensure_ack_sub(nc)
        results = self._ack_results
        results.clear()
        nxt = self.sent + 1
        subject, ack_prefix = self.subject.encode(), (self._ack_prefix or "").encode()
        head, tail = self._header_parts()
        try:
            while keep_going():
                room = self.max_inflight - (nxt - self.sent - 1)
                batch: list[tuple[int, bytes]] = []
                if room > 0:
                    if self.linger_s and nxt == self.sent + 1:
                        # caught up: let a few group commits gather, so that one write and one
                        # wake-up of this process (and of nats-server's reader) carry more entries
                        await asyncio.sleep(self.linger_s)
                    self.wake.clear()
                    batch = self.load_batch(nxt, min(self.batch_size, room))
                    if batch:
                        self._ack_window = (self.sent + 1, batch[-1][0])
                        # One buffered write per batch of pre-encoded HPUBs (natswire): nats-py's
                        # per-publish subject validation and header encoding was a third of
                        # the outbox's CPU at backlog speed.
                        await nc.publish_raw(b"".join(
                            hpub(subject, b"%s%d" % (ack_prefix, seq), b"%s%d%s" % (head, seq, tail), payload)
                            for seq, payload in batch), len(batch))
                        nxt = batch[-1][0] + 1
                if nxt == self.sent + 1:  # nothing in flight: wait for a commit
                    try:
                        await asyncio.wait_for(self.wake.wait(), 1.0)
                    except TimeoutError:
                        pass
                    continue
                if not batch or nxt - self.sent - 1 >= self.max_inflight:
                    # nothing more to send now: wait for the oldest ack (or a new commit)
                    self._ack_wait_for = self.sent + 1
                    if self._ack_wait_for not in results:
                        self._ack_event.clear()
                        waker = asyncio.ensure_future(self.wake.wait())
                        acked = asyncio.ensure_future(self._ack_event.wait())
                        done, _ = await asyncio.wait([acked, waker], timeout=self.ack_timeout,
                                                     return_when=asyncio.FIRST_COMPLETED)
                        waker.cancel()
                        acked.cancel()
                        if not done:
                            self.on_error(f"puback {self.sent + 1}: no acknowledgement in {self.ack_timeout}s")
                            return False
                top = self.sent
                while top + 1 in results:
                    r = results.pop(top + 1)
                    if isinstance(r, str):
                        self.on_error(f"puback {top + 1}: {r}")
                        self._advance(top, advance)
                        return False
                    self.published += 1
                    self.duplicates += r
                    top += 1
                self._advance(top, advance)
            return True
        except Exception as exc:  # noqa: BLE001 - link lost mid-publish
            self.on_error(f"publish: {exc!r}")
            return False
        finally:
            self._ack_window = (1, 0)
            results.clear()

    def _header_parts(self) -> tuple[bytes, bytes]:
        """The header block around the seq: `header_block({"Nats-Msg-Id": journal_msg_id(edge, seq),
        "Nats-Expected-Stream": stream})` split at the seq, so that an entry costs one format."""
        extra = {"Nats-Expected-Stream": self.journal_stream} if self.journal_stream else {}
        def block(seq: int) -> bytes:
            return header_block({"Nats-Msg-Id": S.journal_msg_id(self.edge_id, seq), **extra})

        marker = 9_876_543_210_123
        whole, mid = block(marker), S.journal_msg_id(self.edge_id, marker).encode()
        at = whole.index(b"Nats-Msg-Id: " + mid) + len(b"Nats-Msg-Id: ") + mid.rindex(b"%d" % marker)
        head, tail = whole[:at], whole[at + len(b"%d" % marker):]
        if b"%s%d%s" % (head, 1, tail) != block(1):  # the split must give back exactly the same bytes
            raise AssertionError("journal header template does not reproduce header_block")
        return head, tail

    def _advance(self, seq: int, advance: Callable[[int], None]) -> None:
        if seq > self.sent:
            self.sent = seq
            advance(seq)

    async def _ensure_ack_sub(self, nc: Any) -> None:
        """One wildcard subscription for every PubAck: `<inbox>.acks.<nuid>.<seq>` (survives reconnects)."""
        if self._ack_prefix is None:
            self._ack_prefix = f"{self.inbox}.acks.{nc._nuid.next().decode()}."
            await nc.raw_subscribe(self._ack_prefix + "*", self._on_ack)

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
