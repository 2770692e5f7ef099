"""`edge-agent simulate | export | verify` on a real journal; one edited byte fails verification."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EDGE = [sys.executable, "-m", "edge_agent.cli"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*EDGE, *args], capture_output=True, text=True, timeout=300, check=False)


def test_simulate_export_verify_and_tamper(tmp_path: Path):
    db = tmp_path / "j.db"
    for game in ("roulette", "baccarat"):
        r = run("simulate", "--db", str(db), "--rounds", "40", "--players", "8", "--game", game, "--seed", "3")
        assert r.returncode == 0, r.stderr
    sim = json.loads(r.stdout.strip().splitlines()[-1])
    assert sim["bets_accepted"] > 0
    out = tmp_path / "bundle"
    r = run("export", "--db", str(db), "--out", str(out))
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["count"] == sim["head_seq"] and manifest["head_hash"] == sim["head_hash"]
    r = run("verify", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["rounds_verified"] >= 40

    # One edited byte inside an entry: verification fails and names that entry's seq.
    lines = (out / "journal.jsonl").read_bytes().splitlines(keepends=True)
    target = next(i for i, line in enumerate(lines) if b'"kind":"bet.placed"' in line)
    line = lines[target]
    pos = line.index(b'"amount":') + len(b'"amount":')
    lines[target] = line[:pos] + (b"9" if line[pos:pos + 1] != b"9" else b"8") + line[pos + 1:]
    (out / "journal.jsonl").write_bytes(b"".join(lines))
    r = run("verify", str(out))
    assert r.returncode == 1
    assert json.loads(r.stdout)["first_bad_seq"] == target + 1


def test_partial_export_verifies_from_its_anchor(tmp_path: Path):
    db = tmp_path / "j.db"
    assert run("simulate", "--db", str(db), "--rounds", "20", "--players", "3", "--seed", "1").returncode == 0
    out = tmp_path / "part"
    r = run("export", "--db", str(db), "--out", str(out), "--from-seq", "50", "--to-seq", "120")
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert (m["from_seq"], m["to_seq"], m["count"]) == (50, 120, 71)
    assert run("verify", str(out)).returncode == 0
