"""Read-only regulator queries over the journal and the in-country tables.

Every function takes a read-only sqlite3 connection (and, where live state helps, the casino);
they never write. They run in a worker thread with their own connection, so a long scan never
holds up the bet path. The journal has no index besides seq (every index is paid on the bet
path): player lookups scan the journal with SQLite's JSON functions, which is fine for
inspection-rate queries.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contract import aml as AML
from contract import fairness
from contract import journal as J
from contract import sync as S
from edge_agent.domain import games
from edge_agent.domain import rounds as R
from edge_agent.domain import state as ST

if TYPE_CHECKING:
    from edge_agent.casino import Casino

# AMLD4 art. 11(d): customer due diligence at EUR 2,000 in one or linked operations.
CDD_WINDOW_MS = AML.CDD_WINDOW_S * 1000
PLAYER_KINDS = (ST.PLAYER_REGISTERED, ST.PLAYER_SETTINGS, ST.SESSION_STARTED, ST.SESSION_ENDED,
                ST.LIMITS_CHANGED, S.PLAYER_EXCLUDED, S.DEPOSIT_REQUESTED, S.DEPOSIT_CREDITED,
                S.DEPOSIT_REFUSED, S.DEPOSIT_DECLINED, S.WITHDRAWAL_REQUESTED, S.WITHDRAWAL_PAID, S.WITHDRAWAL_RELEASED,
                S.KYC_REQUESTED, S.KYC_UPDATED, J.BET_PLACED)
CONFIG_KINDS = (ST.TABLE_RULES, ST.TABLE_STATUS, ST.TABLE_FEED, J.FAIRNESS_CHAIN)
MAX_LIMIT = 1000


def connect(db_path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def _entry(row: tuple[Any, ...]) -> dict[str, Any]:
    seq, ts, kind, data, prev, h = row
    return {"seq": seq, "ts": ts, "kind": kind, "data": json.loads(data), "prev": prev, "hash": h}


_COLS = "seq, ts, kind, data, prev, hash"


def entries(conn: sqlite3.Connection, *, from_seq: int = 1, to_seq: int | None = None,
            kinds: tuple[str, ...] | None = None, player: str | None = None, limit: int = 200,
            desc: bool = False) -> list[dict[str, Any]]:
    sql = f"SELECT {_COLS} FROM journal WHERE seq >= ?"
    params: list[Any] = [from_seq]
    if to_seq is not None:
        sql += " AND seq <= ?"
        params.append(to_seq)
    if kinds:
        sql += f" AND kind IN ({','.join('?' * len(kinds))})"
        params.extend(kinds)
    if player is not None:
        sql += " AND json_extract(data, '$.player') = ?"
        params.append(player)
    sql += " ORDER BY seq" + (" DESC" if desc else "") + " LIMIT ?"
    params.append(max(1, min(limit, MAX_LIMIT)))
    return [_entry(r) for r in conn.execute(sql, params)]


def head(conn: sqlite3.Connection) -> dict[str, Any]:
    row = conn.execute("SELECT seq, hash, ts FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
    return {"seq": row[0], "hash": row[1], "ts": row[2]} if row else {"seq": 0, "hash": J.GENESIS_PREV, "ts": None}


def kv(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def summary(conn: sqlite3.Connection) -> dict[str, Any]:
    counts = dict(conn.execute("SELECT kind, COUNT(*) FROM journal GROUP BY kind").fetchall())
    rounds = dict(conn.execute("SELECT status, COUNT(*) FROM rounds GROUP BY status").fetchall())
    cp = kv(conn, "checkpoint.last")
    return {
        "head": head(conn), "entries_by_kind": counts,
        "rounds": {"settled": rounds.get("settled", 0), "voided": rounds.get("voided", 0)},
        "players": conn.execute("SELECT COUNT(*) FROM players").fetchone()[0],
        "last_checkpoint": json.loads(cp) if cp else None,
    }


# --- rounds -----------------------------------------------------------------------------------

def rounds(conn: sqlite3.Connection, *, table_id: str | None = None, status: str | None = None,
           before_seq: int | None = None, limit: int = 50) -> list[dict[str, Any]]:
    sql = "SELECT table_id, chain_id, n, game, first_seq, last_seq, status, reason FROM rounds WHERE 1=1"
    params: list[Any] = []
    if table_id:
        sql += " AND table_id = ?"
        params.append(table_id)
    if status:
        sql += " AND status = ?"
        params.append(status)
    if before_seq:
        sql += " AND last_seq < ?"
        params.append(before_seq)
    sql += " ORDER BY last_seq DESC LIMIT ?"
    params.append(max(1, min(limit, MAX_LIMIT)))
    out = []
    for t, c, n, game, first, last, st, reason in conn.execute(sql, params):
        out.append({"table_id": t, "chain_id": c, "n": n, "game": game, "first_seq": first, "last_seq": last,
                    "status": st, "reason": reason})
    return out


def check_round(proof: dict[str, Any]) -> dict[str, Any]:
    """Re-run CONTRACT section 3 on a round proof: seed, client seed, outcome, payouts."""
    checks: dict[str, Any] = {}
    opened = next((e for e in proof["entries"] if e["kind"] == J.ROUND_OPENED), None)
    game = games.get(proof.get("game") or (opened["data"]["game"] if opened else ""))
    # The round as its entries record it (bets, and the play entries of games that have them).
    r = R.replay(proof["entries"], game.play_kinds, game.extra_stake)
    if proof["status"] == "settled":
        n = proof["n"]
        checks["seed_matches_commitment"] = fairness.seed_matches_commitment(
            proof["server_seed"], n, proof["commitment"]) and 1 <= n <= proof["chain_length"]
        cs = fairness.client_seed((b["bet_id"], b["player_seed"]) for b in proof["bets"])
        checks["client_seed_matches_bets"] = cs == proof["client_seed"]
        expected = game.settle(r, bytes.fromhex(proof["server_seed"]), cs) if r else None
        checks["outcome_follows_from_seeds"] = expected is not None and expected.outcome == proof["outcome"]
        want = {p["bet_id"]: p["payout"] for p in expected.payouts} if expected else None
        checks["payouts_match_paytable"] = want == {p["bet_id"]: p["payout"] for p in proof["payouts"]}
    elif proof["status"] == "voided":
        want = {b.bet_id: b.stake for b in r.bets} if r else {}
        checks["refunds_match_stakes"] = want == {x["bet_id"]: x["amount"] for x in proof["refunds"]}
    for e in proof["entries"]:
        if J.entry_hash(e["seq"], e["ts"], e["kind"], e["data"], e["prev"]) != e["hash"]:
            checks["entry_hashes"] = False
            break
    else:
        checks["entry_hashes"] = True
    checks["ok"] = all(v for v in checks.values())
    return checks


def round_detail(conn: sqlite3.Connection, proof: dict[str, Any]) -> dict[str, Any]:
    """Annotate a round proof (`Casino.round_proof`) with players, times, totals and checks."""
    table_id, chain_id, n = proof["table_id"], proof["chain_id"], proof["n"]
    players = _player_ids(conn, {e["data"]["player"] for e in proof["entries"] if e["kind"] == J.BET_PLACED})
    for b, e in zip(proof["bets"], [e for e in proof["entries"] if e["kind"] == J.BET_PLACED]):
        b["player"] = e["data"]["player"]
        b["player_id"] = players.get(b["player"])
        b["currency"] = e["data"]["currency"]
    idx = conn.execute("SELECT first_seq, last_seq, reason FROM rounds WHERE table_id=? AND chain_id=? AND n=?",
                       (table_id, chain_id, n)).fetchone()
    if idx:
        opened = conn.execute("SELECT ts, data FROM journal WHERE seq = ?", (idx[0],)).fetchone()
        ended = conn.execute("SELECT ts FROM journal WHERE seq = ?", (idx[1],)).fetchone()
        proof["opened_ts"], proof["ended_ts"] = opened[0], ended[0]
        proof["rules_version"] = json.loads(opened[1]).get("rules_version")
        proof["first_seq"], proof["last_seq"] = idx[0], idx[1]
    proof["total_staked"] = sum(b["amount"] for b in proof["bets"])
    proof["total_paid"] = sum(p["payout"] for p in proof.get("payouts", [])) or sum(
        r["amount"] for r in proof.get("refunds", []))
    proof["verification"] = check_round(proof)
    return proof


# --- players ----------------------------------------------------------------------------------

def _player_ids(conn: sqlite3.Connection, psns: set[str]) -> dict[str, str]:
    if not psns:
        return {}
    ps = sorted(psns)
    rows = conn.execute(f"SELECT pseudonym, player_id FROM players WHERE pseudonym IN ({','.join('?' * len(ps))})",
                        ps).fetchall()
    return dict(rows)


def resolve_player(conn: sqlite3.Connection, ref: str) -> dict[str, Any] | None:
    """A player by pseudonym or by in-country player id: the players row (personal data)."""
    row = conn.execute("SELECT player_id, pseudonym, display_name, email, birth_date, address, created_ts "
                       "FROM players WHERE pseudonym = ? OR player_id = ?", (ref, ref)).fetchone()
    if not row:
        return None
    keys = ("player_id", "pseudonym", "display_name", "email", "birth_date", "address", "created_ts")
    return dict(zip(keys, row))


def players(conn: sqlite3.Connection, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT player_id, pseudonym, display_name, email, birth_date, address, created_ts "
                        "FROM players ORDER BY created_ts, player_id LIMIT ? OFFSET ?",
                        (max(1, min(limit, MAX_LIMIT)), max(0, offset))).fetchall()
    keys = ("player_id", "pseudonym", "display_name", "email", "birth_date", "address", "created_ts")
    return [dict(zip(keys, r)) for r in rows]


def live_player(casino: Casino, psn: str) -> dict[str, Any]:
    """What the in-memory state says of a player (call in the event-loop thread)."""
    rg = casino.state.players.get(psn)
    now = casino.clock()
    return {"kyc": casino.state.kyc.get(psn, "unverified"), "balance": casino.state.cash(psn),
            "excluded": bool(rg and rg.excluded_until > now), "on_break": bool(rg and rg.break_until > now)}


def player_bets(conn: sqlite3.Connection, psn: str, *, limit: int = 200, before_seq: int | None = None
                ) -> list[dict[str, Any]]:
    """Bets of one player, newest first, each with how its round ended and what it paid."""
    sql = (f"SELECT {_COLS} FROM journal WHERE kind = ? AND json_extract(data, '$.player') = ?"
           + (" AND seq < ?" if before_seq else "") + " ORDER BY seq DESC LIMIT ?")
    params: list[Any] = [J.BET_PLACED, psn] + ([before_seq] if before_seq else []) + [max(1, min(limit, MAX_LIMIT))]
    bets = [_entry(r) for r in conn.execute(sql, params)]
    ends: dict[tuple[str, str, int], dict[str, Any] | None] = {}
    out = []
    for e in bets:
        d = e["data"]
        key = (d["table_id"], d["chain_id"], d["n"])
        if key not in ends:
            row = conn.execute("SELECT last_seq, status, reason FROM rounds WHERE table_id=? AND chain_id=? AND n=?",
                               key).fetchone()
            end = None
            if row:
                er = conn.execute(f"SELECT {_COLS} FROM journal WHERE seq = ?", (row[0],)).fetchone()
                end = _entry(er) if er else None
            ends[key] = end
        end = ends[key]
        result: dict[str, Any] = {"status": "open"}
        if end is not None and end["kind"] == J.ROUND_SETTLED:
            pay = next((p["payout"] for p in end["data"]["payouts"] if p["bet_id"] == d["bet_id"]), None)
            result = {"status": "settled", "outcome": end["data"]["outcome"], "payout": pay, "settled_seq": end["seq"]}
        elif end is not None:
            result = {"status": "voided", "reason": end["data"]["reason"], "refund": d["amount"],
                      "voided_seq": end["seq"]}
        out.append({"seq": e["seq"], "ts": e["ts"], **{k: d[k] for k in
                    ("bet_id", "table_id", "chain_id", "n", "spot", "amount", "currency", "player_seed")},
                    "result": result})
    return out


def player_detail(conn: sqlite3.Connection, ref: str, kyc_status: str | None = None) -> dict[str, Any] | None:
    """Personal data and the journal history of one player (by pseudonym or player id)."""
    p = resolve_player(conn, ref)
    if p is None:
        return None
    psn = p["pseudonym"]
    history = entries(conn, kinds=tuple(k for k in PLAYER_KINDS if k != J.BET_PLACED), player=psn, limit=MAX_LIMIT)
    by_kind = lambda *ks: [{"seq": e["seq"], "ts": e["ts"], **e["data"]} for e in history if e["kind"] in ks]
    if kyc_status is None:
        kyc_status = next((e["data"]["status"] for e in reversed(history) if e["kind"] == S.KYC_UPDATED), "unverified")
    return {
        "player": p,
        "kyc": {"status": kyc_status, "history": by_kind(S.KYC_REQUESTED, S.KYC_UPDATED)},
        "limit_history": by_kind(ST.LIMITS_CHANGED),
        "exclusions": by_kind(S.PLAYER_EXCLUDED),
        "sessions": by_kind(ST.SESSION_STARTED, ST.SESSION_ENDED),
        "payments": by_kind(S.DEPOSIT_REQUESTED, S.DEPOSIT_CREDITED, S.DEPOSIT_REFUSED, S.DEPOSIT_DECLINED, S.WITHDRAWAL_REQUESTED,
                            S.WITHDRAWAL_PAID, S.WITHDRAWAL_RELEASED),
        "aml_flags": aml_flags_for(history, kyc_status),
        "bets": player_bets(conn, psn, limit=100),
    }


# --- voids, configuration, AML ----------------------------------------------------------------

def voids(conn: sqlite3.Connection, *, limit: int = 200) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT r.table_id, r.chain_id, r.n, r.game, r.last_seq, r.reason, j.ts, j.data "
                        "FROM rounds r JOIN journal j ON j.seq = r.last_seq WHERE r.status = 'voided' "
                        "ORDER BY r.last_seq DESC LIMIT ?", (max(1, min(limit, MAX_LIMIT)),)).fetchall()
    out = []
    for t, c, n, game, seq, reason, ts, data in rows:
        refunds = json.loads(data)["refunds"]
        out.append({"table_id": t, "chain_id": c, "n": n, "game": game, "seq": seq, "ts": ts, "reason": reason,
                    "bets": len(refunds), "refunded": sum(r["amount"] for r in refunds), "refunds": refunds})
    return out


def config_changes(conn: sqlite3.Connection, *, limit: int = 500) -> list[dict[str, Any]]:
    return [{"seq": e["seq"], "ts": e["ts"], "kind": e["kind"], **e["data"]}
            for e in entries(conn, kinds=CONFIG_KINDS, limit=limit, desc=True)]


def aml_flags_for(history: list[dict[str, Any]], kyc_status: str) -> list[dict[str, Any]]:
    """Flags for one player: KYC states that need attention; credited deposits reaching the CDD
    threshold of their currency within the window (`contract.aml`: EUR 2,000, CAD 10,000 in 24 h)
    without verified KYC or at all."""
    flags: list[dict[str, Any]] = []
    for e in history:
        if e["kind"] == S.KYC_UPDATED and e["data"]["status"] in ("rejected", "edd_required", "suspended"):
            flags.append({"flag": f"kyc_{e['data']['status']}", "seq": e["seq"], "ts": e["ts"]})
    window: dict[str, list[tuple[int, int, int]]] = {}
    flagged_until: dict[str, int] = {}
    for e in history:
        if e["kind"] != S.DEPOSIT_CREDITED:
            continue
        currency = e["data"].get("currency", "")
        threshold = AML.cdd_threshold(currency)
        if threshold is None:
            continue
        linked = [w for w in window.get(currency, []) if w[0] > e["ts"] - CDD_WINDOW_MS]
        linked.append((e["ts"], e["data"]["amount"], e["seq"]))
        window[currency] = linked
        total = sum(w[1] for w in linked)
        if total >= threshold and e["ts"] > flagged_until.get(currency, -1):
            flags.append({"flag": "cdd_threshold_24h", "seq": e["seq"], "ts": e["ts"], "amount_24h": total,
                          "currency": currency, "threshold": threshold,
                          "kyc": kyc_status, "needs_action": kyc_status != "verified"})
            flagged_until[currency] = e["ts"] + CDD_WINDOW_MS
    return flags


def aml(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    kinds = (S.KYC_UPDATED, S.DEPOSIT_CREDITED)
    rows = conn.execute(f"SELECT {_COLS} FROM journal WHERE kind IN (?, ?) ORDER BY seq", kinds).fetchall()
    per: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        e = _entry(r)
        per.setdefault(e["data"]["player"], []).append(e)
    ids = _player_ids(conn, set(per))
    out = []
    for psn, hist in per.items():
        kyc = next((e["data"]["status"] for e in reversed(hist) if e["kind"] == S.KYC_UPDATED), "unverified")
        flags = aml_flags_for(hist, kyc)
        if flags:
            out.append({"player": psn, "player_id": ids.get(psn), "kyc": kyc, "flags": flags})
    return out


def access_log(conn: sqlite3.Connection, *, limit: int = 200) -> list[dict[str, Any]]:
    return [{"seq": e["seq"], "ts": e["ts"], **e["data"]}
            for e in entries(conn, kinds=("regulator.query",), limit=limit, desc=True)]
