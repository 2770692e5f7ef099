"""Issue 15 on the regulator side: huge or non-ASCII integers in queries are refused before they
are journaled, and strings with line separators in queries or entries keep the export verifiable
(by `edge-agent verify` and by the stand-alone verifier in docs/REGULATORS.md)."""
from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contract.bundle import verify_bundle
from edge_agent.audit.export import export_bundle
from edge_agent.cli import app as cli
from tests.regulator.conftest import auth, token

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("path", [
    "/regulator/api/rounds/roulette-1/abc/9223372036854775808",
    "/regulator/api/rounds/roulette-1/abc/1000000000000000000000000000000",
    "/regulator/api/rounds/roulette-1/abc/%D9%A3",  # an Arabic-Indic digit: int() would take it
    "/regulator/api/rounds/roulette-1/abc/0",
    "/regulator/api/journal?from_seq=9223372036854775808",
    "/regulator/api/journal?limit=1_0",
    "/regulator/api/journal?from_seq=%205",
    "/regulator/api/rounds?before_seq=-1",
])
async def test_out_of_range_integers_are_422_and_the_export_still_verifies(casino, populated, client, path,
                                                                           tmp_path):
    r = await client.get(path, headers=auth(token()))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", r.text
    export_bundle(casino.store.path, tmp_path / "b")
    assert verify_bundle(tmp_path / "b").ok
    last = [e for e in casino.store.read(1, casino.store.seq) if e["kind"] == "regulator.query"][-1]
    assert last["data"]["status"] == 422
    assert all(not isinstance(v, int) or abs(v) < 2**63 for v in last["data"]["params"].values())


async def test_line_separators_in_query_parameters_keep_the_export_verifiable(casino, populated, client, tmp_path):
    for value in ("a\u2028b", "\u2029", "x\u0085y", "r\rn\n"):
        r = await client.get("/regulator/api/rounds", params={"table_id": value, "status": value}, headers=auth(token()))
        assert r.status_code == 200
    export_bundle(casino.store.path, tmp_path / "b")
    res = CliRunner().invoke(cli, ["verify", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    assert "\u2028".encode() in (tmp_path / "b" / "journal.jsonl").read_bytes()
    # the verifier a regulator writes from the docs agrees
    work = tmp_path / "regulator"
    work.mkdir()
    (work / "fair.py").write_text(re.findall(r"```python\n(.*?)```", (DOCS / "FAIRNESS.md").read_text(),
                                             re.DOTALL)[0])
    (work / "verify.py").write_text(re.findall(r"```python\n(.*?)```", (DOCS / "REGULATORS.md").read_text(),
                                               re.DOTALL)[0])
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-E", "-s", "verify.py", str(tmp_path / "b")],
                                   cwd=work, capture_output=True, text=True, timeout=60, check=False)
    out = done.stdout.strip()
    assert out.startswith("OK "), out
