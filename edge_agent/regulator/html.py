"""Server-rendered HTML for the regulator view: no scripts, no external CDN, everything escaped."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from html import escape
from typing import Any
from urllib.parse import quote

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


def e(v: Any) -> str:
    return escape("" if v is None else str(v))


def ts(v: Any) -> str:
    if not isinstance(v, int):
        return ""
    return dt.datetime.fromtimestamp(v / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def money(v: Any) -> str:
    return f"{v / 100:,.2f}" if isinstance(v, int) else e(v)


def layout(title: str, body: str, ident: dict[str, Any] | None = None) -> str:
    nav = "".join(f'<a href="{h}">{e(t)}</a>' for h, t in NAV) if ident else ""
    who = (f'<span class="muted">edge {e(ident.get("edge_id"))} · {e(ident.get("jurisdiction"))} · '
           f'{e(ident.get("regulator"))}</span> <form method="post" action="/regulator/logout" '
           f'style="display:inline"><button>Log out</button></form>') if ident else ""
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{e(title)}</title>"
            f"<meta name=viewport content='width=device-width'><style>{CSS}</style></head><body>"
            f"<header><strong>Regulator inspection</strong> {nav} {who}</header><main><h1>{e(title)}</h1>"
            f"{body}</main></body></html>")


def table(rows: Iterable[dict[str, Any]], cols: list[tuple[str, str]], links: dict[str, Any] | None = None) -> str:
    rows = list(rows)
    if not rows:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{e(label)}</th>" for _, label in cols)
    out = []
    for r in rows:
        cells = []
        for key, _ in cols:
            v = r.get(key)
            if key.endswith("ts"):
                s = e(ts(v))
            elif key in ("amount", "balance", "refunded", "payout", "amount_24h"):
                s = e(money(v))
            elif isinstance(v, (dict, list)):
                s = f"<code>{e(json.dumps(v, sort_keys=True))}</code>"
            else:
                s = e(v)
            if links and key in links:
                s = f'<a href="{e(links[key](r))}">{s}</a>'
            cells.append(f"<td>{s}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(out)}</table>"


def _round_link(r: dict[str, Any]) -> str:
    return f"/regulator/rounds/{quote(r['table_id'])}/{quote(r['chain_id'])}/{r['n']}"


def login_page(message: str = "") -> str:
    msg = f'<p class="bad">{e(message)}</p>' if message else ""
    return layout("Regulator sign-in", msg + """
<form method="post" action="/regulator/login"><p>Paste your regulator token (issued by the
control plane for this jurisdiction):</p><textarea name="token" rows="5" cols="90" required></textarea>
<p><button type="submit">Sign in</button></p></form>""")


def error_page(status: int, code: str, message: str) -> str:
    return layout(f"{status} {code}", f"<p>{e(message)}</p><p><a href='/regulator/login'>Sign in</a></p>")


def summary_page(d: dict[str, Any]) -> str:
    head = d["head"]
    cp = d.get("last_checkpoint")
    body = (f"<p>Journal head: seq <b>{e(head['seq'])}</b>, hash <code>{e(head['hash'])}</code>, "
            f"{e(ts(head['ts']))}</p><p>Rounds settled {e(d['rounds']['settled'])}, voided "
            f"{e(d['rounds']['voided'])}; players {e(d['players'])}.</p>")
    body += ("<p>Last signed checkpoint: size <b>" + e(cp["size"]) + "</b> root <code>" + e(cp["root"]) +
             "</code> " + e(ts(cp["ts"])) + "</p>") if cp else "<p class=muted>No checkpoint published yet.</p>"
    body += "<h2>Tables</h2>" + table(
        [{**t, "rules_version": t["rules"].get("version"), "round_n": (t["round"] or {}).get("n")} for t in d["tables"]],
        [("table_id", "table"), ("game", "game"), ("rules_version", "rules"), ("enabled", "enabled"),
         ("live", "live"), ("round_n", "round")])
    body += "<h2>Journal entries by kind</h2>" + table(
        [{"kind": k, "count": v} for k, v in sorted(d["entries_by_kind"].items())], [("kind", "kind"), ("count", "count")])
    body += ('<h2>Export</h2><form method="get" action="/regulator/api/export">from seq <input name="from_seq" '
             'size=8> to seq <input name="to_seq" size=8> <button>Download bundle (zip)</button></form>'
             '<p class=muted>Verify offline with <code>edge-agent verify DIR</code> or docs/REGULATORS.md.</p>')
    return layout(f"Edge {d['edge_id']} ({d['jurisdiction']})", body, d)


def rounds_page(d: dict[str, Any]) -> str:
    return layout("Rounds", table(d["rounds"], [("table_id", "table"), ("chain_id", "chain"), ("n", "n"),
                                                ("game", "game"), ("status", "status"), ("reason", "reason"),
                                                ("first_seq", "first seq"), ("last_seq", "last seq")],
                                  {"n": _round_link}), d)


def round_page(d: dict[str, Any]) -> str:
    v = d["verification"]
    checks = "".join(f"<li>{e(k)}: <span class={'ok' if ok else 'bad'}>{'yes' if ok else 'NO'}</span></li>"
                     for k, ok in v.items() if k != "ok")
    body = (f"<p>Status <b>{e(d['status'])}</b> · game {e(d.get('game', ''))} · rules {e(d.get('rules_version'))} · "
            f"opened {e(ts(d.get('opened_ts')))} · ended {e(ts(d.get('ended_ts')))}</p>"
            f"<p>Commitment (seed 0) <code>{e(d['commitment'])}</code> · chain length {e(d['chain_length'])}</p>")
    if d["status"] == "settled":
        body += (f"<p>Server seed <code>{e(d['server_seed'])}</code><br>Client seed <code>{e(d['client_seed'])}</code>"
                 f"<br>Outcome <code>{e(json.dumps(d['outcome']))}</code></p>")
    elif d["status"] == "voided":
        body += f"<p>Void reason <b>{e(d.get('reason'))}</b></p>"
    body += video_block(d.get("video"))
    body += f"<h2>Re-check</h2><ul>{checks}</ul><p class={'ok' if v['ok'] else 'bad'}>" \
            f"{'All checks hold' if v['ok'] else 'A check FAILED'}</p>"
    pays = {p["bet_id"]: p["payout"] for p in d.get("payouts", [])}
    bets = [{**b, "payout": pays.get(b["bet_id"])} for b in d["bets"]]
    body += f"<h2>Bets</h2><p>Total staked {money(d['total_staked'])}, paid {money(d['total_paid'])}</p>" + table(
        bets, [("bet_id", "bet"), ("player_id", "player id"), ("player", "pseudonym"), ("spot", "spot"),
               ("amount", "amount"), ("player_seed", "player seed"), ("payout", "payout")],
        {"player_id": lambda r: f"/regulator/players/{quote(r['player'])}"})
    body += "<h2>Journal entries</h2>" + "".join(f"<pre>{e(json.dumps(x, sort_keys=True))}</pre>" for x in d["entries"])
    return layout(f"Round {d['table_id']} / {d['chain_id']} / {d['n']}", body, d)


def video_block(v: dict[str, Any] | None) -> str:
    """The round's clip (edge_agent/evidence): a player and a download link, or why there is none."""
    if v is None:
        return "<h2>Video</h2><p class=muted>No clip was journaled for this round.</p>"
    if not v["kept"]:
        return (f"<h2>Video</h2><p class=muted>Clip deleted at the end of its retention period; its SHA-256 "
                f"stays in the journal: <code>{e(v['sha256'])}</code></p>")
    return (f'<h2>Video</h2><video id=round-video controls preload=metadata width=640 src="{e(v["url"])}"></video>'
            f'<p><a href="{e(v["url"])}?download=1">Download the clip</a> ({e(v["bytes"])} bytes) · SHA-256 '
            f"<code>{e(v['sha256'])}</code> (the <code>round.video</code> entry below)</p>")


def players_page(d: dict[str, Any]) -> str:
    return layout("Players", table(d["players"], [
        ("player_id", "player id"), ("display_name", "name"), ("email", "email"), ("birth_date", "birth date"),
        ("address", "address"), ("kyc", "KYC"), ("balance", "balance"), ("excluded", "excluded"),
        ("on_break", "on break"), ("pseudonym", "pseudonym")],
        {"player_id": lambda r: f"/regulator/players/{quote(r['pseudonym'])}"}), d)


def player_page(d: dict[str, Any]) -> str:
    p, w = d["player"], d["wallet"]
    body = table([p], [("player_id", "player id"), ("display_name", "name"), ("email", "email"),
                       ("birth_date", "birth date"), ("address", "address"), ("created_ts", "registered"),
                       ("pseudonym", "pseudonym")])
    body += (f"<p>KYC <b>{e(d['kyc']['status'])}</b> · balance {money(w['balance'])} · in play {money(w['in_play'])}"
             f" · pending withdrawal {money(w['pending_withdrawal'])}</p>")
    body += "<h2>AML flags</h2>" + table(d["aml_flags"], [("flag", "flag"), ("seq", "seq"), ("ts", "ts"),
                                                          ("amount_24h", "24 h amount"), ("needs_action", "action")])
    lim = d["limits"]
    body += "<h2>Limits now</h2>" + table([{"limit": k, **v} for k, v in lim["limits"].items()],
                                          [("limit", "limit"), ("amount", "amount"), ("pending_amount", "pending"),
                                           ("pending_effective_ts", "pending from")])
    body += "<h2>Limit history</h2>" + table(d["limit_history"], [("seq", "seq"), ("ts", "ts"), ("limit", "limit"),
                                             ("period", "period"), ("amount", "amount"), ("effective_ts", "effective")])
    body += "<h2>Breaks and exclusions</h2>" + table(d["exclusions"], [
        ("seq", "seq"), ("ts", "ts"), ("kind", "kind"), ("duration", "duration"), ("until_ts", "until"),
        ("origin", "origin")])
    body += "<h2>KYC history</h2>" + table(d["kyc"]["history"], [("seq", "seq"), ("ts", "ts"), ("status", "status"),
                                                                ("reference", "reference")])
    body += "<h2>Payments</h2>" + table(d["payments"], [("seq", "seq"), ("ts", "ts"), ("deposit_id", "deposit"),
                                        ("withdrawal_id", "withdrawal"), ("amount", "amount"), ("reason", "reason")])
    body += "<h2>Sessions</h2>" + table(d["sessions"], [("seq", "seq"), ("ts", "ts"), ("session_id", "session"),
                                                        ("reason", "end reason")])
    body += "<h2>Bets (latest 100)</h2>" + table(
        [{**b, "status": b["result"]["status"], "payout": b["result"].get("payout"),
          "outcome": b["result"].get("outcome")} for b in d["bets"]],
        [("seq", "seq"), ("ts", "ts"), ("bet_id", "bet"), ("table_id", "table"), ("n", "n"), ("spot", "spot"),
         ("amount", "amount"), ("status", "result"), ("outcome", "outcome"), ("payout", "payout")],
        {"n": _round_link})
    return layout(f"Player {p['player_id']}", body, d)


def voids_page(d: dict[str, Any]) -> str:
    return layout("Voided rounds", table(d["voids"], [
        ("seq", "seq"), ("ts", "ts"), ("table_id", "table"), ("chain_id", "chain"), ("n", "n"), ("reason", "reason"),
        ("bets", "bets"), ("refunded", "refunded")], {"n": _round_link}), d)


def config_page(d: dict[str, Any]) -> str:
    return layout("Configuration changes", table(d["changes"], [
        ("seq", "seq"), ("ts", "ts"), ("kind", "kind"), ("table_id", "table"), ("version", "rules"),
        ("limits", "limits"), ("enabled", "enabled"), ("live", "feed live"), ("reason", "reason"), ("by", "by"),
        ("commitment", "seed commitment")]), d)


def aml_page(d: dict[str, Any]) -> str:
    rows = [{"player_id": x["player_id"], "player": x["player"], "kyc": x["kyc"], **f} for x in d["flags"]
            for f in x["flags"]]
    return layout("KYC / AML flags", f"<p class=muted>CDD threshold {money(d['cdd_threshold'])} in 24 h "
                  "(AMLD4 art. 11(d)).</p>" + table(rows, [
                      ("player_id", "player id"), ("kyc", "KYC"), ("flag", "flag"), ("seq", "seq"), ("ts", "ts"),
                      ("amount_24h", "24 h amount"), ("needs_action", "needs action")],
                      {"player_id": lambda r: f"/regulator/players/{quote(r['player'])}"}), d)


def access_page(d: dict[str, Any]) -> str:
    return layout("Regulator access log", table(d["queries"], [
        ("seq", "seq"), ("ts", "ts"), ("regulator", "regulator"), ("jurisdiction", "jur"), ("route", "route"),
        ("params", "params"), ("status", "status")]), d)
