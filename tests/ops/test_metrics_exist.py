"""Every metric an alert reads is exported by the running services, with the labels it relies on.

The rule expressions are parsed as PromQL (tests/ops/promql.py); the services are the real ones
(tests/ops/scrape.py). Series Prometheus makes itself (`up`) are not asked of the services.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from contract.kinds import JOURNAL_KINDS
from tests.ops.promql import SYNTHETIC, rule_references
from tests.ops.scrape import UNSAMPLED_OK, Scrape

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "ops" / "prometheus" / "alerts.yml"


def missing(scrape: Scrape, refs: dict[str, set[str]]) -> list[str]:
    """What of `refs` ({series: labels}) the scrape does not show."""
    problems = []
    for series, labels in refs.items():
        if series in SYNTHETIC:
            continue
        if series in scrape.samples:
            other = labels - scrape.samples[series]
            if other:
                problems.append(f"{series} has no label(s) {sorted(other)} (exported: {sorted(scrape.samples[series])})")
        elif series in scrape.declared and not labels:
            continue  # declared, no samples yet (e.g. per-viewer gauges with no viewer): enough when no label is relied on
        else:
            problems.append(f"{series} is not exported" + (" with samples" if series in scrape.declared else ""))
    return problems


@pytest.mark.timeout(400)
def test_every_metric_an_alert_reads_is_exported(scraped: Scrape) -> None:
    problems = [f"{alert}: {p}" for alert, refs in rule_references(RULES).items() for p in missing(scraped, refs)]
    assert not problems, "\n".join(problems)
    unsampled = {s for refs in rule_references(RULES).values() for s in refs
                 if s not in scraped.samples and s not in SYNTHETIC}
    assert unsampled <= UNSAMPLED_OK, unsampled


def test_the_check_bites() -> None:
    """A rule on a metric nobody exports, or on a label a metric lacks, is reported."""
    s = Scrape(samples={"casino_bets_total": {"table", "result"}}, declared={"casino_bets_total", "media_viewers"})
    assert missing(s, {"casino_bets_total": {"result"}, "media_viewers": set()}) == []
    assert missing(s, {"casino_bets_total": {"edge"}})[0].startswith("casino_bets_total has no label(s) ['edge']")
    assert missing(s, {"casino_replica_lag_seconds": set()}) == ["casino_replica_lag_seconds is not exported"]
    assert missing(s, {"media_viewers": {"rung"}}) == ["media_viewers is not exported with samples"]


def test_the_running_edges_journal_only_known_kinds(scraped: Scrape) -> None:
    assert scraped.journal_kinds, "nothing journaled"
    assert scraped.journal_kinds <= JOURNAL_KINDS, scraped.journal_kinds - JOURNAL_KINDS
