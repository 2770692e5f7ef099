"""Issue 15 in the cloud: token issuance is scoped (the escalation matrix over HTTP), the
bootstrap secret closes at the first operator, the example secret is refused, lifetimes are
capped by role, and every error (404, 405, 415, 422, 500) comes in the envelope."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from contract import tokens
from control_plane.config import ControlPlaneConfig, load_config
from tests.control_plane.conftest import BOOTSTRAP, client, token

BOOT = {"X-Bootstrap-Secret": BOOTSTRAP}

# (issuer role, issuer jurisdiction) -> what it may mint, as (role, jurisdiction); everything else is 403.
MATRIX: dict[tuple[str, str], set[tuple[str, str]]] = {
    ("admin", "*"): {("operator", "*"), ("operator", "ON"), ("operator", "MT"), ("regulator", "ON"),
                     ("regulator", "MT"), ("edge", "ON"), ("edge", "MT"), ("accounts", "ON"), ("accounts", "MT")},
    ("operator", "ON"): {("operator", "ON"), ("edge", "ON"), ("accounts", "ON")},
    ("operator", "*"): {("operator", "ON"), ("operator", "MT"), ("edge", "ON"), ("edge", "MT"),
                        ("accounts", "ON"), ("accounts", "MT")},
    ("accounts", "ON"): {("player", "ON")},
    ("player", "ON"): set(),
    ("regulator", "ON"): set(),
    ("edge", "ON"): set(),
}
TARGETS = [(role, jur) for role in tokens.ROLES for jur in ("ON", "MT", "*")]


@pytest.fixture
async def cp(make_cp):  # type: ignore[no-untyped-def]
    return await make_cp(None)


@pytest.mark.parametrize("issuer", sorted(MATRIX), ids=lambda i: f"{i[0]}-{i[1]}")
async def test_escalation_matrix_over_http(cp, issuer) -> None:  # type: ignore[no-untyped-def]
    role, jur = issuer
    async with client(cp, token(cp, f"{role}-issuer", role, jur)) as http:
        for target in TARGETS:
            r = await http.post("/v1/tokens", json={"sub": "x", "role": target[0], "jurisdiction": target[1]})
            allowed = target in MATRIX[issuer]
            assert r.status_code == (200 if allowed else 403), (issuer, target, r.text)
            if allowed:
                p = tokens.verify(cp.public_pem, r.json()["token"])
                assert (p.role, p.jurisdiction) == target
            else:
                assert r.json()["error"]["code"] == "forbidden"


async def test_an_operator_of_on_cannot_reach_mt(cp) -> None:  # type: ignore[no-untyped-def]
    """The reported escalation: an ON operator minting for * or for an MT player."""
    async with client(cp, token(cp, "op-on", "operator", "ON")) as http:
        for body in ({"sub": "x", "role": "operator", "jurisdiction": "*"},
                     {"sub": "x", "role": "operator", "jurisdiction": "MT"},
                     {"sub": "alice", "role": "player", "jurisdiction": "MT"},
                     {"sub": "alice", "role": "player", "jurisdiction": "ON"},
                     {"sub": "inspector", "role": "regulator", "jurisdiction": "ON"},
                     {"sub": "root", "role": "admin", "jurisdiction": "*"}):
            r = await http.post("/v1/tokens", json=body)
            assert r.status_code == 403, (body, r.text)


async def test_bootstrap_secret_closes_when_the_first_operator_exists(cp) -> None:  # type: ignore[no-untyped-def]
    async with client(cp) as http:
        # Before any operator: the secret works (players, regulators too: there is no one else yet).
        r = await http.post("/v1/tokens", json={"sub": "p", "role": "player", "jurisdiction": "MT"}, headers=BOOT)
        assert r.status_code == 200
        r = await http.post("/v1/tokens", json={"sub": "root", "role": "admin", "jurisdiction": "*"}, headers=BOOT)
        assert r.status_code == 200
        admin = r.json()["token"]
        for body in ({"sub": "root2", "role": "admin", "jurisdiction": "*"},
                     {"sub": "p", "role": "player", "jurisdiction": "MT"}):
            r = await http.post("/v1/tokens", json=body, headers=BOOT)
            assert (r.status_code, r.json()["error"]["code"]) == (403, "bootstrap_closed")
        # the admin goes on minting within its rights
        r = await http.post("/v1/tokens", json={"sub": "op", "role": "operator", "jurisdiction": "MT"},
                            headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200


async def test_bootstrap_closed_survives_a_restart(make_cp) -> None:  # type: ignore[no-untyped-def]
    cp = await make_cp(None)
    async with client(cp) as http:
        r = await http.post("/v1/tokens", json={"sub": "op", "role": "operator", "jurisdiction": "*"}, headers=BOOT)
        assert r.status_code == 200
    await cp.stop()
    cp2 = await make_cp(None)  # same database
    async with client(cp2) as http:
        r = await http.post("/v1/tokens", json={"sub": "op2", "role": "operator", "jurisdiction": "*"}, headers=BOOT)
        assert (r.status_code, r.json()["error"]["code"]) == (403, "bootstrap_closed")


@pytest.mark.parametrize("secret", ["change-me", "short", ""])
def test_the_example_secret_is_refused_at_start(secret: str) -> None:
    with pytest.raises(ValidationError, match="bootstrap_secret"):
        ControlPlaneConfig(bootstrap_secret=secret)


def test_the_example_config_does_not_start_as_shipped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "control_plane" / "config.example.yaml"
    with pytest.raises(ValueError, match="bootstrap_secret"):  # the config error names the key
        load_config(example)
    fixed = tmp_path / "cp.yaml"
    fixed.write_text(example.read_text().replace("change-me", "3f" * 16))
    assert load_config(fixed).bootstrap_secret == "3f" * 16


async def test_token_lifetimes_are_capped_by_role(cp) -> None:  # type: ignore[no-untyped-def]
    async with client(cp, token(cp, "acc", "accounts", "MT")) as http:
        r = await http.post("/v1/tokens", json={"sub": "p", "role": "player", "jurisdiction": "MT",
                                                "ttl_s": 31 * 365 * 86400})
        assert r.status_code == 422
        r = await http.post("/v1/tokens", json={"sub": "p", "role": "player", "jurisdiction": "MT",
                                                "ttl_s": tokens.MAX_TTL_S["player"] + 1})
        assert (r.status_code, r.json()["error"]["code"]) == (422, "ttl_too_long")
        for bad in ("3600", True, 3600.5):
            r = await http.post("/v1/tokens", json={"sub": "p", "role": "player", "jurisdiction": "MT", "ttl_s": bad})
            assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_request"), bad
        r = await http.post("/v1/tokens", json={"sub": "p", "role": "player", "jurisdiction": "MT", "ttl_s": 600})
        assert r.status_code == 200 and r.json()["expires_in"] == 600


async def test_every_error_is_enveloped(cp) -> None:  # type: ignore[no-untyped-def]
    async with client(cp, token(cp, "ops", "operator", "*")) as http:
        r = await http.get("/v1/audit/edges/mt-1/checkpoints", params={"covering_seq": "9223372036854775808"})
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_request")
        r = await http.get("/v1/audit/edges/mt-1/checkpoints", params={"covering_seq": "9223372036854775807"})
        assert (r.status_code, r.json()["error"]["code"]) == (404, "no_covering_checkpoint")
        r = await http.get("/nope")
        assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
        r = await http.delete("/v1/tokens")
        assert (r.status_code, r.json()["error"]["code"]) == (405, "method_not_allowed")
        assert "POST" in r.headers["allow"]
        r = await http.post("/v1/tokens", content=b"sub=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert (r.status_code, r.json()["error"]["code"]) == (415, "unsupported_media_type")
        r = await http.post("/v1/tokens", content=b"{nope", headers={"Content-Type": "application/json"})
        assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed_json")


async def test_a_bug_answers_500_in_the_envelope(cp, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from control_plane.http import errors
    from tests.edge.test_hostile import _Log

    monkeypatch.setattr(errors, "log", log := _Log())  # rendering the traceback would cost seconds

    cp.app.state.services.registry.list = lambda *a, **k: 1 / 0  # type: ignore[method-assign]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=cp.app, raise_app_exceptions=False),
                                 base_url="http://cp",
                                 headers={"Authorization": f"Bearer {token(cp, 'ops', 'operator', '*')}"}) as http:
        r = await http.get("/v1/edges")
    assert (r.status_code, r.json()["error"]["code"]) == (500, "internal_error")
    assert log.errors == ["unhandled error"]


def test_an_entry_with_an_integer_the_database_cannot_hold_is_malformed_not_a_poison_batch() -> None:
    import json

    from contract import journal as J
    from contract import sync as S
    from control_plane.adapters.nats.bus import Bus
    from control_plane.adapters.nats.pull import Delivery

    def delivery(data: dict) -> Delivery:
        e = J.make_entry(1, 1, "deposit.requested", data, J.GENESIS_PREV)
        return Delivery(S.journal_subject("mt-1").encode(), b"", json.dumps(e).encode())

    ok = {"deposit_id": "d", "player": "p", "amount": 9_223_372_036_854_775_807, "currency": "EUR"}
    batch, _, malformed = Bus._parse_entries([delivery(ok), delivery({**ok, "amount": 10**30}),
                                              delivery({**ok, "amount": -(2**63) - 1})])
    assert [e.data["amount"] for _, e in batch] == [ok["amount"]]
    assert len(malformed) == 2 and all("64 bits" in why for _, why in malformed)


async def test_concurrent_bootstrap_mints_open_one_door(make_cp) -> None:  # type: ignore[no-untyped-def]
    """Two replicas (own engines, one database), several bootstrap mints released at once:
    exactly one operator is minted, every other gets bootstrap_closed."""
    import asyncio
    import threading

    from control_plane.adapters.db.engine import make_engine
    from control_plane.services.tokens import MintRefused, TokenIssuer

    cp = await make_cp(None)  # creates the schema
    issuers = [TokenIssuer(make_engine(str(cp.engine.url.render_as_string(hide_password=False))),
                           cp.signing_key, 3600) for _ in range(2)]
    go = threading.Barrier(8)
    outcomes: list[str] = []

    def mint(i: int) -> None:
        go.wait()
        try:
            issuers[i % 2].mint(None, f"op{i}", "operator", "*", None)
            outcomes.append("minted")
        except MintRefused as err:
            outcomes.append(err.code)

    threads = [threading.Thread(target=mint, args=(i,)) for i in range(8)]

    def run_all() -> None:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)

    await asyncio.to_thread(run_all)  # the control plane's own loop keeps running meanwhile
    for issuer in issuers:
        issuer.engine.dispose()
    assert sorted(outcomes) == ["bootstrap_closed"] * 7 + ["minted"], outcomes
