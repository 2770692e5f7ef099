"""RFC 6962 Merkle trees over journal entry hashes: roots, inclusion and consistency proofs.

Leaf i is the 32 raw bytes of entry (i+1)'s `hash`. leaf hash = SHA-256(0x00 || d),
node hash = SHA-256(0x01 || left || right). Signed checkpoints carry (size, root).

The functions over a leaf list are the reference; `MerkleLog` is the incremental tree both the
edge (signing) and the cloud (checking against the entries it holds) keep: appending is
amortised two SHA-256 per entry, a root or a proof touches O(log n) cached nodes.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()
FetchLeaves = Callable[[int, int], list[bytes]]  # leaf indices [a, b) -> raw leaf data (entry hashes)


def leaf_hash(d: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + d).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly less than n (n >= 2)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def root(leaves: Sequence[bytes]) -> bytes:
    """Merkle tree hash of the leaf data (MTH in RFC 6962)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hash(leaves[0])
    k = _split(n)
    return node_hash(root(leaves[:k]), root(leaves[k:]))


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    n = len(leaves)
    if not 0 <= index < n:
        raise IndexError("leaf index outside the tree")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return inclusion_proof(leaves[:k], index) + [root(leaves[k:])]
    return inclusion_proof(leaves[k:], index - k) + [root(leaves[:k])]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash(leaf)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """Proof that the first old_size leaves are a prefix of leaves (RFC 6962 SUBPROOF)."""
    n = len(leaves)
    if not 0 < old_size <= n:
        raise ValueError("old size must be within the tree")
    if old_size == n:
        return []
    return _subproof(old_size, leaves, True)


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = _split(n)
    if m <= k:
        return _subproof(m, leaves[:k], complete) + [root(leaves[k:])]
    return _subproof(m - k, leaves[k:], False) + [root(leaves[:k])]


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if old_size == new_size:
        return old_root == new_root and not proof
    if not 0 < old_size < new_size:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # old_size is a power of two: old root is on the path
        path = [old_root] + path
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


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
            node = node_hash(level[-2], level[-1])
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
            return leaf_hash(self._leaves(a, b)[0])
        if n & (n - 1) == 0 and n >= self.chunk and b <= self.size - len(self._tail):
            h = n.bit_length() - 1 - self.chunk_bits
            return self.levels[h][a >> (h + self.chunk_bits)]
        if n <= self.chunk:
            return root(self._leaves(a, b))
        k = _split(n)
        return node_hash(self._range(a, a + k), self._range(a + k, b))

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
            k = _split(b - a)
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
        k = _split(n)
        if m <= k:
            self._subproof(m, a, a + k, complete, out)
            out.append(self._range(a + k, b))
        else:
            self._subproof(m - k, a + k, b, False, out)
            out.append(self._range(a, a + k))
