"""Money on the wire is an integer count of minor units; how many digits a currency's minor unit
has is its ISO 4217 exponent (EUR 2, JPY 0, KWD 3). This table is what both sides display by.
"""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# ISO 4217 minor-unit exponents that differ from 2 (the exponent of every other active currency
# code, EUR, USD, CAD, GBP among them).
_NOT_TWO: Mapping[str, int] = MappingProxyType({
    # no minor unit
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0, "RWF": 0,
    "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    # thousandths
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    # ten-thousandths (units of account)
    "CLF": 4, "UYW": 4,
})


def exponent(currency: str) -> int:
    """Digits after the decimal point of `currency` (ISO 4217); 2 for codes not listed otherwise."""
    return _NOT_TWO.get(currency.upper(), 2)


def format_minor(amount: int, currency: str) -> str:
    """`350000, "EUR"` -> `"3,500.00"`; `3500, "JPY"` -> `"3,500"`; `-1234, "KWD"` -> `"-1.234"`."""
    exp = exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10 ** exp)
    return f"{sign}{whole:,}" + (f".{frac:0{exp}d}" if exp else "")
