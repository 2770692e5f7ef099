"""Leases between control-plane replicas: PostgreSQL session advisory locks (docs/SYNC.md,
"Several control-plane replicas").

A lock lives exactly as long as the connection that took it. A replica that dies (kill -9, OOM,
its node lost) loses its connection and with it every lock it held, so another replica takes
over at its next round: there is no TTL to tune and no clock to trust. The same mechanism keys
two things:

- the journal of an edge (`EDGE`): the one replica that applies it;
- a money step (`WITHDRAWAL`, `DEPOSIT`, `KYC`): the one replica that talks to the rail, PSP or
  vendor about it right now;
- the command outbox (`OUTBOX`): the one replica publishing it.

Correctness never rests on a lock alone (entries are keyed by (edge, seq), status moves are
conditional UPDATEs, rails are idempotent by withdrawal id): the lock makes the work happen once
instead of racing and losing.

SQLite is one process by construction: every lock is granted.
"""
from __future__ import annotations

import contextlib
import math
import threading
import zlib
from collections.abc import Iterable, Iterator

import structlog
from sqlalchemy import Engine

log = structlog.get_logger("control_plane.leases")

# advisory lock namespaces (pg_advisory_lock(classid int4, objid int4))
EDGE = 0x4A524E4C  # 'JRNL'
WITHDRAWAL = 0x50415954  # 'PAYT'
DEPOSIT = 0x44455053  # 'DEPS'
KYC = 0x4B594353  # 'KYCS'
OUTBOX = 0x434D4453  # 'CMDS': the one replica publishing the command outbox

APP_PREFIX = "cp-replica:"


def lock_key(name: str) -> int:
    """A stable signed 32-bit key for `name` (a collision only couples two names' locks)."""
    return zlib.crc32(name.encode()) - 2**31


class Leases:
    """One dedicated connection per replica holding its locks (thread-safe)."""

    def __init__(self, engine: Engine, replica: str) -> None:
        self.replica = replica
        self.postgres = engine.dialect.name == "postgresql"
        self._url = engine.url
        self._conn: object | None = None
        self._mutex = threading.Lock()
        self._held: set[tuple[int, str]] = set()

    # --- connection ---------------------------------------------------------------------------

    def _connection(self):  # type: ignore[no-untyped-def]
        import psycopg

        if self._conn is None or self._conn.closed:  # type: ignore[attr-defined]
            self._held.clear()  # a new session holds nothing
            url = self._url.set(drivername="postgresql").render_as_string(hide_password=False)
            # keepalives: a replica whose host vanished is seen as gone (its locks freed) in ~10 s
            self._conn = psycopg.connect(url, autocommit=True, application_name=APP_PREFIX + self.replica,
                                         keepalives=1, keepalives_idle=5, keepalives_interval=2,
                                         keepalives_count=3, connect_timeout=5)
            self._conn.execute("SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; "  # type: ignore[attr-defined]
                               "SET tcp_keepalives_count = 3")
        return self._conn

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                try:
                    self._conn.close()  # type: ignore[attr-defined]
                except Exception as exc:  # noqa: BLE001 - closing a broken connection
                    log.debug("lease connection close failed", error=repr(exc))
                self._conn = None
            self._held.clear()

    # --- locks --------------------------------------------------------------------------------

    def try_acquire(self, ns: int, name: str) -> bool:
        if not self.postgres:
            self._held.add((ns, name))
            return True
        with self._mutex:
            if (ns, name) in self._held:
                return True
            try:
                got = self._connection().execute("SELECT pg_try_advisory_lock(%s, %s)",  # type: ignore[attr-defined]
                                                  (ns, lock_key(name))).fetchone()[0]
            except Exception as exc:  # noqa: BLE001 - database away: we hold nothing we can prove
                log.warning("lease connection failed", error=repr(exc))
                self._drop_connection()
                return False
            if got:
                self._held.add((ns, name))
            return bool(got)

    def release(self, ns: int, name: str) -> None:
        with self._mutex:
            if (ns, name) not in self._held:
                return
            self._held.discard((ns, name))
            if not self.postgres:
                return
            try:
                self._connection().execute("SELECT pg_advisory_unlock(%s, %s)",  # type: ignore[attr-defined]
                                           (ns, lock_key(name)))
            except Exception as exc:  # noqa: BLE001 - a dead connection released it anyway
                log.warning("lease release failed", error=repr(exc))
                self._drop_connection()

    @contextlib.contextmanager
    def hold(self, ns: int, name: str) -> Iterator[bool]:
        """`with leases.hold(WITHDRAWAL, wid) as mine:` -- skip the step when not `mine`."""
        mine = self.try_acquire(ns, name)
        try:
            yield mine
        finally:
            if mine:
                self.release(ns, name)

    def held(self, ns: int) -> set[str]:
        """What this replica holds in `ns` (after verifying the session is still the same)."""
        with self._mutex:
            if self.postgres and not self._alive():
                self._drop_connection()
            return {n for s, n in self._held if s == ns}

    def live_replicas(self) -> int:
        """Replicas with a lease session open now (this one included)."""
        if not self.postgres:
            return 1
        with self._mutex:
            try:
                n = self._connection().execute(  # type: ignore[attr-defined]
                    "SELECT count(DISTINCT application_name) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name LIKE %s",
                    (APP_PREFIX + "%",)).fetchone()[0]
            except Exception as exc:  # noqa: BLE001
                log.warning("lease connection failed", error=repr(exc))
                self._drop_connection()
                return 1
        return max(1, int(n))

    def _alive(self) -> bool:
        try:
            self._connection().execute("SELECT 1")  # type: ignore[attr-defined]
            return True
        except Exception:  # noqa: BLE001
            return False

    def _drop_connection(self) -> None:
        try:
            if self._conn is not None:
                self._conn.close()  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001
            log.debug("lease connection close failed", error=repr(exc))
        self._conn = None
        self._held.clear()


def share(edges: int, replicas: int) -> int:
    """How many edges one replica should apply: an even share, rounded up."""
    return math.ceil(edges / max(1, replicas)) if edges else 0


def preference(replica: str, edges: Iterable[str]) -> list[str]:
    """Rendezvous order: each replica tries edges in its own order, so they rarely contend."""
    return sorted(edges, key=lambda e: zlib.crc32(f"{replica}/{e}".encode()))


def rebalance(leases: Leases, edges: Iterable[str]) -> tuple[set[str], set[str]]:
    """One balancing round for the journal: take free edges up to this replica's share, or give
    back one beyond it (gradually: moving an edge pauses its application for a round). Returns
    (gained, to_release): the caller stops applying `to_release` first, then releases them."""
    known = list(dict.fromkeys(edges))
    held = leases.held(EDGE)
    target = share(len(known), leases.live_replicas())
    if len(held) > target:
        gone = sorted(held - set(known))
        return set(), {gone[0] if gone else preference(leases.replica, held)[-1]}
    gained: set[str] = set()
    for e in preference(leases.replica, known):
        if len(held) + len(gained) >= target:
            break
        if e not in held and leases.try_acquire(EDGE, e):
            gained.add(e)
    return gained, set()
