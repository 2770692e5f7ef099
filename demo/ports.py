"""The demo's preferred ports, and the process holding one that is taken.

A demo that finds its port busy says which process holds it (pid and command line, from
/proc/net/tcp and the holders' open sockets) and moves to a free port instead.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path


def _socket(udp: bool) -> socket.socket:
    return socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)


def is_free(port: int, udp: bool = False) -> bool:
    with _socket(udp) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def any_free(udp: bool = False) -> int:
    with _socket(udp) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening_inodes(port: int, udp: bool = False) -> set[str]:
    inodes: set[str] = set()
    for table in (("/proc/net/udp", "/proc/net/udp6") if udp else ("/proc/net/tcp", "/proc/net/tcp6")):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            local, state, inode = cols[1], cols[3], cols[9]
            # TCP: 0A = LISTEN; UDP: a bound socket is 07 (unconnected)
            if state == ("07" if udp else "0A") and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def holder(port: int, udp: bool = False) -> str | None:
    """"pid 1234 (nats-server -c …)" for the process listening on `port`, if it can be seen."""
    inodes = _listening_inodes(port, udp)
    if not inodes:
        return None
    wanted = {f"socket:[{i}]" for i in inodes}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in wanted for fd in fds):
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                return f"pid {pid} ({cmd.strip()[:120]})"
        except OSError:
            continue
    return "a process this user cannot see"


def claim(preferred: int, what: str, say: object, udp: bool = False) -> int:
    """The preferred port if free; else a free one, after naming who holds the preferred one.
    `udp`: a datagram port (SRT, the dealer link)."""
    if is_free(preferred, udp):
        return preferred
    port = any_free(udp)
    who = holder(preferred, udp) or "another process"
    say(f"port {preferred} ({what}) is held by {who}; using {port} instead")  # type: ignore[operator]
    return port
