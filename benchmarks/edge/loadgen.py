"""Lightweight load generators over raw sockets (one process each), so that the client side
costs a few microseconds per bet and the figures measure the edge, not the client library."""
from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from typing import Any

import orjson


def ws_frame(payload: bytes) -> bytes:
    """A masked client text frame. The zero mask keeps the payload as is (valid framing; the
    server still does its unmasking work) so frames cost nothing to build."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, 0x80 | n)
    else:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    return head + b"\x00\x00\x00\x00" + payload


async def ws_connect(host: str, port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    r, w = await asyncio.open_connection(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    w.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(head.decode(errors="replace"))
    return r, w


async def ws_read(r: asyncio.StreamReader) -> bytes:
    b0, b1 = await r.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await r.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await r.readexactly(8))[0]
    data = await r.readexactly(n)
    if b0 & 0x0F == 0x8:
        raise ConnectionError("closed")
    return data


async def ws_player(host: str, port: int, token: str, tables: list[str], window: int, per_frame: int,
                    until: float, warm_until: float, lat: list[float], counts: dict[str, int]) -> None:
    r, w = await ws_connect(host, port, f"/v1/ws?token={token}")
    sent: dict[int, float] = {}
    credit = asyncio.Semaphore(window)
    spots = ["red", "black", "odd", "even"]

    async def reader() -> None:
        while True:
            m = orjson.loads(await ws_read(r))
            t = m.get("type")
            if t in ("bet.accepted", "bet.refused", "bets.result"):
                t0 = sent.pop(m["req"], None)
                now = time.perf_counter()
                if t0 is not None and now >= warm_until and now <= until:
                    lat.append(now - t0)
                    if t == "bets.result":
                        ok = sum(1 for x in m["results"] if "error" not in x)
                        counts["ok"] += ok
                        counts["refused"] += len(m["results"]) - ok
                    else:
                        counts["ok" if t == "bet.accepted" else "refused"] += 1
                credit.release()

    task = asyncio.create_task(reader())
    i = 0
    try:
        while time.perf_counter() < until:
            await credit.acquire()
            i += 1
            table = tables[i % len(tables)]
            if per_frame == 1:
                msg = {"type": "bet", "req": i, "table_id": table, "spot": spots[i % 4], "amount": 100}
            else:
                msg = {"type": "bets", "req": i, "bets": [{"table_id": table, "spot": spots[(i + k) % 4],
                                                           "amount": 100} for k in range(per_frame)]}
            sent[i] = time.perf_counter()
            w.write(ws_frame(orjson.dumps(msg)))
            if i % 8 == 0:
                await w.drain()
    finally:
        task.cancel()
        w.close()


async def http_player(host: str, port: int, token: str, tables: list[str], until: float, warm_until: float,
                      lat: list[float], counts: dict[str, int]) -> None:
    r, w = await asyncio.open_connection(host, port)
    i = 0
    spots = ["red", "black", "odd", "even"]
    try:
        while time.perf_counter() < until:
            i += 1
            body = orjson.dumps({"table_id": tables[i % len(tables)], "spot": spots[i % 4], "amount": 100})
            req = (f"POST /v1/bets HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                   f"Content-Type: application/json\r\nIdempotency-Key: k{os.getpid()}-{id(w)}-{i}\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            t0 = time.perf_counter()
            w.write(req)
            head = await r.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await r.readexactly(length)
            now = time.perf_counter()
            if warm_until <= now <= until:
                lat.append(now - t0)
                counts["ok" if head.startswith(b"HTTP/1.1 201") else "refused"] += 1
    finally:
        w.close()


def run_process(mode: str, host: str, port: int, tokens: list[str], tables: list[str], window: int,
                per_frame: int, start_at: float, warmup: float, duration: float, out: Any) -> None:
    """Entry point of one load process: reports (latencies, counts) through `out` (a Queue)."""
    import uvloop

    async def main() -> tuple[list[float], dict[str, int]]:
        lat: list[float] = []
        counts = {"ok": 0, "refused": 0}
        # Clocks: perf_counter is per process, so the shared start is converted from wall time.
        delay = start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        t0 = time.perf_counter()
        warm_until, until = t0 + warmup, t0 + warmup + duration
        if mode == "ws":
            jobs = [ws_player(host, port, t, tables, window, per_frame, until, warm_until, lat, counts) for t in tokens]
        else:
            jobs = [http_player(host, port, t, tables, until, warm_until, lat, counts) for t in tokens]
        await asyncio.gather(*jobs, return_exceptions=True)
        return lat, counts

    out.put(uvloop.run(main()))
