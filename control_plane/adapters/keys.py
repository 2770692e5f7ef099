"""The Ed25519 key that signs player/operator tokens: loaded from PEM, generated when missing."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract import tokens


def load_or_create(path: Path) -> Ed25519PrivateKey:
    """The key at `path`; when there is none, a new one. Replicas starting together on one key
    path end up with the same key: each writes its candidate to a file of its own and links it in
    place only if no key is there yet (link(2) never replaces), then everyone reads what won."""
    path = Path(path)
    if path.exists():
        return tokens.load_private(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(tokens.private_pem(tokens.new_signing_key()))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # whole or not at all; never over another replica's key
        except FileExistsError:
            pass  # another replica's key won: use it
    finally:
        os.unlink(tmp)
    return tokens.load_private(path.read_text())
