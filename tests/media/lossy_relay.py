"""A lossy studio link for tests (kernel netem is not available here): a UDP relay that drops
datagrams at random in both directions and delays each one, giving a real round-trip time.

    python -m tests.media.lossy_relay LISTEN_PORT TARGET_PORT --loss 0.05 --delay-ms 20 --seed 1
The caller sends to 127.0.0.1:LISTEN_PORT; datagrams go on to 127.0.0.1:TARGET_PORT and the
replies come back. On SIGTERM it prints one JSON line: datagrams seen and dropped each way.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
from typing import Any


class Leg(asyncio.DatagramProtocol):
    def __init__(self, name: str, loss: float, delay_s: float, rng: random.Random) -> None:
        self.name, self.loss, self.delay_s, self.rng = name, loss, delay_s, rng
        self.transport: asyncio.DatagramTransport | None = None
        self.forward: Any = None  # callable(data, addr) of the other leg
        self.seen = self.dropped = 0
        self.peer: tuple[str, int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.peer = self.peer or addr
        self.seen += 1
        if self.rng.random() < self.loss:
            self.dropped += 1
            return
        asyncio.get_running_loop().call_later(self.delay_s, self.forward, data)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("listen", type=int)
    ap.add_argument("target", type=int)
    ap.add_argument("--loss", type=float, default=0.05)
    ap.add_argument("--delay-ms", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    loop = asyncio.get_running_loop()
    up = Leg("up", a.loss, a.delay_ms / 1000, rng)      # studio -> edge
    down = Leg("down", a.loss, a.delay_ms / 1000, rng)  # edge -> studio
    studio_side, _ = await loop.create_datagram_endpoint(lambda: up, local_addr=("127.0.0.1", a.listen))
    edge_side, _ = await loop.create_datagram_endpoint(lambda: down, remote_addr=("127.0.0.1", a.target))
    up.forward = lambda data: edge_side.sendto(data)
    down.forward = lambda data: up.peer and studio_side.sendto(data, up.peer)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("READY", flush=True)
    await stop.wait()
    print(json.dumps({"up": {"seen": up.seen, "dropped": up.dropped},
                      "down": {"seen": down.seen, "dropped": down.dropped}}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
