"""Export bundle -> offline verify round trip, and tampered bundles rejected with the right seq named."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contract import journal as J
from contract.bundle import JOURNAL_FILE, MANIFEST_FILE, verify_bundle
from edge_agent.audit.export import export_bundle
from edge_agent.casino import Casino
from edge_agent.cli import app as cli
from tests.regulator.conftest import auth, config, populate, token


@pytest.fixture
async def journal_db(tmp_path: Path) -> Path:
    c = Casino(config(tmp_path))
    await c.start()
    await populate(c)
    await c.stop()
    c.close()
    return tmp_path / "j.db"


def lines(bundle: Path) -> list[str]:
    return (bundle / JOURNAL_FILE).read_text().splitlines(keepends=True)


def write_lines(bundle: Path, ls: list[str]) -> None:
    (bundle / JOURNAL_FILE).write_text("".join(ls))


def seq_of(line: str) -> int:
    return json.loads(line)["seq"]


async def test_export_then_verify_round_trip(journal_db: Path, tmp_path: Path):
    m = export_bundle(journal_db, tmp_path / "b")
    assert (m.edge_id, m.jurisdiction) == ("mt-1", "MT")  # no kv identity: both from the journal itself
    report = verify_bundle(tmp_path / "b")
    assert report.ok, report.problems
    assert report.entries == m.count == m.to_seq and m.from_seq == 1
    assert report.rounds_verified >= 3 and report.rounds_voided >= 1
    ls = lines(tmp_path / "b")
    assert json.loads(ls[-1])["hash"] == m.head_hash
    for raw in ls:  # each line is the canonical form of section 2
        assert raw.rstrip("\n") == J.entry_line(json.loads(raw))


async def test_export_identity_from_kv_and_partial_ranges(journal_db: Path, tmp_path: Path):
    import sqlite3

    conn = sqlite3.connect(journal_db)
    conn.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", [("edge.id", "mt-1"), ("edge.jurisdiction", "MT")])
    conn.commit()
    conn.close()
    m = export_bundle(journal_db, tmp_path / "mid", from_seq=10, to_seq=30)
    assert (m.edge_id, m.from_seq, m.to_seq, m.count) == ("mt-1", 10, 30, 21)
    assert m.anchor == json.loads(lines(tmp_path / "mid")[0])["prev"] != J.GENESIS_PREV
    assert verify_bundle(tmp_path / "mid").ok
    full = [json.loads(x) for x in lines(tmp_path / "mid")]
    t0, t1 = full[3]["ts"], full[10]["ts"]
    m2 = export_bundle(journal_db, tmp_path / "ts", from_ts=t0, to_ts=t1)
    assert m2.from_seq <= full[3]["seq"] and m2.to_seq >= full[10]["seq"]
    got = [json.loads(x) for x in lines(tmp_path / "ts")]
    assert all(t0 <= e["ts"] <= t1 for e in got)
    assert verify_bundle(tmp_path / "ts").ok
    # the anchor is checked: a mid-range bundle claiming another anchor fails at its first entry
    man = json.loads((tmp_path / "mid" / MANIFEST_FILE).read_text())
    man["anchor"] = "ab" * 32
    (tmp_path / "mid" / MANIFEST_FILE).write_text(json.dumps(man))
    r = verify_bundle(tmp_path / "mid")
    assert not r.ok and r.first_bad_seq == 10


def _first(ls: list[str], kind: str, after: int = 0) -> int:
    return next(i for i, x in enumerate(ls) if i >= after and json.loads(x)["kind"] == kind)


async def test_one_byte_changed_is_rejected_at_that_seq(journal_db: Path, tmp_path: Path):
    export_bundle(journal_db, tmp_path / "b")
    ls = lines(tmp_path / "b")
    i = _first(ls, J.BET_PLACED)
    assert '"amount":500' in ls[i]
    ls[i] = ls[i].replace('"amount":500', '"amount":600', 1)  # one byte
    write_lines(tmp_path / "b", ls)
    r = verify_bundle(tmp_path / "b")
    assert not r.ok and r.first_bad_seq == seq_of(ls[i]) == i + 1
    assert "hash does not match" in r.problems[0].reason


async def test_one_byte_breaking_json_is_rejected_at_that_seq(journal_db: Path, tmp_path: Path):
    export_bundle(journal_db, tmp_path / "b")
    raw = bytearray((tmp_path / "b" / JOURNAL_FILE).read_bytes())
    starts = [0] + [k + 1 for k, b in enumerate(raw) if b == 0x0A][:-1]
    raw[starts[14]] = ord("x")  # the '{' opening the line of seq 15
    (tmp_path / "b" / JOURNAL_FILE).write_bytes(bytes(raw))
    r = verify_bundle(tmp_path / "b")
    assert not r.ok and r.first_bad_seq == 15


async def test_reordered_lines_are_rejected_where_the_order_breaks(journal_db: Path, tmp_path: Path):
    export_bundle(journal_db, tmp_path / "b")
    ls = lines(tmp_path / "b")
    i = _first(ls, J.BET_PLACED)
    k = seq_of(ls[i])
    ls[i], ls[i + 1] = ls[i + 1], ls[i]
    write_lines(tmp_path / "b", ls)
    r = verify_bundle(tmp_path / "b")
    assert not r.ok
    # The first bad line is where seq k belonged: it holds entry k+1, and the verifier says k was expected.
    assert r.first_bad_seq == k + 1 and f"expected seq {k}" in r.problems[0].reason


async def test_deleted_line_is_rejected_where_it_is_missing(journal_db: Path, tmp_path: Path):
    export_bundle(journal_db, tmp_path / "b")
    ls = lines(tmp_path / "b")
    i = _first(ls, J.ROUND_SETTLED)
    k = seq_of(ls[i])
    del ls[i]
    write_lines(tmp_path / "b", ls)
    r = verify_bundle(tmp_path / "b")
    assert not r.ok and r.first_bad_seq == k + 1 and f"expected seq {k}" in r.problems[0].reason


async def test_deleted_last_line_names_the_missing_seq(journal_db: Path, tmp_path: Path):
    """The chain of what is left verifies; the manifest says how far it went."""
    m = export_bundle(journal_db, tmp_path / "b")
    ls = lines(tmp_path / "b")
    del ls[-1]
    write_lines(tmp_path / "b", ls)
    r = verify_bundle(tmp_path / "b")
    assert not r.ok and r.first_bad_seq == m.to_seq
    assert all(p.seq == m.to_seq for p in r.problems)


async def test_rehashed_forgery_of_a_payout_is_caught_by_the_fairness_check(journal_db: Path, tmp_path: Path):
    """A forger who rewrites a payout and recomputes every hash and the manifest: the chain holds,
    the paytable does not."""
    export_bundle(journal_db, tmp_path / "b")
    entries = [json.loads(x) for x in lines(tmp_path / "b")]
    i = next(k for k, e in enumerate(entries) if e["kind"] == J.ROUND_SETTLED and e["data"]["payouts"])
    entries[i]["data"]["payouts"][0]["payout"] += 100
    prev = entries[i]["prev"]
    for e in entries[i:]:
        e.update(J.make_entry(e["seq"], e["ts"], e["kind"], e["data"], prev))
        prev = e["hash"]
    from contract.bundle import write_bundle

    write_bundle(tmp_path / "forged", entries, edge_id="mt-1", jurisdiction="MT")
    r = verify_bundle(tmp_path / "forged")
    assert not r.ok and r.first_bad_seq == entries[i]["seq"]
    assert "payouts differ" in r.problems[0].reason


async def test_cli_export_and_verify(journal_db: Path, tmp_path: Path):
    runner = CliRunner()
    res = runner.invoke(cli, ["export", "--db", str(journal_db), "--out", str(tmp_path / "cli"), "--from-seq", "1"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["from_seq"] == 1
    res = runner.invoke(cli, ["verify", str(tmp_path / "cli")])
    assert res.exit_code == 0, res.output
    ls = lines(tmp_path / "cli")
    del ls[20]
    write_lines(tmp_path / "cli", ls)
    res = runner.invoke(cli, ["verify", str(tmp_path / "cli")])
    assert res.exit_code == 1
    assert "first bad entry at seq 22" in res.output and "expected seq 21" in res.output


async def test_api_export_zip_verifies_and_is_journaled(casino, populated, client, tmp_path: Path):
    r = await client.get("/regulator/api/export", params={"from_seq": "5"}, headers=auth(token()))
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    zipfile.ZipFile(io.BytesIO(r.content)).extractall(tmp_path / "z")
    (folder,) = list((tmp_path / "z").iterdir())
    rep = verify_bundle(folder)
    assert rep.ok, rep.problems
    man = json.loads((folder / MANIFEST_FILE).read_text())
    assert (man["edge_id"], man["jurisdiction"], man["from_seq"]) == ("mt-1", "MT", 5)
    assert man["head_hash"] == r.headers["x-bundle-head-hash"]
    q = [e for e in casino.store.read() if e["kind"] == "regulator.query"][-1]
    assert q["data"]["route"] == "/regulator/api/export"
    assert q["data"]["params"]["exported_to"] == man["to_seq"] and q["data"]["params"]["from_seq"] == 5


async def test_time_window_outside_the_journal_exports_nothing(journal_db: Path, tmp_path: Path):
    m = export_bundle(journal_db, tmp_path / "late", from_ts=10**15)
    assert m.count == 0 and (tmp_path / "late" / JOURNAL_FILE).read_text() == ""
    m = export_bundle(journal_db, tmp_path / "early", to_ts=1)
    assert m.count == 0
