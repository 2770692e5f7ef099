"""docs/FAIRNESS.md: its reference implementation agrees with contract.fairness, and its worked
example carries the numbers the code actually produces."""
from __future__ import annotations

import hashlib
import hmac
import random
import re
from pathlib import Path

from contract import fairness as F

DOC = (Path(__file__).resolve().parents[2] / "docs" / "FAIRNESS.md").read_text()


def reference() -> dict:
    code = re.findall(r"```python\n(.*?)```", DOC, re.DOTALL)[0]
    ns: dict = {}
    exec(compile(code, "FAIRNESS.md", "exec"), ns)  # noqa: S102 - our own document
    return ns


def test_reference_implementation_agrees_with_the_contract():
    ref = reference()
    rnd = random.Random(5)
    for k in range(150):
        seed = rnd.randbytes(32)
        bets = [(f"mt-1-{rnd.randint(1, 10**6)}", rnd.choice(["", "x", "lucky7", "é"])) for _ in range(rnd.randint(0, 4))]
        cs = F.client_seed(bets)
        assert ref["client_seed"](bets) == cs
        n = rnd.randint(1, 1000)
        for game in F.GAMES:
            out = F.outcome(game, seed, cs, n)
            assert ref["outcome"](game, seed.hex(), cs, n) == out
            spots = F.roulette_spots() if game == "roulette" else sorted(F.BACCARAT_SPOTS)
            for spot in rnd.sample(spots, 5 if game == "roulette" else 3):
                stake = rnd.randint(1, 10**6)
                assert ref["payout"](game, spot, stake, out) == F.payout(game, spot, stake, out)
        chain = F.derive_chain(seed, 4)
        assert ref["seed_matches"](chain[3].hex(), 3, chain[0].hex())
        assert not ref["seed_matches"](chain[3].hex(), 2, chain[0].hex())


def test_worked_example_numbers_are_real():
    chain = F.derive_chain(bytes.fromhex("7f" * 32), 5)
    server = chain[3]
    cs = F.client_seed([("mt-1-41", "lucky7"), ("mt-1-42", "")])
    block0 = hmac.new(server, f"{cs}:3:0".encode(), hashlib.sha256).digest()
    words = [int.from_bytes(block0[i:i + 4], "big") for i in range(0, 12, 4)]
    roulette = F.outcome("roulette", server, cs, 3)
    bac = F.outcome("baccarat", server, cs, 3)
    for fact in [chain[0].hex(), server.hex(), cs, block0.hex(), ", ".join(map(str, words)),
                 f"limit = {2**32 - 2**32 % 37}", f"{words[0]} mod 37 = **{roulette['number']}**",
                 f"player\n  `{' '.join(bac['player'])}`, banker `{' '.join(bac['banker'])}`",
                 f"**{bac['winner']}** wins"]:
        assert fact in DOC, fact
    assert F.payout("roulette", "red", 500, roulette) == 0 and "`red` pays 0" in DOC
    assert f"`black` it pays {F.payout('roulette', 'black', 500, roulette)}" in DOC
    assert f"`straight:15` it pays {F.payout('roulette', 'straight:15', 500, roulette)}" in DOC
    assert f"`banker` pays {F.payout('baccarat', 'banker', 1000, bac)}" in DOC
    assert F.client_seed([]) == F.EMPTY_SHA256 and F.EMPTY_SHA256.startswith("e3b0c442")


REG = (Path(__file__).resolve().parents[2] / "docs" / "REGULATORS.md").read_text()


async def test_regulators_doc_verifier_works_with_only_fairness_md(tmp_path: Path):
    """docs/REGULATORS.md + docs/FAIRNESS.md, copied into files, verify a real bundle and reject a
    tampered one naming its seq — with no import of this project."""
    import json
    import subprocess
    import sys

    from contract.bundle import JOURNAL_FILE
    from edge_agent.audit.export import export_bundle
    from edge_agent.casino import Casino
    from tests.regulator.conftest import config, populate

    c = Casino(config(tmp_path))
    await c.start()
    await populate(c)
    await c.stop()
    c.close()
    work = tmp_path / "regulator"
    work.mkdir()
    (work / "fair.py").write_text(re.findall(r"```python\n(.*?)```", DOC, re.DOTALL)[0])
    (work / "verify.py").write_text(re.findall(r"```python\n(.*?)```", REG, re.DOTALL)[0])
    export_bundle(tmp_path / "j.db", work / "bundle")

    def run() -> str:
        return subprocess.run([sys.executable, "-E", "-s", "verify.py", "bundle"], cwd=work, capture_output=True, check=False,
                              text=True, timeout=60).stdout.strip()

    assert run().startswith("OK ")
    lines = (work / "bundle" / JOURNAL_FILE).read_text().splitlines(keepends=True)
    i = next(k for k, x in enumerate(lines) if '"kind":"round.settled"' in x and '"payout":' in x)
    e = json.loads(lines[i])
    # forge a payout and re-chain everything after it, manifest included: only fairness can tell
    from contract import journal as J
    from contract.bundle import write_bundle

    entries = [json.loads(x) for x in lines]
    entries[i]["data"]["payouts"][0]["payout"] += 1
    prev = entries[i]["prev"]
    for x in entries[i:]:
        x.update(J.make_entry(x["seq"], x["ts"], x["kind"], x["data"], prev))
        prev = x["hash"]
    write_bundle(work / "bundle", entries, edge_id="mt-1", jurisdiction="MT")
    assert run() == f"BAD seq {e['seq']}: round is not fair or not paid by the paytable"
    del lines[5]
    (work / "bundle" / JOURNAL_FILE).write_text("".join(lines))
    assert run() == "BAD seq 7: chain broken (expected seq 6)"


def test_regulators_doc_checkpoint_code_checks_real_checkpoints():
    import hashlib

    from contract import tokens
    from edge_agent.audit import checkpoints as CP

    ns: dict = {}
    exec(compile(re.findall(r"```python\n(.*?)```", REG, re.DOTALL)[1], "REGULATORS.md", "exec"), ns)  # noqa: S102
    key = tokens.new_signing_key()
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(1, 38)]
    cp = CP.make_checkpoint(hashes, None, key, "mt-1")
    assert ns["checkpoint_signed"](cp, tokens.public_pem(key))
    import pytest
    from cryptography.exceptions import InvalidSignature

    with pytest.raises(InvalidSignature):
        ns["checkpoint_signed"]({**cp, "size": 36}, tokens.public_pem(key))
    tree = CP.MerkleLog()
    tree.extend([bytes.fromhex(h) for h in hashes])
    for seq in (1, 17, 32, 37):
        proof = [p.hex() for p in tree.inclusion_proof(seq - 1)]
        assert ns["included"](hashes[seq - 1], seq, cp, proof)
        assert not ns["included"](hashes[seq % 37], seq, cp, proof)
