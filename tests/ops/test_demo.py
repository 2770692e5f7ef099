"""`make demo`, headless: every part starts and answers, the deposit round trip through the cloud
credits both players, discovery sends each player to their own jurisdiction's edge, and the
clean stop leaves journals that verify. Its children never outlive it: SIGKILL the supervisor and
no process it started (or they started) is left; a taken port is named with its holder."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(420)
def test_demo_runs_headless_and_every_part_answers(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "demo", "--root", str(root), "--seconds", "3"],
                          capture_output=True, text=True, timeout=400, cwd=ROOT, check=False)
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-4000:]
    report = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    assert report["ok"] is True
    assert set(report["parts"]) >= {"nats-server", "control plane", "edge mt-1 (Malta)", "edge on-1 (Ontario)",
                                   "studio Malta roulette-1", "studio Ontario roulette-1"}
    assert all(report["parts"].values())
    assert report["credited"] == {"mt-1": 50_000, "on-1": 50_000}
    assert report["discovery"] == {"mt-1": "mt-1", "on-1": "on-1"}
    # progress was shown, and the clean stop verified both journals
    assert "[1/" in out and "is up" in out
    for edge in ("mt-1", "on-1"):
        assert f"{edge} journal:" in out and "FAILED" not in out
        assert (root / edge / "journal.db").exists()
        assert any((root / edge / "replica").rglob("*")), "Litestream replicated nothing"
    assert "is up" in (root / "demo.log").read_text()  # the demo's own log has the progress too


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's reaping is left


@pytest.mark.timeout(300)
def test_sigkill_of_the_supervisor_leaves_no_child(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    sup = subprocess.Popen([sys.executable, "-m", "demo", "--root", str(root)], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    children: set[int] = set()
    try:
        # Wait until both edges run (each with its Litestream child), then kill -9 the supervisor.
        seen = []
        assert sup.stdout is not None
        for line in sup.stdout:
            seen.append(line)
            if "edge on-1 (Ontario) is up" in line:
                break
            assert "failed" not in line, "".join(seen)
        time.sleep(1.0)
        children = _descendants(sup.pid)
        names = {Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0].decode().rsplit("/", 1)[-1]
                 for p in children if _alive(p)}
        assert {"nats-server", "litestream"} <= names, names
        assert len(children) >= 5, names  # nats, control plane, two edges, their Litestreams
        sup.send_signal(signal.SIGKILL)
        sup.wait(10)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and any(_alive(p) for p in children):
            time.sleep(0.5)
        left = {p: Path(f"/proc/{p}/cmdline").read_bytes() for p in children if _alive(p)}
        assert not left, f"children outlived the supervisor: {left}"
    finally:
        if sup.poll() is None:
            sup.kill()
        for p in children:
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def test_a_taken_port_is_named_with_its_holder() -> None:
    from demo.ports import claim

    lines: list[str] = []
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        port = claim(taken, "control plane", lines.append)
    assert port != taken
    assert lines and f"port {taken} (control plane) is held by pid {os.getpid()}" in lines[0]
    free = port
    assert claim(free, "edge", lines.append) == free and len(lines) == 1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:  # SRT and the dealer link are UDP
        u.bind(("127.0.0.1", 0))
        taken = u.getsockname()[1]
        assert claim(taken, "SRT", lines.append, udp=True) != taken
    assert f"port {taken} (SRT) is held by pid {os.getpid()}" in lines[-1]


@pytest.mark.timeout(300)
def test_ctrl_c_after_the_terminal_pipe_broke_still_stops_cleanly(tmp_path: Path) -> None:
    """`make demo | tee demo.log`, then Ctrl-C kills tee first: the supervisor's next line hits a
    broken pipe; it must go on stopping every part cleanly (journals verified), not die."""
    root = tmp_path / "demo"
    sup = subprocess.Popen([sys.executable, "-m", "demo", "--root", str(root)], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    children: set[int] = set()
    try:
        assert sup.stdout is not None
        for line in sup.stdout:
            if "edge on-1 (Ontario) is up" in line:
                break
        children = _descendants(sup.pid)
        sup.stdout.close()  # the reader (tee) is gone
        sup.send_signal(signal.SIGINT)
        assert sup.wait(120) == 0
        log = (root / "demo.log").read_text()
        assert "stopping" in log and "mt-1 journal:" in log and "on-1 journal:" in log and "FAILED" not in log
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(p) for p in children):
            time.sleep(0.5)
        assert not [p for p in children if _alive(p)]
    finally:
        if sup.poll() is None:
            sup.kill()
        for p in children:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
