"""The dealer link: what the dealer is to put on the table, sent to the studio's dealer display
(in the simulator, the simulated dealer) once betting has closed. One JSON datagram per
instruction; a lost one is a reveal the camera never shows, which the vision check voids."""
from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit


class DealerLink:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "udp" or not parts.hostname or not parts.port:
            raise ValueError(f"dealer link must be udp://host:port, not {url!r}")
        self.addr = (parts.hostname, parts.port)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, msg: dict[str, Any]) -> None:
        try:
            self._sock.sendto(json.dumps(msg).encode(), self.addr)
        except OSError:
            pass  # the check times out and voids the round: a dealer that cannot be told cannot deal

    def deal(self, n: int, game: str, reveal: dict[str, Any], order: list[str]) -> None:
        self.send({"op": "deal", "n": n, "game": game, "reveal": reveal, "order": order})

    def clear(self) -> None:
        self.send({"op": "clear"})

    def close(self) -> None:
        self._sock.close()
