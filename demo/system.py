"""The demo's parts in start order, and the calls that make it playable.

NATS (JetStream, per-edge credentials), the control plane (SQLite), two edges in two
jurisdictions (Malta, Ontario) each with a Litestream child serving its own metrics and a
studio feed over SRT; then a player per jurisdiction funded through the real deposit path.
"""
from __future__ import annotations

import json
import secrets
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from contract import tokens
from demo.children import Part, pause
from demo.ports import claim

JURISDICTIONS = [
    {"edge_id": "mt-1", "jurisdiction": "MT", "currency": "EUR", "name": "Malta"},
    {"edge_id": "on-1", "jurisdiction": "ON", "currency": "CAD", "name": "Ontario"},
]


class Console:
    """Progress lines to the terminal and to the demo's own log. A terminal that goes away
    (`make demo | tee demo.log`, then Ctrl-C kills tee) must not stop the clean shutdown:
    after a broken pipe the lines go to the log only."""

    def __init__(self) -> None:
        self.log: Path | None = None
        self.terminal = True

    def __call__(self, msg: str = "", prefix: str = "[demo] ") -> None:
        line = f"{prefix}{msg}" if msg else ""
        if self.log is not None:
            with open(self.log, "a") as f:
                f.write(line + "\n")
        if self.terminal:
            try:
                print(line, flush=True)
            except (BrokenPipeError, OSError):
                self.terminal = False
                try:  # let the interpreter's exit flush find nothing to write
                    sys.stdout = open("/dev/null", "w")  # noqa: SIM115 - lives until exit
                except OSError:
                    pass


say = Console()


def bin_path(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


class Demo:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.parts: list[Part] = []
        self.urls: dict[str, str] = {}

    def _part(self, part: Part) -> Part:
        self.parts.append(part)
        return part

    def setup(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        say.log = self.root / "demo.log"
        self.token_key = tokens.new_signing_key()
        (self.root / "token-signing.pem").write_text(tokens.private_pem(self.token_key))
        (self.root / "token-public.pem").write_text(tokens.public_pem(self.token_key))
        # One residency key for all edges (never given to the cloud): one pseudonym per player.
        (self.root / "residency.key").write_text(secrets.token_hex(32))
        self.ports = {"nats": claim(14222, "NATS", say), "cp": claim(8000, "control plane", say)}
        for i, j in enumerate(JURISDICTIONS):
            self.ports[j["edge_id"]] = claim(8101 + i, f"edge {j['edge_id']}", say)
            self.ports[f"litestream-{j['edge_id']}"] = claim(9191 + i, f"Litestream metrics of {j['edge_id']}", say)
            self.ports[f"dealer-{j['edge_id']}"] = claim(9201 + i, f"dealer link of {j['edge_id']}", say, udp=True)
        self.passwords = {j["edge_id"]: secrets.token_hex(12) for j in JURISDICTIONS}
        self.passwords["cloud"] = secrets.token_hex(12)

    # --- the parts, in start order ----------------------------------------------------------

    def nats(self) -> Part:
        from edge_agent.sync import nats_auth

        conf = self.root / "nats.conf"
        edges = [(j["edge_id"], self.passwords[j["edge_id"]]) for j in JURISDICTIONS]
        conf.write_text(nats_auth.server_config(edges, self.passwords["cloud"], store_dir=str(self.root / "nats"),
                                                sync_interval="always"))
        part = Part("nats-server", [bin_path("nats-server"), "-c", str(conf), "-a", "127.0.0.1",
                                    "-p", str(self.ports["nats"])], self.root / "nats.log")
        part.ready = lambda: _tcp_open(self.ports["nats"])
        return self._part(part)

    def control_plane(self) -> Part:
        cp_dir = self.root / "control-plane"
        cp_dir.mkdir()
        self.bootstrap = secrets.token_hex(16)
        cfg = {
            "database_url": f"sqlite:///{cp_dir / 'control-plane.db'}",
            "data_dir": str(cp_dir),
            "token_signing_key_path": str(self.root / "token-signing.pem"),
            "bootstrap_secret": self.bootstrap,
            "http": {"host": "127.0.0.1", "port": self.ports["cp"], "public_url": self.cp_url},
            "nats": {"url": self.nats_url, "user": "cloud", "password": self.passwords["cloud"]},
            "heartbeat_timeout_s": 10,
            "kyc": {"vendor": "simulated", "vendor_delay_s": 2.0},
            "rails": {"crypto": {"confirmations": 2, "block_interval_s": 1.0}},
        }
        (cp_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
        return self._part(Part("control plane", [bin_path("control-plane"), "serve", "--config", str(cp_dir / "config.yaml")],
                               self.root / "control-plane.log", health=f"{self.cp_url}/healthz"))

    def edge(self, j: dict[str, str]) -> Part:
        edge_id = j["edge_id"]
        d = self.root / edge_id
        d.mkdir()
        key = tokens.new_signing_key()  # the edge's own checkpoint signing key
        (d / "checkpoint.pem").write_text(tokens.private_pem(key))
        (d / "checkpoint.pub.pem").write_text(tokens.public_pem(key))
        port = self.ports[edge_id]
        srt_port = self.ports[f"srt-{edge_id}"]
        cfg = {
            "edge_id": edge_id, "jurisdiction": j["jurisdiction"], "currency": j["currency"],
            "db_path": str(d / "journal.db"),
            "http": {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
            "token_public_key_file": str(self.root / "token-public.pem"),
            "residency_key_file": str(self.root / "residency.key"),
            "checkpoint_key_file": str(d / "checkpoint.pem"),
            "checkpoint_interval_s": 10,
            "replica": str(d / "replica"),
            "replica_metrics_addr": f"127.0.0.1:{self.ports['litestream-' + edge_id]}",
            "tables": [
                {"table_id": "roulette-1", "game": "roulette", "betting_window_s": 15, "reveal_s": 4,
                 "requires_feed": True},
                {"table_id": "baccarat-1", "game": "baccarat", "betting_window_s": 12, "reveal_s": 4},
                # Any number of players at one table: a shared deal, each player's own decisions.
                {"table_id": "blackjack-1", "game": "blackjack", "betting_window_s": 12, "reveal_s": 4,
                 "options": {"decision_window_s": 6}},
            ],
            "nats": {"url": self.nats_url, "user": f"edge-{edge_id}", "password": self.passwords[edge_id],
                     "heartbeat_s": 2.0},
            # Strict residency: what leaves is pseudonymous; payment method details stay in-country.
            "residency": {"allow_kinds": ["*"], "redact_fields": {"deposit.*": ["method"]}},
            "media": {
                # The studio link is encrypted and caller-checked, as in production.
                "tables": [{"table_id": "roulette-1", "srt_port": srt_port, "srt_latency_ms": 40,
                            "srt_passphrase_file": str(self._srt_key(d)), "srt_streamid": "studio-roulette-1",
                            "srt_bind": "127.0.0.1"}],
                # A lighter ladder than production's 720p top rung: two edges and two studios
                # share this machine's cores.
                "ladder": [{"name": "360p", "width": 640, "height": 360, "bitrate_kbps": 800},
                           {"name": "240p", "width": 426, "height": 240, "bitrate_kbps": 400},
                           {"name": "180p", "width": 320, "height": 180, "bitrate_kbps": 250}],
                "start_rung": 0,
                "announce_addresses": ["127.0.0.1"],
            },
            # Every roulette-1 round on video (the 180p rung, kept 30 days), its reveal checked by the camera.
            "video": {"dir": str(d / "video"), "rung": "180p", "retention_days": 30, "budget_bytes": 2 * 10**9,
                      "vision": {"rung": "360p",
                                 "dealers": {"roulette-1": f"udp://127.0.0.1:{self.ports['dealer-' + edge_id]}"}}},
        }
        (d / "edge.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        return self._part(Part(f"edge {edge_id} ({j['name']})",
                               [bin_path("edge-agent"), "serve", "--config", str(d / "edge.yaml")],
                               self.root / f"edge-{edge_id}.log", health=f"http://127.0.0.1:{port}/healthz"))

    @staticmethod
    def _srt_key(edge_dir: Path) -> Path:
        """The edge's studio-link passphrase (mode 0600), shared with its studio simulator."""
        key = edge_dir / "srt-roulette-1.key"
        if not key.exists():
            key.touch(mode=0o600)
            key.write_text(secrets.token_urlsafe(24) + "\n")
        return key

    def studio(self, j: dict[str, str]) -> Part:
        srt = f"srt://127.0.0.1:{self.ports['srt-' + j['edge_id']]}"
        part = Part(f"studio {j['name']} roulette-1", [sys.executable, "-m", "edge_agent.studio", "roulette-1", srt,
                                                        "--width", "640", "--height", "360", "--latency", "40",
                                                        "--passphrase-file", str(self._srt_key(self.root / j["edge_id"])),
                                                        "--streamid", "studio-roulette-1", "--game", "roulette",
                                                        "--dealer-port", str(self.ports["dealer-" + j["edge_id"]])],
                    self.root / f"studio-{j['edge_id']}.log")
        return self._part(part)

    # --- control-plane calls ------------------------------------------------------------------

    def token(self, sub: str, role: str, jurisdiction: str, by: str | None = None, ttl_s: int = 12 * 3600) -> str:
        """Minted as a real deployment does: the bootstrap secret makes the admin (and closes),
        the admin the operator, regulators and account systems; an account system its players."""
        body = {"sub": sub, "role": role, "jurisdiction": jurisdiction, "ttl_s": ttl_s}
        headers = {"Authorization": f"Bearer {by}"} if by else {"X-Bootstrap-Secret": self.bootstrap}
        return _http("POST", f"{self.cp_url}/v1/tokens", body, headers=headers)["token"]

    def register(self, j: dict[str, str]) -> None:
        d = self.root / j["edge_id"]
        _http("POST", f"{self.cp_url}/v1/edges",
              {"id": j["edge_id"], "jurisdiction": j["jurisdiction"],
               "public_url": f"http://127.0.0.1:{self.ports[j['edge_id']]}",
               "checkpoint_public_key_pem": (d / "checkpoint.pub.pem").read_text()},
              headers={"Authorization": f"Bearer {self.operator}"})

    # --- the run ------------------------------------------------------------------------------

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.ports['nats']}"

    @property
    def cp_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['cp']}"

    def start(self) -> None:
        self.setup()
        for j in JURISDICTIONS:
            self.ports[f"srt-{j['edge_id']}"] = claim(9001 + JURISDICTIONS.index(j), f"SRT of {j['edge_id']}", say, udp=True)
        steps = len(JURISDICTIONS) * 2 + 2
        n = 0

        def step(part: Part, timeout: float = 90) -> None:
            nonlocal n
            n += 1
            say(f"[{n}/{steps}] starting {part.name} …")
            t0 = time.monotonic()
            part.start()
            part.wait_ready(timeout)
            say(f"[{n}/{steps}] {part.name} is up ({time.monotonic() - t0:.1f} s)")

        step(self.nats())
        step(self.control_plane())
        self.admin = self.token("demo-admin", "admin", "*")
        self.operator = self.token("demo-operator", "operator", "*", by=self.admin)
        for j in JURISDICTIONS:
            edge = self.edge(j)
            self.register(j)
            step(edge)
        say("      edges registered with the control plane (id, jurisdiction, URL, checkpoint key)")
        for j in JURISDICTIONS:
            step(self.studio(j))
        for j in JURISDICTIONS:
            self.wait_live(j)
        self.people()

    def wait_live(self, j: dict[str, str], timeout: float = 60) -> None:
        url = f"http://127.0.0.1:{self.ports[j['edge_id']]}/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                h = _http("GET", url)
                if h["tables"].get("roulette-1"):
                    say(f"      {j['name']}: roulette-1 is live (studio feed over SRT)")
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            pause(0.5)
        raise RuntimeError(f"roulette-1 at {j['edge_id']} did not go live; see {self.root}/studio-{j['edge_id']}.log")

    def people(self) -> None:
        """A player per jurisdiction, funded through the real deposit path; a regulator each."""
        self.players: dict[str, str] = {}
        for j in JURISDICTIONS:
            edge = f"http://127.0.0.1:{self.ports[j['edge_id']]}"
            accounts = self.token(f"accounts-{j['jurisdiction'].lower()}", "accounts", j["jurisdiction"], by=self.admin)
            tok = self.token(f"player-{j['jurisdiction'].lower()}", "player", j["jurisdiction"], by=accounts)
            self.players[j["edge_id"]] = tok
            # edge journal -> NATS -> cloud PSP confirms -> credit command -> edge wallet
            _http("POST", f"{edge}/v1/wallet/deposits", {"amount": 50_000, "method": "card"},
                  headers={"Authorization": f"Bearer {tok}"})
            reg = self.token(f"regulator-{j['jurisdiction'].lower()}", "regulator", j["jurisdiction"], by=self.admin)
            (self.root / f"regulator-{j['jurisdiction']}.token").write_text(reg + "\n")
            self.urls[j["name"]] = f"{edge}/play/?token={tok}&cp={self.cp_url}"
            self.urls[f"regulator-{j['name']}"] = f"{edge}/regulator/login"

    def check(self, timeout: float = 30) -> dict[str, Any]:
        """Every part answers, and the round trip through the cloud credited each deposit."""
        report: dict[str, Any] = {"parts": {p.name: p.answers() for p in self.parts}}
        deadline = time.monotonic() + timeout
        credited: dict[str, int] = {}
        while time.monotonic() < deadline and len(credited) < len(JURISDICTIONS):
            for j in JURISDICTIONS:
                w = _http("GET", f"http://127.0.0.1:{self.ports[j['edge_id']]}/v1/wallet",
                          headers={"Authorization": f"Bearer {self.players[j['edge_id']]}"})
                if w["balance"] > 0:
                    credited[j["edge_id"]] = w["balance"]
            pause(0.5)
        report["credited"] = credited
        report["discovery"] = {j["edge_id"]: _http("GET", f"{self.cp_url}/v1/discovery",
                                                  headers={"Authorization": f"Bearer {self.players[j['edge_id']]}"})
                               ["candidates"][0]["edge_id"] for j in JURISDICTIONS}
        report["ok"] = (all(report["parts"].values()) and len(credited) == len(JURISDICTIONS)
                        and all(k == v for k, v in report["discovery"].items()))
        return report

    def banner(self) -> None:
        lines = ["", "=" * 78, "Live casino demo is running. Open a player page in a browser:", ""]
        for j in JURISDICTIONS:
            lines += [f"  Player, {j['name']} ({j['jurisdiction']}, {j['currency']}):", f"    {self.urls[j['name']]}", ""]
        for j in JURISDICTIONS:
            lines += [f"  Regulator, {j['name']}: {self.urls['regulator-' + j['name']]}",
                      f"    token: {self.root / ('regulator-' + j['jurisdiction'] + '.token')}", ""]
        lines += ["  Back office (operator, every jurisdiction):", f"    {self.cp_url}/backoffice/#token={self.operator}", "",
                  f"  Control plane API: {self.cp_url}/docs    logs: {self.root}/*.log", "",
                  "Ctrl-C stops everything cleanly (rounds voided or settled, journals flushed).", "=" * 78, ""]
        for line in lines:
            say(line, prefix="")

    def stop(self) -> None:
        say("stopping …")
        for part in reversed(self.parts):
            part.stop()
            say(f"  {part.name} stopped")
        for j in JURISDICTIONS:
            db = self.root / j["edge_id"] / "journal.db"
            if db.exists():
                say(f"  {j['edge_id']} journal: {_verify(db)}")


def _tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    r = httpx.request(method, url, json=body, headers=headers, timeout=10)
    r.raise_for_status()
    return r.json() if r.content else None


def _verify(db: Path) -> str:
    """Whole-journal check after stop: the chain is intact and no round is left open."""
    from contract.verify import verify_entries
    from edge_agent.journal.store import open_readonly

    conn = open_readonly(db)
    try:
        rows = conn.execute("SELECT seq, ts, kind, data, prev, hash FROM journal ORDER BY seq").fetchall()
    finally:
        conn.close()
    entries = [{"seq": r[0], "ts": r[1], "kind": r[2], "data": json.loads(r[3]), "prev": r[4], "hash": r[5]}
               for r in rows]
    report = verify_entries(entries)
    return (f"{len(entries)} entries, chain and every round verified" if report.ok
            else f"FAILED at seq {report.first_bad_seq}")


