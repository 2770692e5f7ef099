"""Issue 15 regressions: hostile input at the edge changes nothing, gets the error envelope,
and never leaves the journal in a state that cannot settle, export or verify."""
from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
import websockets
from typer.testing import CliRunner

from contract import tokens
from contract.bounds import INT64_MAX
from edge_agent.api.limits import KYC_MAX_BYTES
from edge_agent.audit.export import export_bundle
from edge_agent.cli import app as cli
from edge_agent.domain.errors import DomainError
from tests.edge.conftest import SIGNING_KEY, fund, player_token

AUTH = {"Authorization": f"Bearer {player_token('alice')}"}


async def _ready(casino, amount=1_000_000):
    psn = casino.ensure_player("alice")
    await fund(casino, psn, amount)
    casino.open_round("roulette-1")
    return psn


def _snapshot(casino):
    return casino.store.seq, dict(casino.state.ledger.balances)


def _verify_cli(casino, out: Path) -> None:
    """What an outside verifier runs: export the journal, then `edge-agent verify`."""
    export_bundle(casino.store.path, out)
    res = CliRunner().invoke(cli, ["verify", str(out)])
    assert res.exit_code == 0, res.output


# --- 1. spots by exact match --------------------------------------------------------------------

@pytest.mark.parametrize("spot", ["red\n", "straight:7\n", "banker\n", " red", "RED", "straight:07", "straight:37",
                                  "dozen:4", "red\x00", "straight:\u0667", "straight:+7"])
async def test_spot_not_in_the_game_set_is_refused(casino, client, spot):
    await _ready(casino)
    before = _snapshot(casino)
    r = await client.post("/v1/bets", json={"table_id": "roulette-1", "spot": spot, "amount": 500}, headers=AUTH)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "unknown_spot"), r.text
    assert _snapshot(casino) == before


async def test_trailing_newline_cannot_double_the_spot_maximum(casino, client):
    await _ready(casino)
    r = await client.post("/v1/bets", json={"table_id": "roulette-1", "spot": "straight:7", "amount": 50_000},
                          headers=AUTH)
    assert r.status_code == 201
    r = await client.post("/v1/bets", json={"table_id": "roulette-1", "spot": "straight:7\n", "amount": 50_000},
                          headers=AUTH)
    assert r.status_code == 422
    await casino.settle_round("roulette-1")  # the round settles; the table keeps going
    assert casino.state.tables["roulette-1"].round is None


# --- 2. integers past 64 bits -------------------------------------------------------------------

@pytest.mark.parametrize("amount", [10**30, 2**63, 10**15 + 1, True, "5", 1.0])
async def test_limit_amount_beyond_bounds_is_refused_before_the_journal(casino, client, amount, tmp_path):
    await _ready(casino)
    before = _snapshot(casino)
    r = await client.put("/v1/limits/deposit/30d", json={"amount": amount}, headers=AUTH)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_amount"), r.text
    assert _snapshot(casino) == before
    assert (await client.get("/v1/limits", headers=AUTH)).status_code == 200
    _verify_cli(casino, tmp_path / "b")


async def test_the_journal_refuses_an_integer_it_cannot_hold(casino):
    before = _snapshot(casino)
    with pytest.raises(DomainError) as err:
        casino.store.append("test.entry", {"n": 10**30})
    assert err.value.code == "value_out_of_range"
    assert _snapshot(casino) == before


@pytest.mark.parametrize("path", ["/v1/tables/roulette-1/rounds/abc/9223372036854775808",
                                  "/v1/tables/roulette-1/rounds/abc/0", "/v1/tables/roulette-1/rounds/abc/-1",
                                  "/v1/tables/roulette-1/rounds/abc/1e3"])
async def test_round_number_out_of_range_is_an_enveloped_422(client, path):
    r = await client.get(path)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", r.text


async def test_round_number_at_the_bound_is_a_404(client):
    r = await client.get(f"/v1/tables/roulette-1/rounds/abc/{INT64_MAX}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


# --- 3. line separators inside strings ------------------------------------------------------------

SEPARATORS = "a\u2028b\u2029c\u0085d\r\n\x1c\x1d\x1e\x0b\x0c"


async def test_line_separators_in_every_string_field_export_and_verify(casino, client, tmp_path):
    psn = await _ready(casino)
    r = await client.post("/v1/wallet/deposits", json={"amount": 1000, "method": "c\u2028\u2029\u0085"},
                          headers=AUTH)
    assert r.status_code == 202, r.text
    r = await client.post("/v1/bets", json={"table_id": "roulette-1", "spot": "red", "amount": 500,
                                            "player_seed": SEPARATORS}, headers=AUTH)
    assert r.status_code == 201, r.text
    await casino.settle_round("roulette-1")
    casino.open_round("roulette-1")
    await casino.bet(psn, "roulette-1", "black", 500, player_seed="\u2029")
    await casino.void_round("roulette-1", "studio\u2028fault\u0085", "op")
    _verify_cli(casino, tmp_path / "b")
    raw = (tmp_path / "b" / "journal.jsonl").read_bytes()
    assert "\u2028".encode() in raw  # the canonical form keeps them: the readers split on \n only
    assert raw.count(b"\n") == casino.store.seq


# --- 4. one error envelope --------------------------------------------------------------------------

async def test_404_405_415_422_share_the_envelope(client):
    r = await client.get("/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await client.delete("/v1/wallet", headers=AUTH)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in r.headers["allow"]
    r = await client.post("/v1/bets", content=b'{"table_id": "roulette-1", "spot": "red", "amount": 500}',
                          headers={**AUTH, "Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = await client.post("/v1/wallet/deposits", content=b'{"amount": 500}',
                          headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = await client.put("/v1/settings/reality-check", json={"minutes": "x"}, headers=AUTH)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


class _Log:
    """Stands in for the structlog logger: records the call (rendering a rich traceback costs seconds)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, event: str, **kw: object) -> None:
        self.errors.append(event)


async def test_a_bug_answers_500_in_the_envelope(casino, tmp_path, monkeypatch):
    import httpx

    from edge_agent.api import errors
    from edge_agent.api.app import create_app

    monkeypatch.setattr(errors, "log", log := _Log())
    app = create_app(casino)
    casino.wallet = lambda psn: 1 / 0  # type: ignore[method-assign]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://edge") as c:
        r = await c.get("/v1/wallet", headers=AUTH)
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    assert log.errors == ["unhandled error"]  # and the bug is on record


async def test_bet_content_type_must_be_json(casino, client):
    await _ready(casino)
    before = _snapshot(casino)
    body = json.dumps({"table_id": "roulette-1", "spot": "red", "amount": 500})
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        r = await client.post("/v1/bets", content=body, headers={**AUTH, "Content-Type": ctype})
        assert (r.status_code, r.json()["error"]["code"]) == (415, "unsupported_media_type")
    assert _snapshot(casino) == before
    r = await client.post("/v1/bets", content=body, headers={**AUTH, "Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201


# --- 6. smaller ---------------------------------------------------------------------------------

@pytest.mark.parametrize("minutes", [True, "5", 5.0, 0, 1441, 10**30])
async def test_reality_check_minutes_are_strict(casino, client, minutes):
    casino.ensure_player("alice")
    before = _snapshot(casino)
    r = await client.put("/v1/settings/reality-check", json={"minutes": minutes}, headers=AUTH)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_request"), r.text
    assert _snapshot(casino) == before
    r = await client.put("/v1/settings/reality-check", json={"minutes": 30}, headers=AUTH)
    assert r.status_code == 200 and r.json()["reality_check_min"] == 30


async def test_tokens_living_longer_than_their_role_allows_are_refused(client):
    now = int(time.time())
    for role, life in (("player", 31 * 365 * 86400), ("player", tokens.DAY + 60), ("operator", 2 * tokens.DAY)):
        claims = {"sub": "alice", "role": role, "jur": "MT", "iat": now, "exp": now + life, "iss": tokens.ISSUER}
        tok = jwt.encode(claims, SIGNING_KEY, algorithm="EdDSA")
        r = await client.get("/v1/wallet", headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 401 and "lifetime" in r.json()["error"]["message"], r.text
    # a token with no iat cannot claim a lifetime at all
    tok = jwt.encode({"sub": "alice", "role": "player", "jur": "MT", "exp": now + 60, "iss": tokens.ISSUER},
                     SIGNING_KEY, algorithm="EdDSA")
    assert (await client.get("/v1/wallet", headers={"Authorization": f"Bearer {tok}"})).status_code == 401
    with pytest.raises(ValueError):
        tokens.issue(SIGNING_KEY, "alice", "player", "MT", ttl_s=31 * 365 * 86400)


async def test_kyc_body_limit_and_handler_limit_agree(casino, client):
    casino.ensure_player("alice")
    r = await client.post("/v1/kyc", content=b"x" * KYC_MAX_BYTES,
                          headers={**AUTH, "Content-Type": "application/octet-stream"})
    assert r.status_code == 202, r.text
    seq = casino.store.seq
    r = await client.post("/v1/kyc", content=b"x" * (KYC_MAX_BYTES + 1),
                          headers={**AUTH, "Content-Type": "application/octet-stream"})
    assert (r.status_code, r.json()["error"]["code"]) == (413, "body_too_large")
    assert casino.store.seq == seq
    # the default limit still holds everywhere else
    r = await client.post("/v1/wallet/deposits", content=b'{"amount": 1' + b" " * 20_000 + b"}", headers=AUTH)
    assert r.status_code == 413


async def test_documented_status_codes_are_the_real_ones(client):
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "201" in paths["/v1/bets"]["post"]["responses"]
    assert "201" in paths["/v1/breaks"]["post"]["responses"]
    assert "201" in paths["/v1/self-exclusion"]["post"]["responses"]
    assert {"404", "422"} <= set(paths["/v1/tables/{table_id}/rounds/{chain_id}/{n}"]["get"]["responses"])
    assert "415" in paths["/v1/wallet/deposits"]["post"]["responses"]


async def test_websocket_binary_frames_and_list_table_ids_get_an_error(casino, live_server):
    await _ready(casino)
    async with websockets.connect(f"ws://{live_server}/v1/ws?token={player_token('alice')}") as ws:
        assert json.loads(await ws.recv())["type"] == "hello"
        await ws.send(b"\x00\x01binary")
        m = json.loads(await ws.recv())
        assert m["type"] == "error" and m["error"]["code"] == "invalid_request"
        await ws.send(json.dumps({"type": "subscribe", "req": 7, "table_id": ["roulette-1"]}))
        m = json.loads(await ws.recv())
        assert (m["type"], m["req"], m["error"]["code"]) == ("error", 7, "unknown_table")
        await ws.send(json.dumps({"type": "subscribe", "req": 8, "table_id": {"a": 1}}))
        assert json.loads(await ws.recv())["error"]["code"] == "unknown_table"
        await ws.send(json.dumps({"type": "bet", "req": 9, "table_id": ["x"], "spot": ["red"], "amount": 500}))
        assert json.loads(await ws.recv())["type"] == "bet.refused"
        # the connection is still there and serving
        await ws.send(json.dumps({"type": "bet", "req": 10, "table_id": "roulette-1", "spot": "red\n",
                                  "amount": 500}))
        m = json.loads(await ws.recv())
        assert m["type"] == "bet.refused" and m["error"]["code"] == "unknown_spot"
        await ws.send(json.dumps({"type": "ping", "t": 1}))
        while (m := json.loads(await ws.recv()))["type"] != "pong":
            pass


# --- settlement never freezes a table -------------------------------------------------------------

def _break_settlement(monkeypatch):
    from edge_agent.domain import games

    game = games.get("roulette")

    def boom(*a, **k):
        raise RuntimeError("paytable lookup failed")
    monkeypatch.setattr(game, "settle", boom)


async def test_a_settlement_that_raises_voids_the_round_and_the_table_keeps_serving(casino, client, monkeypatch,
                                                                                      tmp_path):
    psn = await _ready(casino)
    await casino.bet(psn, "roulette-1", "red", 500)
    before = casino.state.cash(psn)
    _break_settlement(monkeypatch)
    e = await casino.settle_round("roulette-1")
    assert e["kind"] == "round.voided" and e["data"]["reason"] == "settlement_failed: RuntimeError"
    assert casino.state.cash(psn) == before + 500  # the stake came back
    assert casino.state.tables["roulette-1"].round is None
    monkeypatch.undo()
    casino.open_round("roulette-1")  # the table goes on
    r = await client.post("/v1/bets", json={"table_id": "roulette-1", "spot": "red", "amount": 500}, headers=AUTH)
    assert r.status_code == 201
    assert (await casino.settle_round("roulette-1"))["kind"] == "round.settled"
    _verify_cli(casino, tmp_path / "b")


async def test_a_closed_round_that_cannot_settle_does_not_stop_a_restart(tmp_path, monkeypatch):
    from edge_agent.casino import Casino
    from tests.edge.conftest import edge_config

    c = Casino(edge_config(tmp_path))
    await c.start(run_tables=False)
    psn = c.ensure_player("alice")
    await fund(c, psn, 10_000)
    c.open_round("roulette-1")
    await c.bet(psn, "roulette-1", "black", 700)
    c.close_round("roulette-1")
    await c.store.durable(c.store.seq)
    c.close()  # a crash: the round stays closed, unsettled, in the journal
    _break_settlement(monkeypatch)
    c2 = Casino(edge_config(tmp_path))
    await c2.start(run_tables=False)  # recovery voids the round instead of refusing to start
    voided = [e for e in c2.store.read(1, c2.store.seq) if e["kind"] == "round.voided"]
    assert voided and voided[-1]["data"]["reason"].startswith("settlement_failed")
    assert c2.state.cash(psn) == 10_000
    monkeypatch.undo()
    c2.open_round("roulette-1")
    await c2.bet(psn, "roulette-1", "red", 100)
    await c2.stop()  # and stops cleanly (what SIGTERM runs)
    c2.close()
    _verify_cli(c2, tmp_path / "b")


async def test_media_and_the_regulator_form_are_outside_the_json_rule(casino):
    """415 is for the JSON API: the regulator's login form and WHEP's SDP keep their own media."""
    import httpx

    from edge_agent.api.app import create_app
    from edge_agent.regulator.router import regulator_router
    from tests.edge.conftest import PUBLIC_PEM

    app = create_app(casino, extra_routers=[regulator_router(casino, PUBLIC_PEM)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge") as c:
        r = await c.post("/regulator/login", content=b"token=nonsense",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 401, r.text  # judged on the token, not refused for its media type
        r = await c.post("/v1/operator/tables/roulette-1/void", content=b"reason=x",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 415


def test_config_refuses_limits_the_journal_cannot_hold(tmp_path):
    from pydantic import ValidationError

    from tests.edge.conftest import edge_config

    with pytest.raises(ValidationError):
        edge_config(tmp_path, tables=[{"table_id": "roulette-1", "game": "roulette",
                                       "limits": {"max_per_round": 10**30}}])
    with pytest.raises(ValidationError):
        edge_config(tmp_path, edge_id="mt-1\n")
