"""The cloud's tree over the entry hashes it holds is incremental: a checkpoint reads only the
entries received since the previous one, and every root and proof equals the RFC 6962 reference."""
from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import create_engine, event, insert

from contract import merkle
from control_plane.adapters.db.models import edge_sync, entries, metadata
from control_plane.services.checkpoints import HeldTrees


def _hash(i: int) -> bytes:
    return hashlib.sha256(f"entry {i}".encode()).digest()


def test_held_tree_extends_with_new_entries_only(tmp_path: Any) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'cp.db'}")
    metadata.create_all(engine)
    read_rows: list[str] = []  # the extension's reads: (seq, hash) of entries beyond the tree

    @event.listens_for(engine, "before_cursor_execute")
    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "entries.seq, entries.hash" in statement:
            read_rows.append(statement)

    trees = HeldTrees(engine)
    leaves: list[bytes] = []
    held = 0
    seen_sizes = []
    with engine.begin() as c:
        c.execute(insert(edge_sync).values(edge_id="mt-1", head_seq=0, head_hash="0" * 64))
    for size in (5, 6, 300, 301, 1000, 1024, 1500):
        with engine.begin() as c:
            rows = [{"edge_id": "mt-1", "seq": s, "ts": 0, "kind": "k", "prev": "", "hash": _hash(s).hex(),
                     "body": "{}", "received_ts": 0} for s in range(held + 1, size + 1)]
            c.execute(insert(entries), rows)
            c.execute(edge_sync.update().values(head_seq=size))
        leaves += [_hash(s) for s in range(held + 1, size + 1)]
        held = size
        with engine.connect() as c:
            before = len(read_rows)
            assert trees.root(c, "mt-1", size) == merkle.root(leaves)
            assert trees.root(c, "mt-1", size) == merkle.root(leaves)  # again: nothing to read
            seen_sizes.append(len(read_rows) - before)
            for i in (0, size // 2, size - 1):
                assert trees.inclusion_proof(c, "mt-1", i, size) == merkle.inclusion_proof(leaves, i)
            assert trees.root(c, "mt-1", 3) == merkle.root(leaves[:3])  # an older head of the same tree
            assert trees.root(c, "mt-1", size + 1) is None  # not held yet
    assert seen_sizes == [1] * 7  # one read of the new entries per new head, never of all held leaves
    tree = trees._trees["mt-1"]
    assert tree.size == 1500 and tree._all is None  # leaves of complete chunks are not kept in memory
