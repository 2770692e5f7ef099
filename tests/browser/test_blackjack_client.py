"""End to end in headless Chromium on a phone-sized viewport: join the blackjack table, bet, hit or
double, see the result, and the fairness panel verifies the round (replaying the player's own
decisions) in the browser."""
from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.conftest import shot

pytestmark = pytest.mark.browser

ROUND_MS = 25_000  # betting window, decision steps and the reveal, on a slow shared machine


def test_blackjack_join_bet_decide_result_verified(page: Any, edge: Any) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    edge.fund("dora", 100_000)
    page.goto(edge.page_url("dora", table="blackjack-1"))
    page.wait_for_selector("#table-tabs button[data-table='blackjack-1'].active")
    page.wait_for_selector("#bj-panel")
    decided = None
    for _ in range(4):  # a shared blackjack deal leaves nothing to decide: play the next round
        page.wait_for_function("() => { const b = document.querySelector('[data-spot=\"hand\"]');"
                               " return b && !b.disabled; }", timeout=ROUND_MS)
        n = page.evaluate("() => window.__casino.tables.get('blackjack-1').round.n")
        page.click('[data-spot="hand"]')
        page.wait_for_selector("#bet-log li:has-text('Bet confirmed'), #bet-log li:has-text('Bet refused')",
                               timeout=5000)
        if page.evaluate("() => window.__casino.lastBet?.n") != n:
            continue  # the click met the end of the betting window
        shot(page, "bj-1-bet")
        page.wait_for_selector("#bj-shared .card", timeout=ROUND_MS)
        btn = page.wait_for_selector(".bj-act.double, .bj-act.hit, #bj-result-text", timeout=ROUND_MS)
        if btn.get_attribute("id") == "bj-result-text":
            continue
        shot(page, "bj-2-decide")
        decided = "double" if page.query_selector(".bj-act.double") else "hit"
        page.click(f".bj-act.{decided}")
        try:
            page.wait_for_selector(f"#bet-log li:has-text('{ 'Double' if decided == 'double' else 'Hit' } (step 1)')",
                                   timeout=5000)
        except PlaywrightTimeout:
            raise AssertionError(f"log: {page.inner_text('#bet-log')!r} toast: {page.inner_text('#toast')!r} "
                                 f"errors: {page.errors}") from None
        break
    assert decided, "four rounds without a decision to make"
    # The next steps: stand on whatever is offered, until the result shows.
    while not page.query_selector("#bj-result-text"):
        stand = page.query_selector(".bj-act.stand")
        if stand:
            stand.click()
        page.wait_for_timeout(200)
        page.wait_for_selector("#bj-result-text, .bj-act.stand", timeout=ROUND_MS)
    text = page.inner_text("#bj-result-text")
    assert "Dealer" in text
    mine = ("() => { const b = window.__casino.lastBet; return window.__casino.verifications.find((v) =>"
            " v.table_id === b.table_id && v.chain_id === b.chain_id && v.n === b.n); }")
    page.wait_for_function(f"() => ({mine})()?.status === 'verified'", timeout=15_000)
    page.wait_for_function("() => document.getElementById('fair-status').textContent.startsWith('verified')",
                           timeout=3_000)
    shot(page, "bj-3-verified")
    v = page.evaluate(mine)
    names = [s["name"] for s in v["steps"]]
    assert all(s["ok"] for s in v["steps"]) and "my_decisions" in names and "hands" in names, v["steps"]
    # The settled payout is the panel's, and the wallet agrees with the page.
    proof = edge.api("dora", f"/v1/tables/{v['table_id']}/rounds/{v['chain_id']}/{v['n']}")
    bet_id = page.evaluate("() => window.__casino.lastBet.bet_id")
    assert any(e["kind"] == "blackjack.decision" and e["data"]["bet_id"] == bet_id
               and e["data"]["action"] == decided for e in proof["entries"])
    page.wait_for_function("(b) => document.getElementById('balance').textContent === b",
                           arg=f"€{edge.api('dora', '/v1/wallet')['balance'] / 100:,.2f}", timeout=5000)
    # A phone screen: nothing wider than the viewport.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 391
    assert not page.errors, page.errors


def test_blackjack_reload_mid_deal_rebuilds_the_hand(page: Any, edge: Any) -> None:
    """A phone reloads the page in the middle of a deal: the hand comes back from the journal."""
    edge.fund("emil", 100_000)
    page.goto(edge.page_url("emil", table="blackjack-1"))
    page.wait_for_selector("#bj-panel")
    for _ in range(4):
        page.wait_for_function("() => { const b = document.querySelector('[data-spot=\"hand\"]');"
                               " return b && !b.disabled; }", timeout=ROUND_MS)
        page.click('[data-spot="hand"]')
        page.wait_for_selector("#bet-log li:has-text('Bet confirmed'), #bet-log li:has-text('Bet refused')",
                               timeout=5000)
        got = page.wait_for_selector(".bj-act.stand, #bj-result-text", timeout=ROUND_MS)
        if got.get_attribute("id") != "bj-result-text":
            break
    else:
        raise AssertionError("four rounds without a decision to make")
    cards = page.eval_on_selector_all("#bj-hands .bj-hand .card", "els => els.map(e => e.textContent)")
    page.reload()
    page.wait_for_selector("#bj-hands .bj-total:has-text('Your hand')", timeout=5000)
    again = page.eval_on_selector_all("#bj-hands .bj-hand .card", "els => els.map(e => e.textContent)")
    assert again[:len(cards)] == cards
    page.wait_for_selector("#bj-result-text", timeout=ROUND_MS)
    shot(page, "bj-4-reloaded")
    assert not page.errors, page.errors
