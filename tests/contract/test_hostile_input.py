"""Issue 15 at the contract: exact spot sets, records split on \\n only, bounded integers in
commands, token lifetimes by role, and who may mint which token (the escalation matrix)."""
from __future__ import annotations

import json
import time

import pytest
from pydantic import ValidationError

from contract import fairness, tokens
from contract import journal as J
from contract import sync as S
from contract.bounds import INT64_MAX, MAX_MONEY, first_unbounded
from contract.canonical import canonical_json
from edge_agent.sync.nats_auth import edge_permissions

P = tokens.Principal


@pytest.mark.parametrize("spot", ["red\n", "straight:7\n", "straight:07", "straight:37", "Red", "red ", "\nred",
                                  "dozen:0", "column:4", "straight:\u0667", "tie\n", 7, None, ["red"]])
def test_spots_outside_the_game_set_are_invalid(spot):
    assert not fairness.valid_spot(fairness.ROULETTE, spot)
    assert not fairness.valid_spot(fairness.BACCARAT, spot)


def test_every_listed_spot_is_valid_and_payable():
    for spot in fairness.roulette_spots():
        assert fairness.valid_spot(fairness.ROULETTE, spot)
        assert fairness.payout(fairness.ROULETTE, spot, 100, {"number": 17}) >= 0
    for spot in fairness.BACCARAT_SPOTS:
        assert fairness.payout(fairness.BACCARAT, spot, 100, {"winner": "tie"}) >= 0


def test_canonical_form_keeps_line_separators_and_readers_split_on_newline_only():
    entries = [J.make_entry(1, 1, "x", {"s": "a\u2028b\u2029c\u0085d\re\nf"}, J.GENESIS_PREV)]
    entries.append(J.make_entry(2, 2, "x", {"s": "\u2028"}, entries[0]["hash"]))
    text = "".join(J.entry_line(e) + "\n" for e in entries)
    # The contract's form, unchanged: json.dumps(..., ensure_ascii=False) leaves these as they are.
    assert canonical_json({"s": "\u2028"}) == json.dumps({"s": "\u2028"}, ensure_ascii=False,
                                                         separators=(",", ":")).encode()
    assert len(text.splitlines()) > 2  # what the old reader did: an entry cut in pieces
    assert J.split_records(text) == [J.entry_line(e) for e in entries]
    assert list(J.parse_jsonl(text)) == entries
    assert J.check_chain(J.parse_jsonl(text)) is None


def test_split_records_keeps_empty_records_but_the_tail():
    assert J.split_records("a\n\nb\n") == ["a", "", "b"]
    assert J.split_records("a") == ["a"]
    assert J.split_records("") == []


def test_first_unbounded_finds_integers_past_64_bits():
    assert first_unbounded({"a": [1, {"b": INT64_MAX}]}) is None
    assert first_unbounded({"a": [1, {"b": INT64_MAX + 1}]}) == INT64_MAX + 1
    assert first_unbounded([-(2**63) - 1]) == -(2**63) - 1
    assert first_unbounded(True) is None


@pytest.mark.parametrize("raw", [
    {"amount": 10**30}, {"amount": MAX_MONEY + 1}, {"amount": "500"}, {"amount": True}, {"amount": 5.0},
    {"amount": 0}, {"ts": 2**63},
])
def test_commands_refuse_integers_out_of_bounds_and_coercions(raw):
    base = {"type": "deposit.credit", "id": "c1", "ts": 0, "deposit_id": "d", "player": "p", "amount": 500,
            "currency": "EUR"}
    S.parse_command(json.dumps(base))
    with pytest.raises(ValidationError):
        S.parse_command(json.dumps({**base, **raw}))


def test_edge_ids_for_nats_permissions_match_exactly():
    edge_permissions("mt-1")
    for bad in ("mt-1\n", "mt.1", "mt-*", "MT-1", ""):
        with pytest.raises(ValueError):
            edge_permissions(bad)


# --- token lifetimes -----------------------------------------------------------------------------

def test_token_lifetime_is_capped_by_role():
    key = tokens.new_signing_key()
    pem = tokens.public_pem(key)
    for role, cap in tokens.MAX_TTL_S.items():
        p = tokens.verify(pem, tokens.issue(key, "s", role, "MT", ttl_s=cap))  # type: ignore[arg-type]
        assert p.role == role
        with pytest.raises(ValueError):
            tokens.issue(key, "s", role, "MT", ttl_s=cap + 1)  # type: ignore[arg-type]
    import jwt
    now = int(time.time())
    forged_long = jwt.encode({"sub": "s", "role": "player", "jur": "MT", "iat": now - 10,
                              "exp": now + 31 * 365 * 86400, "iss": tokens.ISSUER}, key, algorithm="EdDSA")
    with pytest.raises(tokens.TokenError, match="lifetime"):
        tokens.verify(pem, forged_long)
    # an iat far in the past cannot stretch the window either
    backdated = jwt.encode({"sub": "s", "role": "player", "jur": "MT", "iat": now - 10**9,
                            "exp": now + 10**9, "iss": tokens.ISSUER}, key, algorithm="EdDSA")
    with pytest.raises(tokens.TokenError):
        tokens.verify(pem, backdated)


# --- the escalation matrix: who may mint what ---------------------------------------------------------

BOOT = None
ADMIN = P("root", "admin", "*", 0)
OP_ON = P("op-on", "operator", "ON", 0)
OP_ALL = P("op-all", "operator", "*", 0)
ACC_ON = P("accounts-on", "accounts", "ON", 0)
PLAYER = P("p", "player", "ON", 0)
REG_ON = P("r", "regulator", "ON", 0)
EDGE_ON = P("e", "edge", "ON", 0)

ALLOWED = {
    # (issuer, role, jurisdiction)
    (BOOT, "admin", "*"), (BOOT, "operator", "*"), (BOOT, "operator", "ON"), (BOOT, "regulator", "ON"),
    (BOOT, "player", "ON"), (BOOT, "accounts", "ON"), (BOOT, "edge", "ON"),
    (BOOT, "operator", "MT"), (BOOT, "regulator", "MT"), (BOOT, "player", "MT"), (BOOT, "accounts", "MT"),
    (BOOT, "edge", "MT"),
    (ADMIN, "operator", "*"), (ADMIN, "operator", "ON"), (ADMIN, "regulator", "ON"), (ADMIN, "edge", "ON"),
    (ADMIN, "accounts", "ON"), (ADMIN, "operator", "MT"), (ADMIN, "regulator", "MT"), (ADMIN, "edge", "MT"),
    (ADMIN, "accounts", "MT"),
    (OP_ON, "operator", "ON"), (OP_ON, "edge", "ON"), (OP_ON, "accounts", "ON"),
    (OP_ALL, "operator", "ON"), (OP_ALL, "edge", "ON"), (OP_ALL, "accounts", "ON"),
    (OP_ALL, "operator", "MT"), (OP_ALL, "edge", "MT"), (OP_ALL, "accounts", "MT"),
    (ACC_ON, "player", "ON"),
}
ISSUERS = [BOOT, ADMIN, OP_ON, OP_ALL, ACC_ON, PLAYER, REG_ON, EDGE_ON]


@pytest.mark.parametrize("issuer", ISSUERS, ids=lambda i: "bootstrap" if i is None else f"{i.role}-{i.jurisdiction}")
@pytest.mark.parametrize("role", tokens.ROLES)
@pytest.mark.parametrize("jur", ["ON", "MT", "*"])
def test_escalation_matrix(issuer, role, jur):
    refusal = tokens.mint_refusal(issuer, role, jur)
    assert (refusal is None) == ((issuer, role, jur) in ALLOWED), refusal


def test_no_operator_mints_a_regulator_a_player_or_for_star():
    for op in (OP_ON, OP_ALL):
        for role in ("regulator", "admin", "player"):
            assert tokens.mint_refusal(op, role, "ON") is not None
        assert tokens.mint_refusal(op, "operator", "*") is not None
    assert tokens.mint_refusal(OP_ON, "operator", "MT") is not None
    assert tokens.mint_refusal(ACC_ON, "player", "MT") is not None
    assert tokens.mint_refusal(BOOT, "player", "*") is not None
