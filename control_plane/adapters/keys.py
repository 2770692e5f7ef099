"""The Ed25519 key that signs player/operator tokens: loaded from PEM, generated when missing."""
from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract import tokens


def load_or_create(path: Path) -> Ed25519PrivateKey:
    path = Path(path)
    if path.exists():
        return tokens.load_private(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = tokens.new_signing_key()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(tokens.private_pem(key))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)  # atomic: two starting processes never half-write the key
    return key
