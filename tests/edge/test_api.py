"""The player API: every bad input gets a machine-readable code and changes nothing."""
from __future__ import annotations

import json

import pytest
import websockets

from tests.edge.conftest import fund, player_token

AUTH = {"Authorization": f"Bearer {player_token('alice')}"}


async def _ready(casino, amount=10_000):
    psn = casino.ensure_player("alice")
    await fund(casino, psn, amount)
    casino.open_round("roulette-1")
    return psn


def _snapshot(casino):
    return casino.store.seq, dict(casino.state.ledger.balances)


async def test_http_bet_accepted_and_durable(casino, client):
    psn = await _ready(casino)
    r = await client.post("/v1/bets", json={"table_id": "roulette-1", "spot": "red", "amount": 500}, headers=AUTH)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["balance"] == 9_500 and body["spot"] == "red"
    assert casino.store.durable_seq >= body["seq"]
    assert casino.store.read(body["seq"], body["seq"])[0]["data"]["player"] == psn


@pytest.mark.parametrize("payload,status,code", [
    ({"table_id": "roulette-1", "spot": "red", "amount": 0}, 422, "invalid_amount"),
    ({"table_id": "roulette-1", "spot": "red", "amount": -5}, 422, "invalid_amount"),
    ({"table_id": "roulette-1", "spot": "red", "amount": 1.5}, 422, "invalid_amount"),
    ({"table_id": "roulette-1", "spot": "red", "amount": "500"}, 422, "invalid_amount"),
    ({"table_id": "roulette-1", "spot": "red", "amount": True}, 422, "invalid_amount"),
    ({"table_id": "roulette-1", "spot": "straight:37", "amount": 500}, 422, "unknown_spot"),
    ({"table_id": "roulette-1", "spot": "banker", "amount": 500}, 422, "unknown_spot"),
    ({"table_id": "craps-9", "spot": "red", "amount": 500}, 404, "unknown_table"),
    ({"table_id": "roulette-1", "spot": "red", "amount": 50}, 422, "below_table_min"),
    ({"table_id": "roulette-1", "spot": "red", "amount": 60_000}, 422, "above_spot_max"),
    ({"table_id": "roulette-1", "spot": "red", "amount": 9_000_000}, 422, "above_spot_max"),
    ({"table_id": "roulette-1", "spot": "red", "amount": 500, "rules_version": "roulette/0"}, 409, "stale_rules"),
    ({"table_id": "baccarat-1", "spot": "banker", "amount": 500}, 409, "betting_closed"),
    ([1, 2, 3], 422, "invalid_request"),
])
async def test_bad_bets_refused_and_change_nothing(casino, client, payload, status, code):
    await _ready(casino)
    before = _snapshot(casino)
    r = await client.post("/v1/bets", content=json.dumps(payload), headers=AUTH)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert _snapshot(casino) == before


async def test_insufficient_funds(casino, client):
    await _ready(casino, amount=300)
    before = _snapshot(casino)
    r = await client.post("/v1/bets", json={"table_id": "roulette-1", "spot": "red", "amount": 500}, headers=AUTH)
    assert (r.status_code, r.json()["error"]["code"]) == (402, "insufficient_funds")
    assert _snapshot(casino) == before


async def test_round_max(casino, client):
    await _ready(casino, amount=200_000)
    for spot in ("red", "odd"):
        r = await client.post("/v1/bets", json={"table_id": "roulette-1", "spot": spot, "amount": 40_000},
                              headers=AUTH)
        assert r.status_code == 201
    r = await client.post("/v1/bets", json={"table_id": "roulette-1", "spot": "low", "amount": 100}, headers=AUTH)
    assert r.json()["error"]["code"] == "above_round_max"


async def test_malformed_json_and_oversized_body(casino, client):
    await _ready(casino)
    before = _snapshot(casino)
    r = await client.post("/v1/bets", content=b"{not json", headers=AUTH)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed_json")
    r = await client.post("/v1/bets", content=b"{" + b" " * 20_000 + b"}", headers=AUTH)
    assert (r.status_code, r.json()["error"]["code"]) == (413, "body_too_large")
    assert _snapshot(casino) == before


async def test_auth_required_and_jurisdiction_enforced(casino, client):
    await _ready(casino)
    r = await client.post("/v1/bets", json={"table_id": "roulette-1", "spot": "red", "amount": 500})
    assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthorized")
    r = await client.get("/v1/wallet", headers={"Authorization": f"Bearer {player_token('bob', 'ON')}"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "wrong_jurisdiction")
    r = await client.get("/v1/wallet", headers={"Authorization": "Bearer forged.token.here"})
    assert r.status_code == 401


async def test_idempotency_key(casino, client):
    await _ready(casino)
    body = {"table_id": "roulette-1", "spot": "red", "amount": 500}
    h = {**AUTH, "Idempotency-Key": "k-1"}
    first = await client.post("/v1/bets", json=body, headers=h)
    again = await client.post("/v1/bets", json=body, headers=h)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    seq = casino.store.seq
    other = await client.post("/v1/bets", json={**body, "amount": 600}, headers=h)
    assert (other.status_code, other.json()["error"]["code"]) == (409, "idempotency_conflict")
    assert casino.store.seq == seq
    assert casino.state.cash(casino.pseudonym("alice")) == 9_500


async def test_idempotency_survives_restart(tmp_path):
    import httpx

    from edge_agent.api.app import create_app
    from edge_agent.casino import Casino
    from tests.edge.conftest import edge_config

    body = {"table_id": "roulette-1", "spot": "red", "amount": 500}
    h = {**AUTH, "Idempotency-Key": "k-restart"}
    c = Casino(edge_config(tmp_path))
    await c.start(run_tables=False)
    await fund(c, c.ensure_player("alice"), 10_000)
    c.open_round("roulette-1")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(c)), base_url="http://e") as cl:
        first = (await cl.post("/v1/bets", json=body, headers=h)).json()
    c.store.close()  # crash-like: no graceful stop
    c2 = Casino(edge_config(tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(c2)), base_url="http://e") as cl:
        again = await cl.post("/v1/bets", json=body, headers=h)
    assert again.json() == first
    c2.close()


async def test_wallet_limits_and_proof_routes(casino, client):
    psn = await _ready(casino)
    r = await client.get("/v1/wallet", headers=AUTH)
    assert r.json()["balance"] == 10_000 and r.json()["player"] == psn
    r = await client.put("/v1/limits/deposit/24h", json={"amount": 5_000}, headers=AUTH)
    assert r.status_code == 200 and r.json()["limits"]["deposit_24h"]["amount"] == 5_000
    r = await client.put("/v1/limits/deposit/fortnight", json={"amount": 5_000}, headers=AUTH)
    assert r.json()["error"]["code"] == "invalid_limit"
    await client.post("/v1/bets", json={"table_id": "roulette-1", "spot": "even", "amount": 500}, headers=AUTH)
    r = casino.state.tables["roulette-1"].round
    settle = await casino.settle_round("roulette-1")
    proof = (await client.get(f"/v1/tables/roulette-1/rounds/{r.chain_id}/{r.n}")).json()
    assert proof["status"] == "settled" and proof["server_seed"] == settle["data"]["server_seed"]
    assert len(proof["bets"]) == 1
    assert (await client.get("/openapi.json")).json()["paths"]["/v1/bets"]["post"]["requestBody"]


async def test_websocket_bet_roundtrip(casino, live_server):
    await _ready(casino)
    async with websockets.connect(f"ws://{live_server}/v1/ws?token={player_token('alice')}") as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello" and hello["wallet"]["balance"] == 10_000
        await ws.send(json.dumps({"type": "bet", "req": 1, "table_id": "roulette-1", "spot": "red", "amount": 500}))
        await ws.send(json.dumps({"type": "bet", "req": 2, "table_id": "roulette-1", "spot": "red", "amount": 0}))
        await ws.send("{broken")
        got = {}
        while len(got) < 3:
            m = json.loads(await ws.recv())
            got[m.get("req", m["type"])] = m
        assert got[1]["type"] == "bet.accepted" and got[1]["balance"] == 9_500
        assert got[2]["type"] == "bet.refused" and got[2]["error"]["code"] == "invalid_amount"
        assert got["error"]["error"]["code"] == "malformed_json"
        await casino.settle_round("roulette-1")
        kinds = set()
        while not {"round.settled", "settlement"} <= kinds:
            kinds.add(json.loads(await ws.recv())["type"])


async def test_latency_reports_feed_the_glass_to_glass_histogram(casino, client):
    from edge_agent.api.web_support import GLASS_TO_GLASS

    def count() -> float:
        return next(s.value for m in GLASS_TO_GLASS.collect() for s in m.samples
                    if s.name.endswith("_count") and s.labels == {"table": "roulette-1"})

    GLASS_TO_GLASS.labels("roulette-1")
    before, seq = count(), casino.store.seq
    r = await client.post("/v1/telemetry/latency", json={"table_id": "roulette-1", "glass_to_glass_ms": 142.5},
                          headers=AUTH)
    assert r.status_code == 204, r.text
    assert count() == before + 1
    for body, status, code in [({"table_id": "roulette-1", "glass_to_glass_ms": -1}, 422, "invalid_request"),
                               ({"table_id": "roulette-1"}, 422, "invalid_request"),
                               ({"table_id": "craps-9", "glass_to_glass_ms": 100}, 404, "unknown_table")]:
        r = await client.post("/v1/telemetry/latency", json=body, headers=AUTH)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    r = await client.post("/v1/telemetry/latency", json={"table_id": "roulette-1", "glass_to_glass_ms": 1})
    assert r.status_code == 401
    assert count() == before + 1 and casino.store.seq == seq  # telemetry never touches the journal
