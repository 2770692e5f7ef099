"""Signed journal checkpoints: tamper evidence anchored outside the edge.

A checkpoint is an RFC 6962 signed tree head over the journal: leaf i is the 32 raw bytes of
entry (i+1)'s `hash` (see `contract.merkle`). The edge signs it with its Ed25519 checkpoint key
and sends it to the control plane on `casino.checkpoint.<edge_id>`, with a consistency proof
from the previous checkpoint it sent. The cloud checks each one against the previous
(`verify_checkpoint`): a journal can only grow. An edge that rewrites any entry already
covered by a checkpoint cannot produce a consistency proof, even if its own hash chain is
internally consistent again. A regulator checks a round against a checkpoint fetched from the
cloud with an inclusion proof (`inclusion_proof_for`, `verify_entry_inclusion`).

Wire form (JSON, canonical on the wire)::

    {"edge_id": "mt-1", "size": 1234, "root": "<hex64>", "ts": 1764000000123,
     "sig": "<hex128>", "prev_size": 1200, "consistency": ["<hex64>", ...]}

`sig` is Ed25519 over `signed_message(cp)`: the UTF-8 bytes of
`"casino-checkpoint/v1\\n"` followed by the canonical JSON of {"edge_id", "root", "size", "ts"}.
`consistency` is the RFC 6962 consistency proof from the tree of `prev_size` leaves to this one
(empty when prev_size is 0 or equals size).

Cost: `MerkleLog` keeps the hashes of complete aligned subtrees of 2**chunk_bits leaves and
above (about 64 bytes per 256 entries), plus the leaves of the last partial chunk. Appending is
amortised two SHA-256 per entry; a root or a proof touches O(log n) cached nodes and at most a
few chunks of leaves, read back from the journal on demand. At 1M entries the cache is ~260 kB.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contract import merkle
from contract.canonical import canonical_json
from contract.sync import checkpoint_subject

log = structlog.get_logger("checkpoints")

SIGNING_CONTEXT = b"casino-checkpoint/v1\n"
EMPTY_ROOT = hashlib.sha256(b"").digest()
KV_LAST = "checkpoint.last"  # kv key: the last checkpoint published (JSON)

FetchLeaves = Callable[[int, int], list[bytes]]  # leaf indices [a, b) -> raw leaf data (entry hashes)


# --- incremental Merkle tree ------------------------------------------------------------------

_sha256 = hashlib.sha256


def _perfect_root(leaves: Sequence[bytes]) -> bytes:
    """MTH of a power-of-two number of leaves, iteratively (same result as merkle.root)."""
    level = [_sha256(b"\x00" + d).digest() for d in leaves]
    while len(level) > 1:
        level = [_sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]


class MerkleLog:
    """An append-only RFC 6962 tree that stays cheap at millions of leaves.

    `fetch(a, b)` returns the raw data (32-byte entry hashes) of leaves a..b-1; it is called only
    for leaves of complete chunks, when a proof needs a node below the chunk level. Without a
    fetch function every leaf is kept in memory (tests, small trees).
    """

    def __init__(self, fetch: FetchLeaves | None = None, *, chunk_bits: int = 8) -> None:
        self.fetch = fetch
        self.chunk_bits = chunk_bits
        self.chunk = 1 << chunk_bits
        self.size = 0
        # levels[h][i] = MTH of the perfect subtree of 2**(chunk_bits+h) leaves starting at i*that.
        self.levels: list[list[bytes]] = [[]]
        self._tail: list[bytes] = []  # raw leaf data of the last, incomplete chunk
        self._all: list[bytes] | None = [] if fetch is None else None

    # appending

    def append(self, leaf: bytes) -> None:
        self._tail.append(leaf)
        if self._all is not None:
            self._all.append(leaf)
        self.size += 1
        if len(self._tail) == self.chunk:
            self._push(0, _perfect_root(self._tail))
            self._tail = []

    def extend(self, leaves: Sequence[bytes]) -> None:
        i, n = 0, len(leaves)
        while i < n:
            room = self.chunk - len(self._tail)
            part = leaves[i:i + room]
            if len(part) == room:
                chunk = self._tail + list(part)
                if self._all is not None:
                    self._all.extend(part)
                self.size += room
                self._tail = []
                self._push(0, _perfect_root(chunk))
            else:
                for leaf in part:
                    self.append(leaf)
            i += len(part)

    def _push(self, h: int, node: bytes) -> None:
        while True:
            if h == len(self.levels):
                self.levels.append([])
            level = self.levels[h]
            level.append(node)
            if len(level) % 2:
                return
            node = merkle.node_hash(level[-2], level[-1])
            h += 1

    # reading

    def _leaves(self, a: int, b: int) -> list[bytes]:
        base = self.size - len(self._tail)
        if a >= base:
            return self._tail[a - base:b - base]
        if self._all is not None:
            return self._all[a:b]
        assert self.fetch is not None
        got = self.fetch(a, b)
        if len(got) != b - a:
            raise LookupError(f"leaves {a}..{b} not available")
        return got

    def _range(self, a: int, b: int) -> bytes:
        """MTH of leaves a..b-1, where [a, b) is a node of some RFC 6962 tree (a aligned)."""
        n = b - a
        if n == 1:
            return merkle.leaf_hash(self._leaves(a, b)[0])
        if n & (n - 1) == 0 and n >= self.chunk and b <= self.size - len(self._tail):
            h = n.bit_length() - 1 - self.chunk_bits
            return self.levels[h][a >> (h + self.chunk_bits)]
        if n <= self.chunk:
            return merkle.root(self._leaves(a, b))
        k = merkle._split(n)
        return merkle.node_hash(self._range(a, a + k), self._range(a + k, b))

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError("size outside the tree")
        return EMPTY_ROOT if size == 0 else self._range(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise IndexError("leaf index outside the tree")
        proof: list[bytes] = []
        a, b, m = 0, size, index
        while b - a > 1:
            k = merkle._split(b - a)
            if m < k:
                proof.append(self._range(a + k, b))
                b = a + k
            else:
                proof.append(self._range(a, a + k))
                a, m = a + k, m - k
        proof.reverse()
        return proof

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        new_size = self.size if new_size is None else new_size
        if not 0 < old_size <= new_size <= self.size:
            raise ValueError("sizes outside the tree")
        if old_size == new_size:
            return []
        out: list[bytes] = []
        self._subproof(old_size, 0, new_size, True, out)
        return out

    def _subproof(self, m: int, a: int, b: int, complete: bool, out: list[bytes]) -> None:
        # RFC 6962 SUBPROOF(m, D[a:b], complete); appends in the RFC's order.
        n = b - a
        if m == n:
            if not complete:
                out.append(self._range(a, b))
            return
        k = merkle._split(n)
        if m <= k:
            self._subproof(m, a, a + k, complete, out)
            out.append(self._range(a + k, b))
        else:
            self._subproof(m - k, a + k, b, False, out)
            out.append(self._range(a, a + k))


# --- checkpoints ------------------------------------------------------------------------------

def signed_message(cp: dict[str, Any]) -> bytes:
    body = {"edge_id": cp["edge_id"], "root": cp["root"], "size": cp["size"], "ts": cp["ts"]}
    return SIGNING_CONTEXT + canonical_json(body)


def make_checkpoint(entry_hashes: Sequence[str] | MerkleLog, prev_checkpoint: dict[str, Any] | None,
                    signing_key: Ed25519PrivateKey, edge_id: str, *, ts: int | None = None) -> dict[str, Any]:
    """Sign the tree over `entry_hashes` (hex, seq order, from seq 1) or over a MerkleLog."""
    if isinstance(entry_hashes, MerkleLog):
        tree = entry_hashes
    else:
        tree = MerkleLog()
        tree.extend([bytes.fromhex(h) for h in entry_hashes])
    prev_size = int(prev_checkpoint["size"]) if prev_checkpoint else 0
    if prev_size > tree.size:
        raise ValueError(f"journal ({tree.size} entries) is shorter than the previous checkpoint ({prev_size})")
    proof = tree.consistency_proof(prev_size) if 0 < prev_size else []
    cp: dict[str, Any] = {
        "edge_id": edge_id, "size": tree.size, "root": tree.root().hex(),
        "ts": int(time.time() * 1000) if ts is None else ts,
        "prev_size": prev_size, "consistency": [p.hex() for p in proof],
    }
    cp["sig"] = signing_key.sign(signed_message(cp)).hex()
    return cp


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


def _public(key: str | Ed25519PublicKey | Ed25519PrivateKey) -> Ed25519PublicKey:
    if isinstance(key, Ed25519PrivateKey):
        return key.public_key()
    if isinstance(key, Ed25519PublicKey):
        return key
    pub = serialization.load_pem_public_key(key.encode())
    if not isinstance(pub, Ed25519PublicKey):
        raise ValueError("checkpoint key must be Ed25519")
    return pub


def verify_signature(cp: dict[str, Any], public_key: str | Ed25519PublicKey) -> CheckResult:
    try:
        _public(public_key).verify(bytes.fromhex(cp["sig"]), signed_message(cp))
    except (InvalidSignature, KeyError, TypeError, ValueError) as exc:
        return CheckResult(False, f"bad signature: {exc.__class__.__name__}")
    return CheckResult(True)


def verify_checkpoint(cp: dict[str, Any], public_key_pem: str | Ed25519PublicKey,
                      prev_cp: dict[str, Any] | None) -> CheckResult:
    """Check a checkpoint's signature and that it extends `prev_cp` (append-only).

    `prev_cp` is the last checkpoint the verifier accepted for this edge (None for the first).
    Returns CheckResult(ok, reason); falsy when it does not hold.
    """
    try:
        size, prev_size = cp["size"], cp["prev_size"]
        root = bytes.fromhex(cp["root"])
        proof = [bytes.fromhex(p) for p in cp["consistency"]]
        if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in (size, prev_size, cp["ts"])):
            return CheckResult(False, "size, prev_size and ts must be non-negative integers")
        if len(root) != 32 or any(len(p) != 32 for p in proof):
            return CheckResult(False, "hashes must be 32 bytes")
    except (KeyError, TypeError, ValueError) as exc:
        return CheckResult(False, f"malformed checkpoint: {exc!r}")
    sig = verify_signature(cp, public_key_pem)
    if not sig:
        return sig
    if size == 0 and root != EMPTY_ROOT:
        return CheckResult(False, "empty tree with a non-empty root")
    if prev_cp is None:
        return CheckResult(True)
    if cp["edge_id"] != prev_cp["edge_id"]:
        return CheckResult(False, "edge_id differs from the previous checkpoint")
    if size < prev_cp["size"]:
        return CheckResult(False, f"journal shrank: size {size} < previous {prev_cp['size']}")
    if cp["ts"] < prev_cp["ts"]:
        return CheckResult(False, "timestamp goes backwards")
    if prev_size != prev_cp["size"]:
        return CheckResult(False, f"proof is from size {prev_size}, previous checkpoint has size {prev_cp['size']}")
    old_root = bytes.fromhex(prev_cp["root"])
    if prev_size == 0:
        return CheckResult(True) if not proof else CheckResult(False, "proof given from an empty tree")
    if not merkle.verify_consistency(prev_size, size, old_root, root, proof):
        return CheckResult(False, f"not consistent with the checkpoint of size {prev_size}: history was rewritten")
    return CheckResult(True)


def verify_entry_inclusion(entry_hash_hex: str, seq: int, cp: dict[str, Any], proof: Sequence[str]) -> bool:
    """Does journal entry `seq` (with this hash) lie in the tree signed by checkpoint `cp`?"""
    try:
        return merkle.verify_inclusion(bytes.fromhex(entry_hash_hex), seq - 1, cp["size"],
                                       [bytes.fromhex(p) for p in proof], bytes.fromhex(cp["root"]))
    except (KeyError, TypeError, ValueError):
        return False


# --- reading leaves from a journal ------------------------------------------------------------

def _conn(db: Any) -> tuple[Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]], Callable[[], None]]:
    """(query, close) over a path, a sqlite3 connection or a JournalStore."""
    if isinstance(db, (str, Path)):
        c = sqlite3.connect(f"file:{Path(db)}?mode=ro", uri=True, check_same_thread=False)
        c.execute("PRAGMA busy_timeout = 5000")
        return (lambda sql, p=(): c.execute(sql, p).fetchall()), c.close
    if isinstance(db, sqlite3.Connection):
        return (lambda sql, p=(): db.execute(sql, p).fetchall()), (lambda: None)
    return (lambda sql, p=(): db.query(sql, p)), (lambda: None)


def journal_fetcher(query: Callable[..., list[tuple[Any, ...]]]) -> FetchLeaves:
    def fetch(a: int, b: int) -> list[bytes]:
        rows = query("SELECT hash FROM journal WHERE seq > ? AND seq <= ? ORDER BY seq", (a, b))
        return [bytes.fromhex(r[0]) for r in rows]
    return fetch


def extend_from_journal(tree: MerkleLog, query: Callable[..., list[tuple[Any, ...]]], upto: int,
                        batch: int = 65_536) -> None:
    while tree.size < upto:
        first = tree.size + 1
        rows = query("SELECT seq, hash FROM journal WHERE seq > ? AND seq <= ? ORDER BY seq",
                     (tree.size, min(upto, tree.size + batch)))
        if not rows:
            raise LookupError(f"journal has no entry {first}")
        if rows[0][0] != first or rows[-1][0] != first + len(rows) - 1:
            raise LookupError(f"journal gap after seq {tree.size}")
        tree.extend([bytes.fromhex(h) for _, h in rows])


def tree_from_journal(db: Any, size: int | None = None) -> MerkleLog:
    query, _close = _conn(db)
    if size is None:
        size = query("SELECT COALESCE(MAX(seq), 0) FROM journal", ())[0][0]
    tree = MerkleLog(journal_fetcher(query))
    extend_from_journal(tree, query, size)
    tree._close = _close  # type: ignore[attr-defined]
    return tree


def inclusion_proof_for(db: Any, seq: int, size: int, *, tree: MerkleLog | None = None) -> dict[str, Any]:
    """The inclusion proof of entry `seq` in the journal's tree of `size` entries.

    `db`: a journal path, a sqlite3 connection or a JournalStore. Pass a `tree` already built
    (e.g. the regulator API's cache) to avoid reading the journal up to `size`.
    """
    query, close = _conn(db)
    try:
        if tree is None:
            tree = MerkleLog(journal_fetcher(query))
            extend_from_journal(tree, query, size)
        elif tree.size < size:
            extend_from_journal(tree, query, size)
        row = query("SELECT hash FROM journal WHERE seq = ?", (seq,))
        if not row or not 1 <= seq <= size:
            raise LookupError(f"no entry {seq} within the first {size}")
        proof = tree.inclusion_proof(seq - 1, size)
        return {"seq": seq, "hash": row[0][0], "size": size, "root": tree.root(size).hex(),
                "proof": [p.hex() for p in proof]}
    finally:
        close()


def root_of_entries(entries: Sequence[dict[str, Any]], size: int) -> str:
    """Merkle root over the first `size` entries (a bundle exported from seq 1)."""
    if len(entries) < size or (size and entries[0]["seq"] != 1):
        raise ValueError("need entries from seq 1 up to the checkpoint size")
    tree = MerkleLog()
    tree.extend([bytes.fromhex(e["hash"]) for e in entries[:size]])
    return tree.root().hex()


# --- the publisher ----------------------------------------------------------------------------

class CheckpointPublisher:
    """Every `interval_s`, sign the tree over the durable journal and publish it.

    `publish(subject, payload)` sends the canonical JSON bytes (NATS/JetStream in production).
    The last checkpoint successfully published is kept in kv `checkpoint.last`, so proofs chain
    across restarts. A publish that fails is retried at the next tick, still proving
    consistency from the last one that went out. The tree is built once from the journal (in a
    worker thread) and then extended by the new entries at each tick.
    """

    def __init__(self, casino: Any, signing_key: Ed25519PrivateKey,
                 publish: Callable[[str, bytes], Awaitable[Any]], interval_s: float = 30.0) -> None:
        self.casino = casino
        self.signing_key = signing_key
        self.publish = publish
        self.interval_s = interval_s
        self.edge_id: str = casino.config.edge_id
        self.subject = checkpoint_subject(self.edge_id)
        self.tree: MerkleLog | None = None
        self._conn: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.last: dict[str, Any] | None = None
        self.published = 0
        self.failures = 0
        rows = casino.store.query("SELECT value FROM kv WHERE key = ?", (KV_LAST,))
        if rows:
            try:
                self.last = json.loads(rows[0][0])
            except ValueError:
                self.last = None

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self._conn is None:
            self._conn = sqlite3.connect(f"file:{self.casino.store.path}?mode=ro", uri=True,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout = 5000")
        return self._conn.execute(sql, params).fetchall()

    def _build(self, upto: int, prev: dict[str, Any] | None, ts: int) -> dict[str, Any]:
        if self.tree is None:
            self.tree = MerkleLog(journal_fetcher(self._query))
        extend_from_journal(self.tree, self._query, upto)
        return make_checkpoint(self.tree, prev, self.signing_key, self.edge_id, ts=ts)

    async def publish_now(self) -> dict[str, Any] | None:
        """Build and publish a checkpoint of the durable journal; None when nothing is new."""
        async with self._lock:
            upto = self.casino.store.durable_seq
            prev = self.last
            if prev is not None and upto <= prev["size"]:
                if upto < prev["size"]:
                    # A restored journal behind its last checkpoint: wait for the gap to be
                    # reconciled from the cloud before claiming anything new.
                    log.warning("journal behind last checkpoint", size=upto, checkpoint=prev["size"])
                return None
            ts = max(self.casino.clock(), prev["ts"] if prev else 0)
            cp = await asyncio.to_thread(self._build, upto, prev, ts)
            payload = canonical_json(cp)
            try:
                await self.publish(self.subject, payload)
            except Exception as exc:  # noqa: BLE001 - retried next tick from the same previous checkpoint
                self.failures += 1
                log.warning("checkpoint publish failed", error=str(exc), size=cp["size"])
                return None
            self.last = cp
            self.published += 1
            self.casino.store.side_write([("INSERT OR REPLACE INTO kv VALUES (?, ?)", (KV_LAST, payload.decode()))])
            return cp

    async def _run(self) -> None:
        while True:
            try:
                await self.publish_now()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("checkpoint tick failed")
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="checkpoints")

    async def stop(self, *, final: bool = True) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            self._task = None
        if final:
            try:
                await self.publish_now()
            except Exception:  # noqa: BLE001
                log.warning("final checkpoint failed")
        if self._conn is not None:
            self._conn.close()
            self._conn = None
