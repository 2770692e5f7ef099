"""Server-rendered HTML for the regulator view: Jinja2 templates (`templates/`), autoescaped, no
scripts, no external CDN. Every column says what it holds (a time, money, JSON) — nothing is
guessed from a key's name — and money is shown in its currency's minor-unit exponent (ISO 4217,
`contract.money`).
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from contract.money import format_minor

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{background:#1d2b3a;color:#fff;padding:10px 20px}header a{color:#cfe3ff;margin-right:14px}
main{padding:16px 20px}table{border-collapse:collapse;background:#fff;margin:8px 0 18px;width:100%}
th,td{border:1px solid #d9dde3;padding:4px 8px;text-align:left;vertical-align:top}th{background:#eef1f5}
code,.mono{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
.ok{color:#0a7a2f;font-weight:600}.bad{color:#b00020;font-weight:600}.muted{color:#68727d}
pre{background:#fff;border:1px solid #d9dde3;padding:8px;overflow:auto;font-size:12px}
"""

NAV = [("/regulator/", "Summary"), ("/regulator/rounds", "Rounds"), ("/regulator/players", "Players"),
       ("/regulator/voids", "Voids"), ("/regulator/config", "Configuration"), ("/regulator/aml", "KYC/AML"),
       ("/regulator/access-log", "Access log")]


def ts(v: Any) -> str:
    """Unix milliseconds as UTC, to the millisecond."""
    if not isinstance(v, int) or isinstance(v, bool):
        return ""
    return dt.datetime.fromtimestamp(v / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def money(v: Any, currency: str) -> str:
    """Integer minor units in the currency's exponent; anything else as it is."""
    if isinstance(v, int) and not isinstance(v, bool):
        return format_minor(v, currency)
    return "" if v is None else str(v)


def _json(v: Any) -> str:
    return json.dumps(v, sort_keys=True)


LINKS = {
    "round": lambda r: f"/regulator/rounds/{quote(r['table_id'])}/{quote(r['chain_id'])}/{r['n']}",
    "player": lambda r: f"/regulator/players/{quote(r['player'] if 'player' in r else r['pseudonym'])}",
}

_env = Environment(loader=PackageLoader("edge_agent.regulator", "templates"),
                   autoescape=select_autoescape(default=True, default_for_string=True),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_env.filters.update(ts=ts, money=money, tojson_sorted=_json)
_env.globals.update(css=CSS, nav=NAV, links=LINKS)


def render(template: str, title: str, ident: dict[str, Any] | None = None, **ctx: Any) -> str:
    """A page: `ident` (edge, jurisdiction, regulator, currency) is shown in the header when signed in."""
    currency = (ident or {}).get("currency") or "EUR"
    return _env.get_template(template).render(title=title, ident=ident, currency=currency, d=ident or {}, **ctx)


def login_page(message: str = "") -> str:
    return render("login.html", "Regulator sign-in", message=message)


def error_page(status: int, code: str, message: str) -> str:
    return render("error.html", f"{status} {code}", message=message)


def summary_page(d: dict[str, Any]) -> str:
    tables = [{**t, "rules_version": t["rules"].get("version"), "round_n": (t["round"] or {}).get("n")}
              for t in d["tables"]]
    kinds = [{"kind": k, "count": v} for k, v in sorted(d["entries_by_kind"].items())]
    return render("summary.html", f"Edge {d['edge_id']} ({d['jurisdiction']})", d, tables=tables, kinds=kinds)


def rounds_page(d: dict[str, Any]) -> str:
    return render("rounds.html", "Rounds", d)


def round_page(d: dict[str, Any]) -> str:
    pays = {p["bet_id"]: p["payout"] for p in d.get("payouts", [])}
    bets = [{**b, "payout": pays.get(b["bet_id"])} for b in d["bets"]]
    return render("round.html", f"Round {d['table_id']} / {d['chain_id']} / {d['n']}", d, bets=bets)


def players_page(d: dict[str, Any]) -> str:
    return render("players.html", "Players", d)


def player_page(d: dict[str, Any]) -> str:
    limits = [{"limit": k, **v} for k, v in d["limits"]["limits"].items()]
    bets = [{**b, "status": b["result"]["status"], "payout": b["result"].get("payout"),
             "outcome": b["result"].get("outcome")} for b in d["bets"]]
    return render("player.html", f"Player {d['player']['player_id']}", d, limits=limits, bets=bets)


def voids_page(d: dict[str, Any]) -> str:
    return render("voids.html", "Voided rounds", d)


def config_page(d: dict[str, Any]) -> str:
    return render("config.html", "Configuration changes", d)


def aml_page(d: dict[str, Any]) -> str:
    rows = [{"player_id": x["player_id"], "player": x["player"], "kyc": x["kyc"], **f} for x in d["flags"]
            for f in x["flags"]]
    return render("aml.html", "KYC / AML flags", d, rows=rows)


def access_page(d: dict[str, Any]) -> str:
    return render("access.html", "Regulator access log", d)
