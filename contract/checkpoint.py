"""Signed checkpoints: RFC 6962 signed tree heads over a journal, signed by the edge, checked by
the cloud and by regulators — one implementation for every side.

Wire form (JSON, canonical on the wire)::

    {"edge_id": "mt-1", "size": 1234, "root": "<hex64>", "ts": 1764000000123,
     "sig": "<hex128>", "prev_size": 1200, "consistency": ["<hex64>", ...]}

`sig` is Ed25519 over `signed_message(cp)`: the UTF-8 bytes of `"casino-checkpoint/v1\n"`
(domain separation: the signature can never be replayed as another message signed by the same
key) followed by the canonical JSON of {"edge_id", "root", "size", "ts"}. A signature over the
bare body, without the prefix, does not verify. `consistency` is the RFC 6962 consistency
proof from the tree of `prev_size` leaves to this one (empty when prev_size is 0 or equals size).
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contract import merkle
from contract.canonical import canonical_json
from contract.merkle import EMPTY_ROOT, MerkleLog

SIGNING_CONTEXT = b"casino-checkpoint/v1\n"


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
        raise TypeError("checkpoint key must be Ed25519")
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


def root_of_entries(entries: Sequence[dict[str, Any]], size: int) -> str:
    """Merkle root over the first `size` entries (a bundle exported from seq 1)."""
    if len(entries) < size or (size and entries[0]["seq"] != 1):
        raise ValueError("need entries from seq 1 up to the checkpoint size")
    tree = MerkleLog()
    tree.extend([bytes.fromhex(e["hash"]) for e in entries[:size]])
    return tree.root().hex()
