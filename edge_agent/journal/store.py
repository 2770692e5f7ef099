"""The bet journal: hash-chained entries in SQLite, committed durably by group commit.

Durability invariants (why the code is shaped this way):
- An entry is acknowledged only after the transaction holding it has committed with
  `synchronous=FULL` in WAL mode: the WAL is fsynced at every commit, so the entry survives
  `kill -9` and power loss.
- Throughput comes from group commit: one writer thread takes everything queued since its
  last commit and writes it in a single transaction (one fsync for many bets).
- seq, prev and hash are assigned in the caller's thread at append time, in mutation order,
  so the chain order is the order in which the state changed; the writer writes in that order.
- Litestream compatibility: WAL mode, busy_timeout on every connection, no VACUUM, the -wal
  file is never removed by us; checkpoints are left to SQLite's autocheckpoint (Litestream
  copes with it) and to Litestream itself.
- If a commit fails, the store turns failed and every waiter gets the error: the edge stops
  acknowledging rather than acknowledge what is not on disk (fail-stop).
"""
from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from contract import journal as J
from contract.bounds import first_unbounded
from contract.canonical import canonical_json_fast
from edge_agent import metrics as M
from edge_agent.app.ports import (
    ChainSecret,
    Data,
    IdempotentAnswer,
    KycDocument,
    PlayerRecord,
    Record,
    Records,
)
from edge_agent.domain.errors import DomainError
from edge_agent.journal.index import RoundIndex, SideOp

BUSY_TIMEOUT_MS = 5000
MAX_BATCH = 4096

__all__ = ["JournalFailed", "JournalFenced", "JournalStore", "SideOp", "open_readonly"]


def _record_op(rec: Record) -> SideOp:
    """The SQL of each named record (schema.sql): the only place the application's writes become SQL."""
    if isinstance(rec, ChainSecret):
        return ("INSERT INTO chain_secrets VALUES (?,?,?,?)", (rec.table_id, rec.chain_id, rec.seed_top.hex(),
                                                              rec.length))
    if isinstance(rec, IdempotentAnswer):
        return ("INSERT INTO idempotency VALUES (?,?,?,?,?)",
                (rec.player, rec.key, rec.body_sha, rec.status, json.dumps(rec.response)))
    if isinstance(rec, PlayerRecord):
        return ("INSERT OR IGNORE INTO players VALUES (?,?,?,?,?,?,?)",
                (rec.player_id, rec.pseudonym, rec.display_name, rec.email, rec.birth_date, rec.address,
                 rec.created_ts))
    if isinstance(rec, KycDocument):
        return ("INSERT OR REPLACE INTO kyc_documents VALUES (?,?,?,?)",
                (rec.reference, rec.player, rec.document, rec.created_ts))
    raise TypeError(f"not a journal record: {rec!r}")


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None)
    else:
        conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
    return conn


def open_readonly(path: str | Path) -> sqlite3.Connection:
    return _connect(Path(path), readonly=True)


def _row_entry(row: tuple[int, int, str, str, str, str]) -> dict[str, Any]:
    seq, ts, kind, data, prev, h = row
    return {"seq": seq, "ts": ts, "kind": kind, "data": json.loads(data), "prev": prev, "hash": h}


def _dumps(obj: Any) -> str:
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except (TypeError, orjson.JSONEncodeError):
        # The last guard: an integer SQLite and the exports cannot hold never reaches the
        # journal (the boundaries refuse it first; this refuses it before anything changes).
        if first_unbounded(obj) is not None:
            raise DomainError("value_out_of_range", "an integer outside signed 64 bits cannot be journaled", 422) \
                from None
        try:
            return canonical_json_fast(obj).decode("utf-8")
        except UnicodeEncodeError:
            raise DomainError("invalid_text", "text must be valid Unicode (no lone surrogates)", 422) from None


class JournalFailed(RuntimeError):
    pass


class JournalFenced(DomainError):
    """The journal takes no appends: the cloud holds entries it lacks (or others at its seqs)."""

    def __init__(self, reason: str) -> None:
        super().__init__("edge_out_of_sync", f"the edge is out of sync with the cloud and takes no writes: {reason}", 503)


class JournalStore:
    def __init__(self, path: str | Path, *, clock: Callable[[], int] | None = None) -> None:
        self.path = Path(path)
        self.clock = clock or (lambda: int(time.time() * 1000))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = _connect(self.path)
        self._conn.executescript(resources.files("edge_agent.journal").joinpath("schema.sql").read_text())
        self._read = _connect(self.path)
        row = self._conn.execute("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
        self.seq, self.head = (row[0], row[1]) if row else (0, J.GENESIS_PREV)
        self.durable_seq = self.seq
        M.JOURNAL_HEAD.set(self.seq)
        self._last_ts = 0
        self._queue: deque[tuple[tuple[Any, ...] | None, list[SideOp]]] = deque()
        self._cv = threading.Condition()
        self._waiters: deque[tuple[int, Callable[[BaseException | None], None]]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failed: BaseException | None = None
        self._stopping = False
        # Set while appending would fork the chain the cloud already holds (see sync/service.py).
        self.fence_reason: str | None = None
        self.commits = 0
        self.on_commit: list[Callable[[int, float], None]] = []  # (rows, seconds) for metrics
        self._index = RoundIndex(self.query)
        self._thread = threading.Thread(target=self._writer, name="journal-writer", daemon=True)
        self._thread.start()

    # --- appending (event-loop thread) --------------------------------------------------------

    def append(self, kind: str, data: Data | Callable[[int], Data], records: Records = ()) -> dict[str, Any]:
        """Assign seq/prev/hash and queue the entry for the next group commit. Not yet durable.

        `data` (or a callable given the assigned seq) is the entry's data; `records` (or a
        callable given the seq) commit in the same transaction, as do the index rows."""
        if self._failed is not None:
            raise JournalFailed(str(self._failed))
        if self.fence_reason is not None:
            raise JournalFenced(self.fence_reason)
        seq = self.seq + 1
        if callable(data):
            data = data(seq)
        side_ops = [_record_op(r) for r in (records(seq) if callable(records) else records)]
        side_ops += self._index.rows(seq, kind, data)
        # ts never goes backwards within a journal, even if the wall clock does.
        ts = max(self.clock(), self._last_ts)
        data_json = _dumps(data)
        h = J.entry_hash_of_data_json(seq, ts, kind, data_json, self.head)
        entry = {"seq": seq, "ts": ts, "kind": kind, "data": data, "prev": self.head, "hash": h}
        row = (seq, ts, kind, data_json, self.head, h)
        self.seq, self.head, self._last_ts = seq, h, ts
        with self._cv:
            self._queue.append((row, side_ops))
            self._cv.notify()
        return entry

    def fence(self, reason: str) -> None:
        """Refuse every further append (idempotent; the latest reason wins)."""
        self.fence_reason = reason

    def unfence(self) -> None:
        self.fence_reason = None

    def side_write(self, ops: list[SideOp]) -> int:
        """Queue writes with no entry, committed in order with the entries around them.

        Returns the seq they are ordered after (wait on it for durability)."""
        with self._cv:
            self._queue.append((None, ops))
            self._cv.notify()
        return self.seq

    def when_durable(self, seq: int, callback: Callable[[BaseException | None], None]) -> None:
        """Call back (in the event loop) once entry `seq` is committed, or with the error."""
        if self._failed is not None:
            callback(self._failed)
        elif seq <= self.durable_seq:
            callback(None)
        else:
            self._waiters.append((seq, callback))

    async def durable(self, seq: int) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def done(err: BaseException | None) -> None:
            if not fut.done():
                fut.set_exception(JournalFailed(str(err))) if err else fut.set_result(None)

        self.when_durable(seq, done)
        await fut

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    # --- writer thread ------------------------------------------------------------------------

    def _writer(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._stopping:
                    self._cv.wait()
                if not self._queue and self._stopping:
                    return
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_BATCH))]
            rows = [row for row, _ in batch if row is not None]
            t0 = time.perf_counter()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                pending: list[tuple[Any, ...]] = []
                for row, ops in batch:
                    if row is not None:
                        pending.append(row)
                    if ops:
                        # Side writes may read the rows before them: keep the order exact.
                        self._insert(pending)
                        for sql, params in ops:
                            self._conn.execute(sql, params)
                self._insert(pending)
                self._conn.execute("COMMIT")  # fsync of the WAL: the durability point
            except BaseException as exc:  # noqa: BLE001 - any failure stops acknowledgements
                self._failed = exc
                try:
                    self._conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                self._notify(self.durable_seq, exc)
                return
            self.commits += 1
            elapsed = time.perf_counter() - t0
            for cb in self.on_commit:
                cb(len(rows), elapsed)
            if rows:
                # The store owns the head: the gauge moves with every commit, not only at replay.
                M.JOURNAL_HEAD.set(rows[-1][0])
                self._notify(rows[-1][0], None)
            else:
                self._notify(self.durable_seq, None)

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self._conn.executemany("INSERT INTO journal VALUES (?,?,?,?,?,?)", rows)
            rows.clear()

    def _notify(self, seq: int, err: BaseException | None) -> None:
        if self._loop is None or self._loop.is_closed():
            self.durable_seq = max(self.durable_seq, seq)
            self._fire(seq, err)
            return
        self._loop.call_soon_threadsafe(self._fire, seq, err)

    def _fire(self, seq: int, err: BaseException | None) -> None:
        self.durable_seq = max(self.durable_seq, seq)
        w = self._waiters
        if err is not None:
            while w:
                w.popleft()[1](err)
            return
        while w and w[0][0] <= seq:
            w.popleft()[1](None)

    def flush(self, timeout: float = 30.0) -> None:
        """Block until everything queued so far is committed (for shutdown and CLI use)."""
        target = self.seq
        deadline = time.monotonic() + timeout
        while (self.durable_seq < target or self._queue) and self._failed is None:
            if time.monotonic() > deadline:
                raise TimeoutError("journal flush timed out")
            time.sleep(0.001)
        if self._failed is not None:
            raise JournalFailed(str(self._failed))

    def close(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify()
        self._thread.join(timeout=30)
        self._conn.close()
        self._read.close()

    # --- reading ------------------------------------------------------------------------------

    def read(self, from_seq: int = 1, to_seq: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Committed entries in seq order (what a reader sees is always durable)."""
        sql = "SELECT seq, ts, kind, data, prev, hash FROM journal WHERE seq >= ?"
        params: list[Any] = [from_seq]
        if to_seq is not None:
            sql += " AND seq <= ?"
            params.append(to_seq)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_row_entry(r) for r in self._read.execute(sql, params)]

    def iter_all(self, batch: int = 10_000) -> Iterator[dict[str, Any]]:
        nxt = 1
        while True:
            chunk = self.read(nxt, limit=batch)
            if not chunk:
                return
            yield from chunk
            nxt = chunk[-1]["seq"] + 1

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self._read.execute(sql, params).fetchall()

    # --- named reads of the records beside the journal (the application's port) -------------

    def chain_secrets(self) -> list[ChainSecret]:
        return [ChainSecret(t, c, bytes.fromhex(s), n)
                for t, c, s, n in self.query("SELECT table_id, chain_id, seed_top, length FROM chain_secrets")]

    def idempotent_answer(self, player: str, key: str) -> IdempotentAnswer | None:
        rows = self.query("SELECT body_sha, status, response FROM idempotency WHERE player=? AND key=?", (player, key))
        return IdempotentAnswer(player, key, rows[0][0], rows[0][1], json.loads(rows[0][2])) if rows else None

    def round_span(self, table_id: str, chain_id: str, n: int) -> tuple[int, int] | None:
        rows = self.query("SELECT first_seq, last_seq FROM rounds WHERE table_id=? AND chain_id=? AND n=?",
                          (table_id, chain_id, n))
        return (rows[0][0], rows[0][1]) if rows else None

    def chain_seq(self, table_id: str, chain_id: str) -> int | None:
        rows = self.query("SELECT seq FROM chains WHERE table_id=? AND chain_id=?", (table_id, chain_id))
        return rows[0][0] if rows else None

    def setting(self, key: str) -> str | None:
        """A committed `kv` value (see `put_setting`)."""
        rows = self.query("SELECT value FROM kv WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def put_setting(self, key: str, value: str) -> int:
        """Small adapter state (`kv`), committed in order with the entries around it."""
        return self.side_write([("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))])
