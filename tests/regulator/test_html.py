"""The regulator view's rendering: columns say what they hold (a count ending in "ts" is a count),
money in its currency's ISO 4217 exponent, everything escaped, the round view extensible."""
from __future__ import annotations

from contract import money
from edge_agent.regulator import html as H

IDENT = {"edge_id": "mt-1", "jurisdiction": "MT", "regulator": "mga-1", "currency": "EUR"}


def test_money_follows_the_currency_exponent() -> None:
    assert money.format_minor(350_000, "EUR") == "3,500.00"
    assert money.format_minor(350_000, "JPY") == "350,000"
    assert money.format_minor(-1_234, "KWD") == "-1.234"
    assert money.format_minor(5, "CAD") == "0.05"
    assert money.exponent("clf") == 4 and money.exponent("XYZ") == 2


def test_a_count_of_bets_is_not_a_timestamp_and_refunds_show_in_their_currency() -> None:
    voids = [{"seq": 9, "ts": 1_764_000_000_123, "table_id": "t<1>", "chain_id": "c", "n": 3, "reason": "x",
              "bets": 2, "refunded": 1_500}]
    page = H.voids_page({**IDENT, "currency": "JPY", "voids": voids})
    assert "<td>2</td>" in page and "1970" not in page
    assert "<td>1,500</td>" in page  # yen have no minor unit
    assert "2025-11-24 16:00:00.123Z" in page
    assert "t&lt;1&gt;" in page and "t<1>" not in page


def test_rows_carry_their_own_currency() -> None:
    rows = [{"player_id": "p", "player": "psn", "kyc": "verified", "flag": "cdd_threshold_24h", "seq": 1,
             "ts": 0, "amount_24h": 1_000_000, "currency": "CAD", "needs_action": False}]
    page = H.aml_page({**IDENT, "currency": "CAD", "cdd_threshold": 1_000_000,
                       "flags": [{"player_id": "p", "player": "psn", "kyc": "verified", "flags": rows}]})
    assert "10,000.00 CAD" in page and "<td>10,000.00</td>" in page


def test_round_view_has_a_block_for_evidence() -> None:
    from jinja2 import ChoiceLoader, DictLoader

    extra = DictLoader({"with_video.html": '{% extends "round.html" %}'
                        '{% block evidence %}<video src="{{ d.video }}"></video>{% endblock %}'})
    env = H._env.overlay(loader=ChoiceLoader([extra, H._env.loader]))
    d = {**IDENT, "table_id": "roulette-1", "chain_id": "c", "n": 1, "status": "voided", "reason": "r",
         "commitment": "00", "chain_length": 10, "verification": {"ok": True}, "total_staked": 0,
         "total_paid": 0, "bets": [], "entries": [], "video": "/clip?a=<b>"}
    page = env.get_template("with_video.html").render(title="Round", ident=d, currency="EUR", d=d, bets=[])
    assert '<video src="/clip?a=&lt;b&gt;"></video>' in page and "Void reason" in page
