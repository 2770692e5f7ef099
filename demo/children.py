"""One supervised child process of the demo.

Every child runs in its own session (a terminal's Ctrl-C reaches only the supervisor, which
stops the parts in reverse order) with PR_SET_PDEATHSIG, so that if the supervisor dies —
SIGKILL, a crash, a broken pipe — the kernel sends each child SIGTERM and it stops cleanly on
its own. The children's own children (Litestream) carry the same signal.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from edge_agent.children import die_with_parent

# Set by the supervisor's signal handlers (Ctrl-C, SIGTERM, SIGHUP). A flag, not an exception
# raised from the handler: a KeyboardInterrupt that lands inside a finaliser or a logging lock is
# swallowed ("Exception ignored in ..."), and the demo would then never stop.
STOP = threading.Event()


class Stopping(Exception):
    """The operator asked the demo to stop while it was starting."""


def pause(seconds: float) -> None:
    """Sleep, unless a stop is requested (then raise Stopping)."""
    if STOP.wait(seconds):
        raise Stopping


@dataclass
class Part:
    name: str
    args: list[str]
    log: Path
    health: str | None = None  # URL answering 200 when ready
    env: dict[str, str] = field(default_factory=dict)
    ready: Callable[[], bool] | None = None  # readiness other than an HTTP health URL
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env={**os.environ, **self.env}, start_new_session=True,
                                         preexec_fn=die_with_parent())  # noqa: PLW1509 - one prctl call

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def answers(self) -> bool:
        if self.ready is not None:
            return self.alive() and self.ready()
        if self.health is None:
            return self.alive()
        try:
            return httpx.get(self.health, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited; see {self.log}")
            if self.answers():
                return
            pause(0.2)
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s; see {self.log}")

    def stop(self, timeout: float = 20) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: the whole group goes
            self.proc.wait()
