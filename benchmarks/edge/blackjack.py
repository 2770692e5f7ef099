"""Benchmark: one blackjack table, N players over real WebSockets, every player deciding in every step.

    python -m benchmarks.edge.blackjack --players 5000 [--procs 4] [--rounds 2] [--window 6] [--spread 1.5]
                                        [--load-nice 0]

A real edge process on loopback; players in `--procs` load processes (raw-socket WebSockets, see
loadgen.py). Each player bets, then in every step where its hand is open decides by basic strategy
after a random think time of up to `--spread` s. Measured:
- decision ack: from sending a decision to its `act.accepted` (durable on the edge);
- step card: from the step's window closing (the edge's `closed_ts`, same machine clock) to the
  card reaching the player, over every player and step (the max is "to every player");
- settlement: from the players' phase ending to the player's own settlement message.
Each is taken twice: when the message reached the player's socket (`*_arr_*`: the kernel's receive
time of the read, SO_TIMESTAMPNS) and when the load process got round to reading it (the plain
names). The 5,000 players share the edge's two cores through four load processes, each reading
1,250 sockets in turn; the first figure is the edge's delivery, the second adds that queueing.
- the journal's group commits while the rounds were played (`journal_commits`, and how many took
  longer than 50 / 100 / 500 ms, fsync included: `journal_commits_over_*`): every acknowledgement
  waits for its commit, so a stall of the disk shows in the ack tail; read from the edge's /metrics.
- the edge's CPU while the rounds are played (`edge_cpu_s`, every thread; `edge_loop_cpu_s`, the
  event loop's thread alone): what the rounds cost, steadier from run to run than the tails.

Prints the CONTRACT benchmark JSON line last: {"bench": "blackjack", ...}.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import os
import platform
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import yaml

from benchmarks.edge.loadgen import ws_frame
from contract import blackjack as BJ
from contract import sync as S
from contract import tokens
from edge_agent.blackjack_strategy import decide

TABLE = "blackjack-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(tmp: Path, port: int, pub: str, players: int, window: float) -> dict[str, Any]:
    return {"edge_id": "bench-bj", "jurisdiction": "MT", "db_path": str(tmp / "journal.db"),
            "residency_key_hex": "00" * 32, "token_public_key_pem": pub,
            "http": {"host": "127.0.0.1", "port": port},
            "tables": [{"table_id": TABLE, "game": "blackjack", "betting_window_s": 4 + players / 1500,
                        "reveal_s": 0.5, "options": {"decision_window_s": window},
                        "limits": {"min_bet": 100, "max_bet_per_spot": 10**9, "max_per_round": 10**9}}]}


async def _prefund(cfg: dict[str, Any], players: list[str]) -> None:
    from edge_agent.casino import Casino
    from edge_agent.config import EdgeConfig

    c = Casino(EdgeConfig(**cfg))
    await c.start(run_tables=False)
    for i, p in enumerate(players):
        psn = c.ensure_player(p)
        await c.apply_command(S.DepositCredit(id=f"f{i}", ts=0, deposit_id=f"f{i}", player=psn,
                                              amount=10**9, currency="EUR"))
    await c.stop()
    c.close()


# SO_TIMESTAMPNS (Linux, asm-generic): each read carries the kernel's receive time of its latest
# segment (CLOCK_REALTIME), i.e. when the bytes reached the player's socket, whatever the load
# process was busy with then.
SO_TIMESTAMPNS = 35
_TS = struct.Struct("qq")


class Conn:
    """One player's WebSocket on a bare non-blocking socket read by the loop (add_reader):
    frames parsed straight from the bytes received, so that 1,250 players cost one load process
    little; every read also gives the kernel's receive time (SO_TIMESTAMPNS), so that delivery is
    timed at the player's socket, not when this process got round to it. Answers the server's
    pings (a round of 5,000 players outlasts uvicorn's 20 s ping interval)."""

    def __init__(self, player: Player, path: str, host: str) -> None:
        self.player, self.path, self.host = player, path, host
        self.buf = bytearray()
        self.open = False
        self.loop = asyncio.get_running_loop()
        self.connected = self.loop.create_future()
        self.closed = self.loop.create_future()
        self.sock: socket.socket | None = None
        self.out = bytearray()  # what the kernel did not take yet (rare: frames are small)

    async def start(self, host: str, port: int) -> None:
        sock = self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        await self.loop.sock_connect(sock, (host, port))
        self.loop.add_reader(sock.fileno(), self._readable)
        key = base64.b64encode(os.urandom(16)).decode()
        self.write(f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                   .encode())

    def write(self, data: bytes) -> None:
        sock = self.sock
        if sock is None or self.closed.done():
            return
        if self.out:
            self.out += data
            return
        try:
            k = sock.send(data)
        except BlockingIOError:
            k = 0
        except OSError as err:
            self._close(err)
            return
        if k < len(data):
            self.out += data[k:]
            self.loop.add_writer(sock.fileno(), self._writable)

    def _writable(self) -> None:
        sock = self.sock
        assert sock is not None
        try:
            k = sock.send(self.out)
        except BlockingIOError:
            return
        except OSError as err:
            self._close(err)
            return
        del self.out[:k]
        if not self.out:
            self.loop.remove_writer(sock.fileno())

    def _readable(self) -> None:
        sock = self.sock
        assert sock is not None
        try:
            data, anc, _, _ = sock.recvmsg(1 << 16, 64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as err:
            self._close(err)
            return
        if not data:
            self._close(ConnectionError("connection lost"))
            return
        ts = time.time()
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(cdata) >= 16:
                sec, nsec = _TS.unpack_from(cdata)
                ts = sec + nsec / 1e9
        self.data_received(data, ts)

    def data_received(self, data: bytes, ts: float) -> None:
        buf = self.buf
        buf += data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in bytes(buf[:end]).split(b"\r\n", 1)[0]:
                self._close(ConnectionError(bytes(buf[:end]).decode(errors="replace")))
                return
            del buf[:end + 4]
            self.open = True
            self.player.conn = self
            self.connected.set_result(None)
        pos = 0
        while len(buf) - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n, head = b1 & 0x7F, 2
            if n == 126:
                if len(buf) - pos < 4:
                    break
                n, head = struct.unpack_from("!H", buf, pos + 2)[0], 4
            elif n == 127:
                if len(buf) - pos < 10:
                    break
                n, head = struct.unpack_from("!Q", buf, pos + 2)[0], 10
            if len(buf) - pos < head + n:
                break
            payload = bytes(buf[pos + head:pos + head + n])
            pos += head + n
            op = b0 & 0x0F
            if op == 0x1:
                if not self.player.on(orjson.loads(payload), ts):
                    self._close(None)
                    return
            elif op == 0x9:
                self.write(struct.pack("!BB", 0x8A, 0x80 | n) + b"\x00\x00\x00\x00" + payload)
            elif op == 0x8:
                self._close(ConnectionError("closed by the edge"))
                return
        del buf[:pos]

    def _close(self, err: BaseException | None) -> None:
        if not self.connected.done():
            self.connected.set_exception(err or ConnectionError("closed"))
        if not self.closed.done():
            self.closed.set_exception(err) if err else self.closed.set_result(None)
        self.shutdown()

    def shutdown(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            self.loop.remove_reader(sock.fileno())
            if self.out:
                self.loop.remove_writer(sock.fileno())
            sock.close()


class Player:
    """One simulated player: bets, mirrors its own hand from the shared cards, decides every step."""

    def __init__(self, token: str, rng: random.Random, spread: float, out: dict[str, list[float]],
                 counts: dict[str, int]) -> None:
        self.token, self.rng, self.spread, self.out, self.counts = token, rng, spread, out, counts
        self.play: BJ.Play | None = None
        self.bet_id: str | None = None
        self.n: int | None = None
        self.sent: dict[str, tuple[float, float]] = {}
        self.dealer_ts = 0
        self.rounds_left = 0
        self.start_at = 1e18  # set once every player of every process is connected
        self.conn: Conn | None = None  # once the WebSocket is open

    def send(self, obj: dict[str, Any]) -> None:
        assert self.conn is not None
        self.conn.write(ws_frame(orjson.dumps(obj)))

    def _decide_later(self, step: int) -> None:
        asyncio.get_running_loop().call_later(self.rng.random() * self.spread, self._decide, step)

    def _decide(self, step: int) -> None:
        p = self.play
        if p is None or self.bet_id is None or p.step != step:
            return
        allowed = p.allowed(self.bet_id)
        if not allowed:
            return
        h = p.bets[self.bet_id].current()
        assert h is not None
        action = decide(self.rng, h.cards, p.dealer_up, allowed, noise=0.2)
        req = f"{self.bet_id}:{step}"
        self.sent[req] = (time.perf_counter(), time.time())
        self.send({"type": "act", "req": req, "table_id": TABLE, "step": step, "action": action})
        self.counts[action] += 1

    # The mirror and the next decision run after the load process has read what arrived on its
    # other sockets: one process plays 1,250 players, and their thinking in turn (each a device of
    # its own in life) must not count as the edge's delivery time. Order per player is kept (FIFO).
    def _later(self, fn: Any, m: dict[str, Any]) -> None:
        asyncio.get_running_loop().call_soon(fn, m)

    def _dealt(self, m: dict[str, Any]) -> None:
        if m.get("n") != self.n or not self.bet_id:
            return
        shoe = [m["hand"][0], m["dealer_up"], m["hand"][1]] + [""] * (BJ.fairness.SHOE_SIZE - 3)
        self.play = BJ.Play.deal(shoe, [(self.bet_id, 100)])
        if m.get("next_step"):
            self._decide_later(m["next_step"])

    def _card(self, m: dict[str, Any]) -> None:
        p = self.play
        if p is not None and m.get("n") == self.n and not p.players_done:
            p.shoe[p.next] = m["card"]
            p.run_step()
            if m.get("next_step"):
                self._decide_later(m["next_step"])

    def _accepted(self, m: dict[str, Any]) -> None:
        if self.play is not None:
            try:
                self.play.decide(m["bet_id"], m["action"])
            except BJ.Refused:
                self.counts["mirror_lost"] += 1  # the card came first: the edge must not do that

    def on(self, m: dict[str, Any], ts: float) -> bool:
        """Handle one message; False when this player is done."""
        t = m.get("type")
        now_ms = time.time() * 1000
        if t == "round.opened" and m.get("table_id") == TABLE and self.rounds_left > 0 and time.time() >= self.start_at:
            self.rounds_left -= 1
            self.n, self.play, self.bet_id = m["n"], None, None
            self.send({"type": "bet", "req": f"b{m['n']}", "table_id": TABLE, "spot": BJ.SPOT, "amount": 100})
        elif t == "bet.accepted":
            self.bet_id = m["bet_id"]
        elif t == "bet.refused":
            self.counts["bet_refused"] += 1
        elif t == "blackjack.dealt" and m.get("n") == self.n and self.bet_id:
            self._later(self._dealt, m)
        elif t == "blackjack.card" and m.get("n") == self.n:
            self.out["card_ms"].append(now_ms - m["closed_ts"])
            self.out["card_arr_ms"].append(ts * 1000 - m["closed_ts"])
            self._later(self._card, m)
        elif t == "blackjack.dealer" and m.get("n") == self.n:
            self.dealer_ts = m["closed_ts"]
        elif t in ("act.accepted", "act.refused"):
            t0 = self.sent.pop(m.get("req"), None)
            if t0 is not None:
                self.out["ack_ms"].append((time.perf_counter() - t0[0]) * 1000)
                self.out["ack_arr_ms"].append((ts - t0[1]) * 1000)
            if t == "act.accepted":
                self._later(self._accepted, m)
            elif t == "act.refused":
                self.counts["act_refused"] += 1
        elif t == "settlement" and m.get("table_id") == TABLE and m.get("n") == self.n:
            if self.dealer_ts:
                self.out["settle_ms"].append(now_ms - self.dealer_ts)
                self.out["settle_arr_ms"].append(ts * 1000 - self.dealer_ts)
            self.counts["settled"] += 1
            self.play = None
            return self.rounds_left > 0
        elif t == "round.voided" and m.get("n") == self.n:
            self.counts["voided"] += 1
            return self.rounds_left > 0
        return True

    async def run(self, host: str, port: int, rounds: int, connected: asyncio.Event, deadline: float) -> None:
        self.rounds_left = rounds
        conn = Conn(self, f"/v1/ws?token={self.token}", f"{host}:{port}")
        await conn.start(host, port)
        await conn.connected
        connected.set()
        try:
            await asyncio.wait_for(conn.closed, max(1.0, deadline - time.time()))
        finally:
            conn.shutdown()


def _series() -> dict[str, list[float]]:
    """Each latency, read by the load process and at the player's socket (`_arr_`), in ms."""
    return {k + w: [] for k in ("ack", "card", "settle") for w in ("_ms", "_arr_ms")}


def run_process(host: str, port: int, toks: list[str], rounds: int, spread: float, ready: Any, go: Any,
                out: Any, seed: int, nice: int = 0) -> None:
    """One load process: connect every player, report ready, start at the shared wall time `go`."""
    import uvloop

    if nice:
        os.nice(nice)

    async def main() -> tuple[dict[str, list[float]], dict[str, int]]:
        res: dict[str, list[float]] = _series()
        counts = {a: 0 for a in BJ.ACTIONS} | {"act_refused": 0, "bet_refused": 0, "settled": 0, "voided": 0,
                                                "mirror_lost": 0}
        rng = random.Random(seed)
        players = [Player(t, random.Random(rng.random()), spread, res, counts) for t in toks]
        events = [asyncio.Event() for _ in players]
        tasks = []
        for k, (p, ev) in enumerate(zip(players, events)):
            tasks.append(asyncio.ensure_future(p.run(host, port, rounds, ev, time.time() + 900)))
            if k % 50 == 49:
                await asyncio.sleep(0.02)  # a connect storm is not what is measured
        await asyncio.gather(*(e.wait() for e in events))
        ready.put(len(players))
        start_at = await asyncio.get_running_loop().run_in_executor(None, go.get)
        for p in players:
            p.start_at = start_at
        for r in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(r, BaseException):
                k = f"error:{type(r).__name__}:{str(r)[:60]}"
                counts[k] = counts.get(k, 0) + 1
        return res, counts

    out.put(uvloop.run(main()))


def _cpu_s(pid: int, tid: int | None = None) -> float:
    """utime + stime of a process (or one of its threads), seconds."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid is not None else f"/proc/{pid}/stat"
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _commits(port: int) -> dict[str, float]:
    """casino_journal_commit_seconds from the edge's /metrics: bucket upper bound -> count."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {s.labels["le"]: s.value for fam in text_string_to_metric_families(text)
            if fam.name == "casino_journal_commit_seconds"
            for s in fam.samples if s.name.endswith("_bucket")}


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p * len(xs)))], 2) if xs else float("nan")


def run(players: int, procs: int, rounds: int, window: float, spread: float, load_nice: int = 0) -> dict[str, Any]:
    key = tokens.new_signing_key()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        port = _free_port()
        cfg = _config(tmp, port, tokens.public_pem(key), players, window)
        names = [f"bj-{i}" for i in range(players)]
        asyncio.run(_prefund(cfg, names))
        (tmp / "edge.yaml").write_text(yaml.safe_dump(cfg))
        with open(tmp / "edge.log", "wb") as log:
            edge = subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "serve", "--config",
                                     str(tmp / "edge.yaml")], stdout=subprocess.DEVNULL, stderr=log)
        try:
            for _ in range(400):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            toks = [tokens.issue(key, p, "player", "MT") for p in names]
            ready: mp.Queue = mp.Queue()
            go: mp.Queue = mp.Queue()
            out: mp.Queue = mp.Queue()
            per = -(-players // procs)
            ps = [mp.Process(target=run_process, args=("127.0.0.1", port, toks[i * per:(i + 1) * per], rounds,
                                                       spread, ready, go, out, i, load_nice))
                  for i in range(procs) if toks[i * per:(i + 1) * per]]
            for p in ps:
                p.start()
            connected = sum(ready.get(timeout=600) for _ in ps)
            start_at = time.time() + 0.5
            cpu0, loop0 = _cpu_s(edge.pid), _cpu_s(edge.pid, edge.pid)
            commits0 = _commits(port)
            for _ in ps:
                go.put(start_at)
            res: dict[str, list[float]] = _series()
            counts: dict[str, int] = {}
            for _ in ps:
                r, c = out.get(timeout=900)
                for k in res:
                    res[k] += r[k]
                for k, v in c.items():
                    counts[k] = counts.get(k, 0) + v
            cpu1, loop1 = _cpu_s(edge.pid), _cpu_s(edge.pid, edge.pid)
            commits1 = _commits(port)
            for p in ps:
                p.join()
        finally:
            edge.send_signal(signal.SIGTERM)
            try:
                edge.wait(120)
            except subprocess.TimeoutExpired:
                edge.kill()
    return {"players": players, "connected": connected, "rounds": rounds, "decision_window_s": window,
            "load_nice": load_nice,
            "decisions": sum(counts.get(a, 0) for a in BJ.ACTIONS), "by_action": {a: counts.get(a, 0) for a in BJ.ACTIONS},
            "refused": counts.get("act_refused", 0), "bets_refused": counts.get("bet_refused", 0),
            "settled": counts.get("settled", 0), "voided": counts.get("voided", 0),
            "mirror_lost": counts.get("mirror_lost", 0),
            "errors": {k: v for k, v in counts.items() if k.startswith("error:")},
            "ack_p50_ms": _pct(res["ack_ms"], 0.5), "ack_p99_ms": _pct(res["ack_ms"], 0.99),
            "card_p50_ms": _pct(res["card_ms"], 0.5), "card_p99_ms": _pct(res["card_ms"], 0.99),
            "card_max_ms": _pct(res["card_ms"], 1.0),
            "settle_p50_ms": _pct(res["settle_ms"], 0.5), "settle_p99_ms": _pct(res["settle_ms"], 0.99),
            "settle_max_ms": _pct(res["settle_ms"], 1.0),
            "journal_commits": int(commits1["+Inf"] - commits0["+Inf"]),
            **{f"journal_commits_over_{ms}ms": int((commits1["+Inf"] - commits1[le]) - (commits0["+Inf"] - commits0[le]))
               for ms, le in ((50, "0.05"), (100, "0.1"), (500, "0.5"))},
            "ack_arr_p50_ms": _pct(res["ack_arr_ms"], 0.5), "ack_arr_p99_ms": _pct(res["ack_arr_ms"], 0.99),
            "card_arr_p50_ms": _pct(res["card_arr_ms"], 0.5), "card_arr_p99_ms": _pct(res["card_arr_ms"], 0.99),
            "card_arr_max_ms": _pct(res["card_arr_ms"], 1.0),
            "settle_arr_p99_ms": _pct(res["settle_arr_ms"], 0.99), "settle_arr_max_ms": _pct(res["settle_arr_ms"], 1.0),
            # The edge's CPU while the rounds were played (every thread; its event loop alone).
            "edge_cpu_s": round(cpu1 - cpu0, 2), "edge_loop_cpu_s": round(loop1 - loop0, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--players", type=int, default=500)
    ap.add_argument("--procs", type=int, default=0, help="load processes (default: one per 1,250 players, 1..4)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--window", type=float, default=6.0, help="decision window per step, seconds")
    ap.add_argument("--spread", type=float, default=1.5, help="players' think time, uniform 0..spread s")
    ap.add_argument("--load-nice", type=int, default=0,
                    help="the load processes' nice value (0: the edge's; they stand for devices elsewhere)")
    a = ap.parse_args()
    procs = a.procs or max(1, min(4, -(-a.players // 1250)))
    res = run(a.players, procs, a.rounds, a.window, a.spread, a.load_nice)
    print(json.dumps(res), flush=True)
    print(json.dumps({"bench": "blackjack", "machine": f"{os.cpu_count()} vCPU {platform.machine()}",
                      "date": time.strftime("%Y-%m-%d"), "load": os.getloadavg()[0], **res}))


if __name__ == "__main__":
    main()
