"""The studio's SRT caller (libsrt in-process): goes live only with the listener's secret, and
comes back by itself when the edge's listener restarts (an edge restart must get its feed back)."""
from __future__ import annotations

import socket
import time

from edge_agent.media.srt import SrtCaller, SrtListener
from tests.media.conftest import free_port

SECRET = "correct-horse-battery-staple-42"


def _relayed(caller: SrtCaller, sink: socket.socket, seconds: float = 6.0) -> bytes | None:
    """Write TS-sized chunks into the caller until one comes out of the listener's relay."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        caller.write(b"G" + b"\0" * 187)
        try:
            return sink.recv(2048)
        except TimeoutError:
            continue
    return None


def test_caller_reaches_the_listener_and_reconnects_after_a_restart() -> None:
    port = free_port(socket.SOCK_DGRAM)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(0.1)
    refused: list[str] = []

    def listener() -> SrtListener:
        lst = SrtListener(port, 40, sink.getsockname()[1], "127.0.0.1", passphrase=SECRET, streamid="studio-t1",
                          on_reject=lambda reason, _peer: refused.append(reason))
        lst.ensure_running()
        return lst

    wrong = SrtCaller("127.0.0.1", port, 40, passphrase="wrong-passphrase-123", streamid="studio-t1")
    caller = SrtCaller("127.0.0.1", port, 40, passphrase=SECRET, streamid="studio-t1")
    caller.start()  # before the listener exists: it keeps trying
    time.sleep(0.3)
    lst = listener()
    try:
        wrong.start()
        assert _relayed(caller, sink) is not None, "the right caller never got through"
        deadline = time.monotonic() + 8
        while "bad_passphrase" not in refused and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "bad_passphrase" in refused and not wrong.connected.is_set()
        wrong.close()
        lst.stop()  # the edge restarts
        deadline = time.monotonic() + 8
        while caller.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not caller.connected.is_set(), "the caller did not notice the listener went away"
        lst = listener()
        assert _relayed(caller, sink, 15) is not None, "the caller did not come back after the restart"
    finally:
        caller.close()
        lst.stop()
        sink.close()
