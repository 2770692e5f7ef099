"""What a PromQL expression reads: metric names and, per metric, the labels it relies on.

Parsed with promql-parser (the Prometheus grammar), not regular expressions. A metric "relies on"
a label when a matcher names it or an enclosing aggregation groups by it (`sum by (le, edge)`);
target labels that Prometheus adds at scrape time (`instance`, `job`) are not the exporter's.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import promql_parser as P
import yaml

TARGET_LABELS = {"instance", "job"}
# Series Prometheus makes itself, never exported by a service.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def references(expr: str) -> dict[str, set[str]]:
    """{metric name: labels relied on} for one expression."""
    found: dict[str, set[str]] = defaultdict(set)

    def walk(node: object, grouping: frozenset[str]) -> None:
        if isinstance(node, P.VectorSelector):
            labels = {m.name for m in node.matchers.matchers if m.name != "__name__"}
            found[node.name] |= (labels | grouping) - TARGET_LABELS
            return
        if isinstance(node, P.MatrixSelector):
            walk(node.vector_selector, grouping)
            return
        if isinstance(node, P.AggregateExpr):
            mod = node.modifier
            inner = grouping
            if mod is not None and mod.type == P.AggModifierType.By:
                inner = frozenset(mod.labels)
            walk(node.expr, inner)
            if node.param is not None:
                walk(node.param, grouping)
            return
        if isinstance(node, P.BinaryExpr):
            walk(node.lhs, grouping)
            walk(node.rhs, grouping)
            return
        if isinstance(node, P.Call):
            for arg in node.args:
                walk(arg, grouping)
            return
        for attr in ("expr",):  # ParenExpr, UnaryExpr, SubqueryExpr
            child = getattr(node, attr, None)
            if child is not None:
                walk(child, grouping)

    walk(P.parse(expr), frozenset())
    return dict(found)


def family(name: str, known: set[str] | frozenset[str] = frozenset()) -> str:
    """The exposition family a series belongs to: histogram parts folded (`x_bucket` -> `x`),
    unless the name is itself a known family (Litestream's counter `litestream_sync_error_count`)."""
    if name in known:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def rule_references(rules_file: Path) -> dict[str, dict[str, set[str]]]:
    """{alert: {metric: labels}} for every rule of a Prometheus rules file."""
    doc = yaml.safe_load(rules_file.read_text())
    return {r["alert"]: references(r["expr"]) for g in doc["groups"] for r in g["rules"]}
