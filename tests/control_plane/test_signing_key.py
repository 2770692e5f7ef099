"""The token-signing key: replicas starting together on one key path all get the same key."""
from __future__ import annotations

import multiprocessing as mp
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from contract import tokens
from control_plane.adapters import keys


def _start(path: str, barrier: Any, out: Any) -> None:
    barrier.wait()  # every replica at once, as a Deployment's pods start
    out.put(tokens.public_pem(keys.load_or_create(Path(path))))


def test_replicas_starting_together_share_one_key(tmp_path: Path) -> None:
    path = tmp_path / "token.pem"
    ctx = mp.get_context("fork")
    n = 8
    barrier, out = ctx.Barrier(n), ctx.Queue()
    ps = [ctx.Process(target=_start, args=(str(path), barrier, out)) for _ in range(n)]
    for p in ps:
        p.start()
    pems = [out.get(timeout=30) for _ in ps]
    for p in ps:
        p.join(10)
        assert p.exitcode == 0
    assert len(set(pems)) == 1 and pems[0] == tokens.public_pem(keys.load_or_create(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["token.pem"]  # no candidate left behind


def test_a_key_that_appears_meanwhile_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another replica writes its key between our look and our write: we take its key, not ours."""
    path = tmp_path / "token.pem"
    theirs = tokens.new_signing_key()
    real_new = tokens.new_signing_key

    def new_key_while_another_replica_writes() -> Any:
        path.write_text(tokens.private_pem(theirs))
        return real_new()

    monkeypatch.setattr(tokens, "new_signing_key", new_key_while_another_replica_writes)
    got = keys.load_or_create(path)
    assert tokens.public_pem(got) == tokens.public_pem(theirs)
    assert sorted(os.listdir(tmp_path)) == ["token.pem"]
