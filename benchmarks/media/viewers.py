"""Concurrent viewers on one rung with transcoding running, late frames measured at receivers.

    python -m benchmarks.media.viewers [--viewers 1000] [--procs 4] [--seconds 20] [--rung 1]
                                       [--workers N] [--settle 3] [--profile DIR] [--no-gro]

The edge (MediaService; fan-out in the serving process, or in `--workers N` processes) serves
WHEP; the studio (720p) and the ladder transcoder run as they would. Receivers are separate
processes of real WHEP peers (aiortc: ICE, DTLS, SRTP keys), made lightweight after DTLS is up:
each nominated pair's socket leaves asyncio and all of a process's sockets are read in C (epoll +
recvmmsg on a 10 ms timer, `_rtpcount.c`; the sockets take UDP GRO, so a GSO run from the edge
crosses loopback as one buffer and is cut into its datagrams here; `--no-gro` delivers datagram by
datagram, which charges the receivers' per-datagram loopback delivery to the edge's CPU, work a
NIC would not put there), RTP counted from its clear-text header (timestamp,
marker) against the kernel's arrival time (SO_TIMESTAMPNS) without decryption or decoding;
STUN/DTLS still go to aioice/aiortc, so consent checks keep working (Python counting if gcc is
missing). A frame is *late* when its last packet arrives more than 2 frame intervals (80 ms)
after the best transit seen for that viewer; a frame never completed counts as late too.
`late_by_second` spreads the late frames over the window (a burst = a stall of the edge: GC,
scheduler). The window starts `--settle` seconds after the last join. `--profile DIR` writes
cProfile files of the serving process (joins, window) and of receiver 0 (window).
Last line: {"bench": "viewers", ...}.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import multiprocessing as mp
import os
import struct
import time
from typing import Any

import httpx

from benchmarks.media import rtpcount
from benchmarks.media.harness import machine, start_edge
from edge_agent.media import fastsend
from edge_agent.media.client import play
from edge_agent.media.compat import aioice as aioice_compat
from edge_agent.media.compat import aiortc as aiortc_compat

FRAME_TICKS = 3600  # 90 kHz / 25 fps
LATE_S = 0.080


def _proc_cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class GcPauses:
    """Collector pauses in this (the serving) process: a long one stalls every viewer at once."""

    def __init__(self) -> None:
        self.t0 = 0.0
        self.pauses: list[tuple[int, float]] = []
        gc.callbacks.append(self._cb)

    def _cb(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.t0 = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self.t0))

    def summary(self) -> dict[str, Any]:
        gc.callbacks.remove(self._cb)
        return {"edge_gc_max_ms": round(1000 * max((d for _, d in self.pauses), default=0), 1),
                "edge_gc_gen2": sum(1 for g, _ in self.pauses if g == 2)}


def _packets_sent(edge: Any) -> dict[str, int]:
    """RTP packets sent so far per session by the in-process fan-out (empty with fan-out workers)."""
    return {s.id: s.video.stream.packets for t in edge.service.tables.values() for s in list(t.sessions.values())
            if s.video is not None}


class Counter:
    """Per-viewer frame accounting from RTP headers."""

    def __init__(self) -> None:
        self.ts0: int | None = None
        self.base: float | None = None
        self.measuring = False
        self.frames = self.late = self.packets = 0
        self.first_d: int | None = None
        self.last_d = 0
        self.bytes = 0

    def on_datagram(self, data: bytes, now: float) -> None:
        if self.measuring:
            self.packets += 1
            self.bytes += len(data)
        if not data[1] & 0x80:  # marker = last packet of a frame
            return
        ts = struct.unpack_from("!I", data, 4)[0]
        if self.ts0 is None:
            self.ts0 = ts
        d = ((ts - self.ts0 + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)  # signed: tolerate a step back
        offset = now - d / 90000
        if self.base is None or offset < self.base:
            self.base = offset
        if self.measuring:
            self.first_d = d if self.first_d is None else min(self.first_d, d)
            self.last_d = d if self.frames == 0 else max(self.last_d, d)
            self.frames += 1
            if offset - self.base > LATE_S:
                self.late += 1

    def expected(self) -> int:
        return 0 if self.first_d is None else (self.last_d - self.first_d) // FRAME_TICKS + 1


def _pair(player: Any) -> Any:
    receiver = next(t.receiver for t in player.pc.getTransceivers() if t.kind == "video")
    return aioice_compat.nominated_pair(aiortc_compat.ice_connection(receiver.transport.transport))


def _lighten_c(player: Any, counters: rtpcount.CounterSet) -> int:
    """Move the nominated pair's socket to the C counter; -1 if not possible."""
    pair = _pair(player)
    if pair is None:
        return -1
    return counters.add(pair.protocol.transport, pair.protocol.datagram_received)


def _lighten(player: Any, counter: Counter) -> bool:
    """Divert RTP on the nominated pair's socket to the counter (STUN and DTLS stay with aioice)."""
    pair = _pair(player)
    if pair is None:
        return False
    proto = pair.protocol
    original = proto.datagram_received
    clock = time.monotonic

    def datagram_received(data: bytes, addr: Any) -> None:
        if 127 < data[0] < 192 and not (191 < data[1] < 224):
            counter.on_datagram(data, clock())
        elif 127 < data[0] < 192:
            return  # RTCP from the edge: not needed
        else:
            original(data, addr)

    proto.datagram_received = datagram_received
    return True


async def _receiver(base: str, n: int, conc: int, ready: Any, go: Any, seconds: float, out: Any,
                    profile: str | None, gro: bool) -> None:
    sem = asyncio.Semaphore(conc)
    players: list[Any] = []
    counters: list[Counter] = []
    lib = rtpcount.load()
    cset = rtpcount.CounterSet(lib, n, LATE_S, gro) if lib is not None else None
    cids: list[int] = []
    failures = 0
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=conc)) as http:
        async def one() -> None:
            nonlocal failures
            async with sem:
                try:
                    p = await play(http, f"{base}/whep/t1", audio=False)
                    for _ in range(400):
                        if p.pc.connectionState == "connected":
                            break
                        await asyncio.sleep(0.05)
                    if cset is not None:
                        idx = _lighten_c(p, cset)
                        if idx < 0:
                            failures += 1
                            return
                        cids.append(idx)
                    else:
                        c = Counter()
                        if not _lighten(p, c):
                            failures += 1
                            return
                        counters.append(c)
                    players.append(p)
                except Exception:  # noqa: BLE001 - counted, reported
                    failures += 1

        await asyncio.gather(*(one() for _ in range(n)))
        ready.put((len(players), failures))
        while not go.is_set():
            await asyncio.sleep(0.05)
        for c in counters:
            c.measuring = True
        if cset is not None:
            cset.measure(True)
        prof = cProfile.Profile() if profile else None
        cpu0 = time.process_time()
        if prof is not None:
            prof.enable()
        await asyncio.sleep(seconds)
        if prof is not None:
            prof.disable()
            prof.dump_stats(profile)
        cpu = time.process_time() - cpu0
        for c in counters:
            c.measuring = False
        if cset is not None:
            cset.measure(False)
            # (frames, late, packets, bytes, expected) per viewer
            rows = [cset.stats(i) for i in cids]
        else:
            rows = [(c.frames, c.late, c.packets, c.bytes, c.expected()) for c in counters]
        res = {"viewers": len(rows), "failures": failures,
               "frames": sum(r[0] for r in rows), "late": sum(r[1] for r in rows),
               "expected": sum(r[4] for r in rows), "bytes": sum(r[3] for r in rows),
               "packets": sum(r[2] for r in rows), "cpu_s": cpu,
               "connected_at_end": sum(1 for p in players if p.pc.connectionState == "connected"),
               "late_by_s": cset.late_by_second(int(seconds) + 2) if cset else [],
               "c_counter": cset is not None, "nonrtp_dropped": cset.nonrtp_dropped() if cset else 0}
        out.put(res)
        if cset is not None:
            cset.close()
        await asyncio.gather(*(p.pc.close() for p in players), return_exceptions=True)


def receiver_main(base: str, n: int, conc: int, ready: Any, go: Any, seconds: float, out: Any,
                  profile: str | None = None, gro: bool = True) -> None:
    asyncio.run(_receiver(base, n, conc, ready, go, seconds, out, profile, gro))


async def run(viewers: int, procs: int, seconds: float, rung: int, conc: int, workers: int,
              profile: str | None = None, settle: float = 3.0, gro: bool = True) -> dict[str, Any]:
    edge = await start_edge(start_rung=rung, abr=False, audio=False, capacity=viewers + 10, workers=workers)
    rtpcount.build()  # compile once here, not in every receiver at once
    ctx = mp.get_context("spawn")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    per = [viewers // procs + (1 if i < viewers % procs else 0) for i in range(procs)]
    if profile:
        os.makedirs(profile, exist_ok=True)
    ps = [ctx.Process(target=receiver_main, daemon=True, args=(
        edge.base, k, conc, ready, go, seconds, out, os.path.join(profile, "receiver0.prof") if profile and i == 0 else None, gro))
        for i, k in enumerate(x for x in per if x)]
    prof = cProfile.Profile() if profile else None
    t_connect = time.monotonic()
    for p in ps:
        p.start()
    try:
        loop = asyncio.get_running_loop()
        if prof is not None:
            prof.enable()
        got = [await loop.run_in_executor(None, ready.get, True, 600) for _ in ps]
        connect_s = time.monotonic() - t_connect
        if prof is not None and profile:
            prof.disable()
            prof.dump_stats(os.path.join(profile, "edge_join.prof"))
            prof = cProfile.Profile()
        connected = edge.service.viewer_count()
        await asyncio.sleep(settle)  # settle (GOP bursts of the last joiners, the join storm's GC)
        tc = edge.service.tables["t1"]._transcoder
        pids = {"transcoder": tc._proc.pid if tc and tc._proc else 0, "studio": edge.studio.pid if edge.studio else 0}
        for w in edge.service.workers:
            pids[f"worker{w.index}"] = w._proc.pid
        cpu0 = {k: _proc_cpu_s(v) for k, v in pids.items()}
        sent0 = _packets_sent(edge)
        self0, wall0 = time.process_time(), time.monotonic()
        if prof is not None:
            prof.enable()
        pauses = GcPauses()
        go.set()
        results = [await loop.run_in_executor(None, out.get, True, seconds + 120) for _ in ps]
        wall = time.monotonic() - wall0
        gc_info = pauses.summary()
        if prof is not None and profile:
            prof.disable()
            prof.dump_stats(os.path.join(profile, "edge.prof"))
        edge_cpu = (time.process_time() - self0) / wall  # serving process (and fan-out when workers=0)
        sent1 = _packets_sent(edge)
        sent = sum(n - sent0.get(k, 0) for k, n in sent1.items())  # sessions gone meanwhile: not counted
        cpu = {k: round((_proc_cpu_s(v) - cpu0[k]) / wall, 2) for k, v in pids.items()}
    finally:
        for p in ps:
            p.join(30)
            if p.is_alive():
                p.terminate()
        await edge.stop()
    frames = sum(r["frames"] for r in results)
    expected = sum(r["expected"] for r in results)
    late = sum(r["late"] for r in results) + max(0, expected - frames)
    n = sum(r["viewers"] for r in results)
    return {
        "bench": "viewers", "viewers": n, "requested": viewers, "failed_joins": sum(g[1] for g in got),
        "edge_sessions": connected, "rung": rung,
        "late_pct": round(100 * late / expected, 3) if expected else None,
        "frames_expected": expected, "frames_received": frames,
        "mbps_per_viewer": round(sum(r["bytes"] for r in results) * 8 / seconds / max(n, 1) / 1e6, 3),
        "serving_process_cpu_cores": round(edge_cpu, 2),
        "worker_cpu_cores": [cpu[k] for k in sorted(cpu) if k.startswith("worker")], "transcoder_cpu_cores": cpu["transcoder"],
        "studio_cpu_cores": cpu["studio"],
        "receivers_cpu_cores": round(sum(r["cpu_s"] for r in results) / seconds, 2),
        "receivers_connected_at_end": sum(r["connected_at_end"] for r in results),
        "us_cpu_per_packet_per_viewer": round(
            (edge_cpu + sum(v for k, v in cpu.items() if k.startswith("worker"))) * wall * 1e6
            / max(1, sum(r["packets"] for r in results)), 1),
        # Same CPU over the packets the fan-out sent (in-process fan-out only): unlike the figure
        # above it does not grow when receivers fall behind or drop out.
        "us_cpu_per_packet_sent": round(edge_cpu * wall * 1e6 / sent, 1) if sent else None,
        "fastsend": fastsend.AVAILABLE,
        "receiver_counter": "c" if all(r["c_counter"] for r in results) else "python",
        # Late frames per second of the window, all receivers: bursts = stalls (GC, scheduler).
        "late_by_second": [sum(col) for col in zip(*(r["late_by_s"] for r in results))],
        "receiver_nonrtp_dropped": sum(r["nonrtp_dropped"] for r in results),
        "workers": workers, **gc_info,
        "receiver_gro": gro, "connect_s": round(connect_s, 1), "settle_s": settle, "seconds": seconds, **machine(),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--viewers", type=int, default=1000)
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--rung", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--workers", type=int, default=0, help="fan-out worker processes (0 = in the serving process)")
    p.add_argument("--settle", type=float, default=3.0, help="seconds between the last join and the window")
    p.add_argument("--gro", action=argparse.BooleanOptionalAction, default=True,
                   help="receivers take UDP GRO (default: a GSO run crosses loopback as one buffer, cut apart and "
                        "every datagram counted at its kernel arrival time); --no-gro: datagram by datagram")
    p.add_argument("--profile", default=None, help="cProfile the window: DIR/edge.prof, DIR/receiver0.prof")
    a = p.parse_args()
    print(json.dumps(asyncio.run(run(a.viewers, a.procs, a.seconds, a.rung, a.concurrency, a.workers, a.profile, a.settle,
                                     a.gro))))


if __name__ == "__main__":
    main()
