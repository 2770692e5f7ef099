"""Anti-money-laundering thresholds both sides apply, per currency, in integer minor units.

- CDD (customer due diligence): linked operations of one player within `CDD_WINDOW_S` reaching
  the threshold. EUR 2,000 (AMLD4 art. 11(d), gambling services); CAD 10,000 within 24 h
  (FINTRAC: large cash transactions and casino disbursements, PCMLTFR s. 84/85).
- CTR (currency transaction report): cash in + out above USD 10,000 in one gaming day,
  aggregated (31 CFR 1021.311/313).
- SAR attention level: USD 5,000 (31 CFR 1021.320); amounts just under a threshold, repeated,
  are structuring.
A currency without an entry has no such threshold: amounts are never compared across currencies.
"""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

CDD_THRESHOLD: Mapping[str, int] = MappingProxyType({"EUR": 200_000, "CAD": 1_000_000})
CDD_WINDOW_S = 24 * 3600
CTR_THRESHOLD: Mapping[str, int] = MappingProxyType({"USD": 1_000_000})
SAR_THRESHOLD: Mapping[str, int] = MappingProxyType({"USD": 500_000})


def cdd_threshold(currency: str) -> int | None:
    return CDD_THRESHOLD.get(currency)
