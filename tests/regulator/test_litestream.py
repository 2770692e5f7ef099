"""Litestream: replicate the journal under load, kill the edge, restore: the restored journal
verifies and has the head it had before the kill. With Litestream killed at the same moment the
replica may lag (its documented window); the gap is reconciled from the cloud's copy."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from contract.bundle import verify_bundle
from edge_agent.audit import litestream as LS
from edge_agent.audit.export import export_bundle

LOAD = Path(__file__).with_name("edge_load.py")


def count(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def all_entries(db: Path) -> list[dict]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [{"seq": s, "ts": t, "kind": k, "data": json.loads(d), "prev": p, "hash": h}
                for s, t, k, d, p, h in conn.execute("SELECT * FROM journal ORDER BY seq")]
    finally:
        conn.close()


def on_disk(db: Path, where: Path) -> Path:
    """The journal as it lies on disk at the kill: the db and its WAL, copied and opened read-write so
    that SQLite recovers every committed WAL frame (a killed writer may have committed frames its
    shared-memory index never published; they are durable, merely not yet acknowledged)."""
    import shutil

    where.mkdir()
    shutil.copy(db, where / db.name)
    if Path(f"{db}-wal").exists():
        shutil.copy(f"{db}-wal", where / f"{db.name}-wal")
    conn = sqlite3.connect(where / db.name)
    conn.execute("SELECT COUNT(*) FROM journal").fetchone()
    conn.close()
    return where / db.name


def start_load(db: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(LOAD), str(db)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


def run_until(db: Path, proc: subprocess.Popen, entries: int, timeout: float = 60) -> None:
    assert LS.wait_for(lambda: count(db) >= entries or proc.poll() is not None, timeout)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""


def test_write_config_file_and_s3(tmp_path: Path):
    p = LS.write_config(tmp_path / "ls.yml", tmp_path / "j.db", tmp_path / "replica", sync_interval="500ms")
    import yaml

    cfg = yaml.safe_load(p.read_text())
    assert cfg["dbs"][0]["path"] == str((tmp_path / "j.db").resolve())
    assert cfg["dbs"][0]["replicas"] == [{"url": "file://" + str((tmp_path / "replica").resolve()),
                                          "sync-interval": "500ms"}]
    s3 = LS.S3Replica(bucket="journal-mt", path="edges/mt-1", endpoint="https://s3.mt.example:9000", region="mt-1")
    cfg = yaml.safe_load(LS.write_config(tmp_path / "s3.yml", tmp_path / "j.db", s3).read_text())
    assert cfg["dbs"][0]["replicas"][0] == {"type": "s3", "bucket": "journal-mt", "path": "edges/mt-1",
                                            "endpoint": "https://s3.mt.example:9000", "region": "mt-1",
                                            "force-path-style": True, "sync-interval": "1s"}


def test_replicate_under_load_kill_edge_restore_same_head(tmp_path: Path):
    db, replica = tmp_path / "edge" / "j.db", tmp_path / "replica"
    db.parent.mkdir()
    edge = start_load(db)
    assert LS.wait_for(lambda: count(db) > 0, 30)
    rep = LS.Replicator(LS.write_config(tmp_path / "ls.yml", db, replica, sync_interval="200ms")).start()
    try:
        run_until(db, edge, 3000)
        time.sleep(1.5)  # several sync cycles under load
        run_until(db, edge, 3000)
        edge.send_signal(signal.SIGKILL)  # the edge dies mid-load
        edge.wait(10)
        acked = LS.journal_head(db)  # what readers (and so the sync outbox) had seen
        before = LS.journal_head(on_disk(db, tmp_path / "disk"))
        assert before[0] >= acked[0] >= 3000
        print(f"edge head at kill: {before[0]} (visible to readers: {acked[0]})")
        # Litestream (still running) ships the last WAL frames within its window.
        assert LS.wait_replicated(replica, before, tmp_path / "probe", timeout=30) == before
    finally:
        rep.stop()
        if edge.poll() is None:
            edge.kill()
    restored = LS.restore(tmp_path / "restored.db", replica=replica)
    assert LS.verify_journal(restored) is None
    assert LS.journal_head(restored) == before
    conn = sqlite3.connect(restored)
    assert conn.execute("SELECT hash FROM journal WHERE seq = ?", (acked[0],)).fetchone()[0] == acked[1]
    conn.close()
    # The restored copy serves a regulator export that verifies offline.
    m = export_bundle(restored, tmp_path / "bundle")
    assert m.head_hash == before[1] and m.to_seq == before[0]
    assert verify_bundle(tmp_path / "bundle").ok


def test_replica_window_gap_is_reconciled_from_the_cloud_copy(tmp_path: Path):
    db, replica = tmp_path / "edge" / "j.db", tmp_path / "replica"
    db.parent.mkdir()
    edge = start_load(db)
    assert LS.wait_for(lambda: count(db) > 0, 30)
    rep = LS.Replicator(LS.write_config(tmp_path / "ls.yml", db, replica, sync_interval="1s")).start()
    try:
        run_until(db, edge, 2000)
        time.sleep(2.5)  # Litestream has shipped something, and the load goes on
        run_until(db, edge, 2000)
        edge.send_signal(signal.SIGKILL)  # the whole box dies: edge and Litestream at once
        rep.kill()
        edge.wait(10)
    finally:
        if edge.poll() is None:
            edge.kill()
        rep.kill()
    cloud_copy = all_entries(on_disk(db, tmp_path / "disk"))  # what the cloud holds (the outbox ships every entry)
    before = (cloud_copy[-1]["seq"], cloud_copy[-1]["hash"])
    restored = LS.restore(tmp_path / "restored.db", replica=replica)
    assert LS.verify_journal(restored) is None
    seq, head = LS.journal_head(restored)
    assert 0 < seq <= before[0]
    assert cloud_copy[seq - 1]["hash"] == head  # a prefix of the real journal, never a fork
    added = LS.reconcile_gap(restored, cloud_copy)
    print(f"restored head {seq}, edge head {before[0]}, reconciled {added}")
    assert added == before[0] - seq
    assert LS.journal_head(restored) == before
    assert LS.verify_journal(restored) is None
    conn = sqlite3.connect(restored)  # the round index is rebuilt for the reconciled rounds
    ended = conn.execute("SELECT COUNT(*) FROM journal WHERE kind IN ('round.settled', 'round.voided')").fetchone()[0]
    assert conn.execute("SELECT COUNT(*) FROM rounds").fetchone()[0] == ended
    conn.close()
    with pytest.raises(ValueError):  # a forged continuation is refused
        forged = dict(cloud_copy[-1], seq=before[0] + 1, prev="00" * 32)
        LS.reconcile_gap(restored, [forged])
