"""Configuration is strict and every key is read: typos refused by name (edge and control plane),
environment overrides through pydantic-settings, residency kinds checked against the journal's,
responsible-gambling defaults used by the RG domain, regulator networks enforced."""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from contract.kinds import JOURNAL_KINDS
from control_plane.config import ConfigError as CpConfigError
from control_plane.config import load_config as load_cp
from edge_agent.casino import Casino
from edge_agent.config import ConfigError, EdgeConfig, load_config
from edge_agent.domain.errors import DomainError
from tests.edge.conftest import PUBLIC_PEM, edge_config, player_token

ROOT = Path(__file__).resolve().parents[2]
BASE = {"edge_id": "mt-1", "jurisdiction": "MT", "residency_key_hex": "00" * 32,
        "tables": [{"table_id": "roulette-1", "game": "roulette"}]}


def write(tmp: Path, cfg: dict, name: str = "edge.yaml") -> Path:
    p = tmp / name
    p.write_text(yaml.safe_dump(cfg))
    return p


@pytest.mark.parametrize(("cfg", "key"), [
    ({**{k: v for k, v in BASE.items() if k != "tables"}, "tabels": [{"table_id": "r-1", "game": "roulette"}]},
     "tabels"),
    ({**BASE, "http": {"prot": 8100}}, "http.prot"),
    ({**BASE, "tables": [{"table_id": "r-1", "game": "roulette", "betting_window": 3}]}, "tables.0.betting_window"),
    ({**BASE, "nats": {"url": "nats://x", "passwd": "p"}}, "nats.passwd"),
    ({**BASE, "media": {"tables": [{"table_id": "r-1", "srt_prot": 9000}]}}, "media.tables.0.srt_prot"),
    ({**BASE, "responsible_gambling": {"deposit_limit_required": True}}, "responsible_gambling.deposit_limit_required"),
    ({**BASE, "regulator_access": {"allowed_cidr": ["10.0.0.0/8"]}}, "regulator_access.allowed_cidr"),
])
def test_edge_refuses_unknown_keys_by_name(tmp_path: Path, cfg: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, cfg))
    assert f"{key}: unknown key" in str(err.value)


def test_edge_refuses_residency_kinds_it_never_journals(tmp_path: Path) -> None:
    cfg = {**BASE, "residency": {"allow_kinds": ["bet.placed", "wallet.deposit"]}}
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, cfg))
    assert "residency.allow_kinds" in str(err.value) and "wallet.deposit" in str(err.value)
    assert "bet.placed" not in str(err.value).split("never journals:")[1].split("]")[0]
    with pytest.raises(ConfigError, match="residency.redact_fields"):
        load_config(write(tmp_path, {**BASE, "residency": {"redact_fields": {"rg.excluded": ["x"]}}}))
    # patterns are fine as long as they match a journal kind
    ok = load_config(write(tmp_path, {**BASE, "residency": {"allow_kinds": ["round.*", "deposit.*"]}}))
    assert ok.residency.allow_kinds == ["round.*", "deposit.*"]


def test_journal_kinds_cover_every_kind_the_edge_writes() -> None:
    """The one list (contract.kinds) holds every kind constant the edge's modules append."""
    from contract import blackjack as BJ
    from contract import journal as J
    from contract import sync as S
    from edge_agent.domain import state as ST
    from edge_agent.evidence import kinds as EK
    from edge_agent.regulator.access import REGULATOR_QUERY
    from edge_agent.vision.check import VISION_CHECKED

    kinds = {J.FAIRNESS_CHAIN, J.ROUND_OPENED, J.ROUND_CLOSED, J.BET_PLACED, J.ROUND_SETTLED, J.ROUND_VOIDED,
             ST.PLAYER_REGISTERED, ST.PLAYER_SETTINGS, ST.SESSION_STARTED, ST.SESSION_ENDED, ST.LIMITS_CHANGED,
             ST.TABLE_RULES, ST.TABLE_STATUS, ST.TABLE_FEED, REGULATOR_QUERY, BJ.DEALT, BJ.DECISION, BJ.CARD,
             EK.ROUND_VIDEO, EK.VIDEO_FAILED, EK.VIDEO_RECOVERED, EK.VIDEO_DELETED, VISION_CHECKED}
    kinds |= {v for k, v in vars(S).items() if k.isupper() and isinstance(v, str) and "." in v
              and k.split("_")[0] in ("DEPOSIT", "WITHDRAWAL", "PLAYER", "KYC", "COMMAND")}
    assert kinds <= JOURNAL_KINDS, kinds - JOURNAL_KINDS
    assert len(kinds) == len(JOURNAL_KINDS)


def test_example_inventories_residency_policies_load(tmp_path: Path) -> None:
    for jur in ("malta", "ontario"):
        gv = yaml.safe_load((ROOT / "ansible/inventories/example/group_vars" / f"{jur}.yml").read_text())
        cfg = load_config(write(tmp_path, {**BASE, "residency": gv["edge_residency_policy"],
                                           "responsible_gambling": gv["edge_responsible_gambling"],
                                           "regulator_access": gv["edge_regulator_access"]}))
        assert cfg.regulator_access.allowed_cidrs and cfg.responsible_gambling.default_deposit_limits


def test_env_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_HTTP__PORT", "9123")
    monkeypatch.setenv("EDGE_NATS__PASSWORD", "from-secret")
    monkeypatch.setenv("EDGE_DB_PATH", "data/j.db")
    monkeypatch.setenv("EDGE_CONFIG", "/ignored/edge.yaml")  # the CLI's own variable is not a key
    cfg = load_config(write(tmp_path, {**BASE, "http": {"port": 8100, "host": "0.0.0.0"}}))
    assert cfg.http.port == 9123 and cfg.http.host == "0.0.0.0"  # merged, not replaced
    assert cfg.nats.password == "from-secret"
    assert cfg.db_path == tmp_path / "data/j.db"  # relative to the file, as in the file
    monkeypatch.setenv("EDGE_HTTP__PORT", "not-a-port")
    with pytest.raises(ConfigError, match="http.port"):
        load_config(write(tmp_path, BASE))


def test_control_plane_refuses_unknown_keys_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = yaml.safe_load((ROOT / "control_plane/config.example.yaml").read_text())
    example["bootstrap_secret"] = "0123456789abcdef0123"  # the example's placeholder is refused on purpose
    load_cp(write(tmp_path, example, "cp.yaml"))  # the documented example is accepted
    for cfg, key in (({"databse_url": "sqlite://"}, "databse_url"), ({"aml": {"cdd_treshold": {}}}, "aml.cdd_treshold"),
                     ({"rails": {"bank": {"enabeld": False}}}, "rails.bank.enabeld")):
        with pytest.raises(CpConfigError) as err:
            load_cp(write(tmp_path, cfg, "cp.yaml"))
        assert f"{key}: unknown key" in str(err.value)
    monkeypatch.setenv("CONTROL_PLANE_NATS__PASSWORD", "pw")
    monkeypatch.setenv("CONTROL_PLANE_HTTP__PORT", "8555")
    cfg = load_cp(write(tmp_path, {"nats": {"url": "nats://127.0.0.1:4222", "user": "cloud"}}, "cp.yaml"))
    assert (cfg.nats.url, cfg.nats.user, cfg.nats.password, cfg.http.port) == ("nats://127.0.0.1:4222", "cloud", "pw", 8555)


async def test_responsible_gambling_defaults_limit_new_players(tmp_path: Path) -> None:
    c = Casino(edge_config(tmp_path, responsible_gambling={"default_deposit_limits": {"24h": 10_000},
                                                           "reality_check_minutes": 30}))
    await c.start(run_tables=False)
    try:
        psn = c.ensure_player("new-player")
        assert c.state.player(psn).reality_check_min == 30
        assert c.credit_deposit(psn, "d1", 6_000)["kind"] == "deposit.credited"
        with pytest.raises(DomainError) as err:
            c.request_deposit(psn, 6_000)  # 12,000 in 24 h > the jurisdiction's default 10,000
        assert err.value.code == "deposit_limit_exceeded"
        assert c.credit_deposit(psn, "d2", 6_000)["kind"] == "deposit.refused"
        # Loosening the default waits the cooling-off like any increase.
        c.set_limit(psn, "deposit", "24h", 20_000)
        with pytest.raises(DomainError):
            c.request_deposit(psn, 6_000)
    finally:
        await c.stop()
        c.close()
    # Without defaults nothing limits the same deposits.
    c = Casino(edge_config(tmp_path / "b"))
    await c.start(run_tables=False)
    try:
        psn = c.ensure_player("new-player")
        assert c.credit_deposit(psn, "d1", 6_000)["kind"] == "deposit.credited"
        assert c.credit_deposit(psn, "d2", 6_000)["kind"] == "deposit.credited"
        assert c.state.player(psn).reality_check_min is None
    finally:
        await c.stop()
        c.close()


async def test_regulator_routes_only_from_allowed_networks(tmp_path: Path) -> None:
    from contract import tokens
    from edge_agent.api.app import create_app
    from edge_agent.regulator.router import regulator_router
    from tests.edge.conftest import SIGNING_KEY

    cfg: EdgeConfig = edge_config(tmp_path, regulator_access={"regulator": "MGA", "allowed_cidrs": ["192.0.2.0/24"]})
    c = Casino(cfg)
    await c.start(run_tables=False)
    try:
        app = create_app(c, extra_routers=[regulator_router(c, PUBLIC_PEM)])
        reg = tokens.issue(SIGNING_KEY, "mga-1", "regulator", "MT")
        auth = {"Authorization": f"Bearer {reg}"}
        head = c.store.seq
        outside = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 5000)),
                                    base_url="http://edge")
        inside = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("192.0.2.10", 5000)),
                                   base_url="http://edge")
        async with outside, inside:
            r = await outside.get("/regulator/api/access-log", headers=auth)
            assert r.status_code == 403 and r.json()["error"]["code"] == "network_not_allowed"
            assert (await outside.get("/regulator/login")).status_code == 403
            assert c.store.seq == head  # refused before the regulator service: nothing journaled
            # the player API is not affected
            w = await outside.get("/v1/wallet", headers={"Authorization": f"Bearer {player_token('p1')}"})
            assert w.status_code == 200
            assert (await inside.get("/regulator/api/access-log", headers=auth)).status_code == 200
    finally:
        await c.stop()
        c.close()
