"""Scope: only a regulator token of this edge's jurisdiction sees anything under /regulator."""
from __future__ import annotations

import pytest

from contract import tokens
from edge_agent.regulator.access import REGULATOR_QUERY
from tests.regulator.conftest import auth, token

ROUTES = ["/regulator/api/summary", "/regulator/api/players", "/regulator/api/players/alice",
          "/regulator/api/rounds", "/regulator/api/voids", "/regulator/api/export", "/regulator/",
          "/regulator/players"]


def regulator_queries(casino):
    return [e for e in casino.store.read() if e["kind"] == REGULATOR_QUERY]


async def test_regulator_of_the_jurisdiction_is_served_and_others_are_forbidden(casino, populated, client):
    for path in ROUTES:
        r = await client.get(path, headers=auth(token("regulator", "MT")))
        assert r.status_code == 200, (path, r.text)
    for role, jur in [("regulator", "FR"), ("operator", "MT"), ("player", "MT"), ("operator", "*"), ("edge", "MT"),
                      ("regulator", "*"), ("regulator", "mt")]:
        for path in ROUTES:
            r = await client.get(path, headers=auth(token(role, jur)))  # type: ignore[arg-type]
            assert r.status_code == 403, (role, jur, path)
            assert "Alice" not in r.text and "alice@example.mt" not in r.text
            if path.startswith("/regulator/api"):
                assert r.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer " + tokens.issue(tokens.new_signing_key(), "x",
                                                                                "regulator", "MT")}])
async def test_missing_or_invalid_token_is_401(casino, client, headers):
    r = await client.get("/regulator/api/players", headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    assert "Alice" not in r.text


async def test_expired_token_is_401(casino, client):
    expired = tokens.issue(tokens.load_private(tokens.private_pem(__import__("tests.regulator.conftest",
                                                                             fromlist=["KEY"]).KEY)),
                           "mga-1", "regulator", "MT", ttl_s=-10)
    r = await client.get("/regulator/api/summary", headers=auth(expired))
    assert r.status_code == 401


async def test_denied_regulator_of_other_jurisdiction_is_journaled_but_others_are_not(casino, client):
    before = len(regulator_queries(casino))
    await client.get("/regulator/api/players", headers=auth(token("regulator", "FR", sub="cnil-7")))
    await client.get("/regulator/api/players", headers=auth(token("player", "MT", sub="p1")))
    await client.get("/regulator/api/players")
    q = regulator_queries(casino)[before:]
    assert [(e["data"]["regulator"], e["data"]["jurisdiction"], e["data"]["status"]) for e in q] == [
        ("cnil-7", "FR", 403)]
    assert q[0]["data"]["params"] == {}


async def test_html_view_login_and_cookie(casino, populated, client):
    r = await client.get("/regulator/")
    assert r.status_code == 401 and "<form" in r.text and "Alice" not in r.text
    r = await client.post("/regulator/login", content="token=" + token("operator", "MT"),
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 403
    r = await client.post("/regulator/login", content="token=" + token(),
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 303
    assert "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
    r = await client.get("/regulator/players")
    assert r.status_code == 200 and "Alice Abela" in r.text
    assert "<script" not in r.text and "http://" not in r.text and "https://" not in r.text  # no CDN, no JS
