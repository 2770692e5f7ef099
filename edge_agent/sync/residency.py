"""The residency policy applied to journal entries as they leave the jurisdiction.

`EdgeConfig.residency` (allow_kinds, redact_fields) decides, per entry kind:
- a kind not matched by `allow_kinds` leaves with empty `data` and every field named in `redacted`;
- fields listed in `redact_fields[pattern]` for a pattern matching the kind are removed and named.
Patterns are shell-style (`fnmatch`): "*", "round.*", "bet.placed". Only top-level `data` fields.
`hash` and `prev` are always kept: the cloud checks linkage; regulators verify the hash in-country.

The payload is canonical JSON of `contract.sync.SyncedEntry` (sorted keys, no spaces). An entry the
policy does not touch is built from the journal's stored canonical `data` text without parsing it.
"""
from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any

from contract.canonical import canonical_json
from edge_agent.config import ResidencyPolicy


class ResidencyFilter:
    def __init__(self, policy: ResidencyPolicy) -> None:
        self.allow = list(policy.allow_kinds)
        self.redact = {pat: frozenset(fields) for pat, fields in policy.redact_fields.items()}
        self._rules: dict[str, tuple[bool, frozenset[str]]] = {}

    def rule(self, kind: str) -> tuple[bool, frozenset[str]]:
        """(allowed, fields to remove) for a kind; cached, kinds are few."""
        r = self._rules.get(kind)
        if r is None:
            allowed = any(fnmatchcase(kind, pat) for pat in self.allow)
            fields: set[str] = set()
            for pat, fs in self.redact.items():
                if fnmatchcase(kind, pat):
                    fields |= fs
            r = self._rules[kind] = (allowed, frozenset(fields))
        return r

    def apply(self, kind: str, data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        allowed, fields = self.rule(kind)
        if not allowed:
            return {}, sorted(data)
        if not fields:
            return data, []
        removed = sorted(f for f in data if f in fields)
        return {k: v for k, v in data.items() if k not in fields}, removed

    def payload_row(self, seq: int, ts: int, kind: str, data_text: str, prev: str, h: str) -> bytes:
        """Wire bytes of one journal row (as stored: data is canonical JSON text)."""
        allowed, fields = self.rule(kind)
        if allowed and not fields:
            return (f'{{"data":{data_text},"hash":"{h}","kind":{json.dumps(kind, ensure_ascii=False)},'
                    f'"prev":"{prev}","redacted":[],"seq":{seq},"ts":{ts}}}').encode()
        data, removed = self.apply(kind, json.loads(data_text))
        return canonical_json({"seq": seq, "ts": ts, "kind": kind, "data": data, "prev": prev, "hash": h,
                               "redacted": removed})

    def payload(self, entry: dict[str, Any]) -> bytes:
        data, removed = self.apply(entry["kind"], entry["data"])
        return canonical_json({"seq": entry["seq"], "ts": entry["ts"], "kind": entry["kind"], "data": data,
                               "prev": entry["prev"], "hash": entry["hash"], "redacted": removed})
