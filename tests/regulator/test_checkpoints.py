"""Signed checkpoints: RFC 6962 roots/proofs from the incremental tree, append-only checks, and an
edge that rewrites history (with an internally consistent chain) caught by the consistency check."""
from __future__ import annotations

import asyncio
import hashlib
import json
import random
import sqlite3
import time
from pathlib import Path

import pytest

from contract import journal as J
from contract import merkle, tokens
from contract.sync import checkpoint_subject
from edge_agent.audit import checkpoints as CP
from edge_agent.casino import Casino
from tests.regulator.conftest import auth, bet, config, fund, token, wait_settled


def leaves(n: int, salt: str = "") -> list[bytes]:
    return [hashlib.sha256(f"{salt}{i}".encode()).digest() for i in range(n)]


def chain_hashes(n: int, salt: str = "") -> list[str]:
    """Entry hashes of a hash-chained journal of n entries."""
    prev, out = J.GENESIS_PREV, []
    for s in range(1, n + 1):
        e = J.make_entry(s, 1000 + s, "bet.placed", {"amount": 100 + s, "salt": salt}, prev)
        out.append(e["hash"])
        prev = e["hash"]
    return out


@pytest.mark.parametrize("chunk_bits", [0, 1, 2, 3])
def test_merkle_log_matches_the_rfc6962_reference(chunk_bits):
    rnd = random.Random(chunk_bits)
    data = leaves(70)
    # a fetch that reads completed leaves from "the journal", as the publisher does
    tree = CP.MerkleLog(lambda a, b: data[a:b], chunk_bits=chunk_bits)
    for n in range(1, 71):
        tree.append(data[n - 1])
        assert tree.root() == merkle.root(data[:n])
        for size in {1, n, rnd.randint(1, n)}:
            assert tree.root(size) == merkle.root(data[:size])
            i = rnd.randrange(size)
            assert tree.inclusion_proof(i, size) == merkle.inclusion_proof(data[:size], i)
            assert merkle.verify_inclusion(data[i], i, size, tree.inclusion_proof(i, size), merkle.root(data[:size]))
            old = rnd.randint(1, size)
            assert tree.consistency_proof(old, size) == merkle.consistency_proof(data[:size], old)
    assert tree.root(0) == hashlib.sha256(b"").digest()
    # extend() in uneven batches builds the same tree as append()
    batched = CP.MerkleLog(lambda a, b: data[a:b], chunk_bits=chunk_bits)
    i = 0
    while i < 70:
        k = rnd.randint(1, 9)
        batched.extend(data[i:i + k])
        i += k
        assert batched.root() == merkle.root(data[:min(i, 70)])
    assert batched.levels == tree.levels


def test_merkle_log_stays_cheap_at_scale():
    n = 200_000
    data = leaves(n)
    fetched = []

    def fetch(a, b):
        fetched.append(b - a)
        return data[a:b]

    tree = CP.MerkleLog(fetch)
    tree.extend(data[:-1])
    assert sum(len(level) for level in tree.levels) < n // 100  # cache ~ n/256 nodes, not n
    t0 = time.perf_counter()
    tree.append(data[-1])
    root = tree.root()
    proof = tree.consistency_proof(n - 12_345)
    incl = tree.inclusion_proof(77_777)
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.05, elapsed
    assert sum(fetched) <= 4 * 256  # only a few chunks of leaves re-read
    old_root = CP.MerkleLog()
    old_root.extend(data[: n - 12_345])
    assert merkle.verify_consistency(n - 12_345, n, old_root.root(), root, proof)
    assert merkle.verify_inclusion(data[77_777], 77_777, n, incl, root)


def test_checkpoint_sign_verify_and_append_only():
    key = tokens.new_signing_key()
    pub = tokens.public_pem(key)
    h = chain_hashes(40)
    cp1 = CP.make_checkpoint(h[:10], None, key, "mt-1", ts=1)
    assert set(cp1) == {"edge_id", "size", "root", "ts", "sig", "prev_size", "consistency"}
    assert CP.verify_checkpoint(cp1, pub, None)
    cp2 = CP.make_checkpoint(h[:25], cp1, key, "mt-1", ts=2)
    assert cp2["prev_size"] == 10 and cp2["consistency"]
    assert CP.verify_checkpoint(cp2, pub, cp1)
    cp3 = CP.make_checkpoint(h[:25], cp2, key, "mt-1", ts=3)  # nothing new: still fine
    assert CP.verify_checkpoint(cp3, pub, cp2)
    # a signature by another key, a changed size or root, a checkpoint that shrinks
    other = CP.make_checkpoint(h[:25], cp1, tokens.new_signing_key(), "mt-1", ts=2)
    assert CP.verify_checkpoint(other, pub, cp1).reason.startswith("bad signature")
    forged = {**cp2, "size": 24}
    assert not CP.verify_checkpoint(forged, pub, cp1)
    assert not CP.verify_checkpoint({**cp2, "edge_id": "fr-1"}, pub, cp1)
    shrunk = CP.make_checkpoint(h[:8], None, key, "mt-1", ts=4)
    r = CP.verify_checkpoint(shrunk, pub, cp2)
    assert not r and "shrank" in r.reason
    with pytest.raises(ValueError):
        CP.make_checkpoint(h[:8], cp2, key, "mt-1")
    assert not CP.verify_checkpoint({"size": "x"}, pub, None)


def test_rewritten_history_is_caught_by_the_consistency_check():
    """The edge rewrites entry 7 (say, a payout) and re-chains everything after it: its own hash
    chain verifies again, but it cannot prove the new tree extends the checkpoint the cloud holds."""
    key = tokens.new_signing_key()
    pub = tokens.public_pem(key)
    honest = chain_hashes(30)
    cloud_cp = CP.make_checkpoint(honest[:20], None, key, "mt-1", ts=1)
    assert CP.verify_checkpoint(cloud_cp, pub, None)

    # Rewrite seq 7 and re-chain: internally consistent.
    prev, rewritten = J.GENESIS_PREV, []
    for s in range(1, 41):
        data = {"amount": 100 + s, "salt": ""} if s != 7 else {"amount": 99_999, "salt": ""}
        e = J.make_entry(s, 1000 + s, "bet.placed", data, prev)
        rewritten.append(e)
        prev = e["hash"]
    assert J.check_chain(rewritten) is None
    assert rewritten[6]["hash"] != honest[6] and rewritten[5]["hash"] == honest[5]

    # The edge signs its new tree, with a consistency proof from the size the cloud holds.
    new_cp = CP.make_checkpoint([e["hash"] for e in rewritten], cloud_cp, key, "mt-1", ts=2)
    r = CP.verify_checkpoint(new_cp, pub, cloud_cp)
    assert not r and "rewritten" in r.reason
    # Nor can it fake a proof with an honest one (of another tree) or an empty one.
    honest_cp = CP.make_checkpoint(honest, cloud_cp, key, "mt-1", ts=2)
    assert CP.verify_checkpoint(honest_cp, pub, cloud_cp)
    spliced = {**new_cp, "consistency": honest_cp["consistency"]}
    spliced["sig"] = key.sign(CP.signed_message(spliced)).hex()
    assert not CP.verify_checkpoint(spliced, pub, cloud_cp)

    # A regulator holding the cloud's checkpoint checks the rewritten round against it: refused.
    tree = CP.MerkleLog()
    tree.extend([bytes.fromhex(e["hash"]) for e in rewritten[:20]])
    proof = [p.hex() for p in tree.inclusion_proof(6, 20)]
    assert not CP.verify_entry_inclusion(rewritten[6]["hash"], 7, cloud_cp, proof)
    honest_tree = CP.MerkleLog()
    honest_tree.extend([bytes.fromhex(x) for x in honest[:20]])
    assert CP.verify_entry_inclusion(honest[6], 7, cloud_cp, [p.hex() for p in honest_tree.inclusion_proof(6, 20)])


async def test_publisher_chains_checkpoints_and_survives_restart(tmp_path: Path):
    key = tokens.new_signing_key()
    pub = tokens.public_pem(key)
    sent: list[tuple[str, bytes]] = []
    fail = {"on": False}

    async def publish(subject: str, payload: bytes) -> None:
        if fail["on"]:
            raise ConnectionError("nats down")
        sent.append((subject, payload))

    c = Casino(config(tmp_path))
    await c.start()
    p = CP.CheckpointPublisher(c, key, publish, interval_s=0.05)
    p.start()
    psn = c.ensure_player("alice", {"display_name": "Alice"})
    await fund(c, psn, 100_000)
    for _ in range(3):
        await bet(c, psn, "red", 500)
    fail["on"] = True  # a publish that fails is retried from the same previous checkpoint
    await bet(c, psn, "black", 500)
    await asyncio.sleep(0.2)
    assert p.failures >= 1
    fail["on"] = False
    await bet(c, psn, "odd", 500)
    await wait_settled(c, 2)
    await asyncio.sleep(0.2)
    await p.stop()
    assert len(sent) >= 3
    cps = [json.loads(x) for _, x in sent]
    assert all(s == checkpoint_subject("mt-1") for s, _ in sent)
    prev = None
    for cp in cps:
        r = CP.verify_checkpoint(cp, pub, prev)
        assert r, r.reason
        prev = cp
    assert cps[-1]["size"] == c.store.durable_seq
    all_hashes = [e["hash"] for e in c.store.read()]
    assert cps[-1]["root"] == CP.make_checkpoint(all_hashes[: cps[-1]["size"]], None, key, "mt-1")["root"]
    await c.stop()
    c.close()

    # Restart: the publisher picks up its last checkpoint from kv and proves consistency from it.
    c2 = Casino(config(tmp_path))
    await c2.start(run_tables=False)
    sent.clear()
    p2 = CP.CheckpointPublisher(c2, key, publish, interval_s=10)
    assert p2.last == cps[-1]
    cp = await p2.publish_now()
    assert cp is not None and cp["prev_size"] == cps[-1]["size"]
    assert CP.verify_checkpoint(cp, pub, cps[-1])
    assert await p2.publish_now() is None  # nothing new, nothing sent
    await p2.stop(final=False)
    # Regulator inclusion proof of a round's settlement against that checkpoint (edge API helper).
    settled = next(e for e in c2.store.read() if e["kind"] == J.ROUND_SETTLED)
    pr = CP.inclusion_proof_for(c2.store.path, settled["seq"], cp["size"])
    assert pr["root"] == cp["root"]
    assert CP.verify_entry_inclusion(settled["hash"], settled["seq"], cp, pr["proof"])
    await c2.stop()
    c2.close()


async def test_regulator_api_inclusion_proof_and_latest_checkpoint(casino, populated, client):
    key = tokens.new_signing_key()
    sent = []

    async def publish(subject, payload):
        sent.append(json.loads(payload))

    p = CP.CheckpointPublisher(casino, key, publish, interval_s=10)
    cp = await p.publish_now()
    for _ in range(100):  # kv is written by the journal's writer with its next group commit
        r = await client.get("/regulator/api/checkpoints/latest", headers=auth(token()))
        if r.status_code != 404:
            break
        await asyncio.sleep(0.01)
    assert r.status_code == 200 and r.json()["checkpoint"] == cp
    settled = next(e for e in casino.store.read() if e["kind"] == J.ROUND_SETTLED)
    r = await client.get("/regulator/api/merkle/inclusion", params={"seq": settled["seq"], "size": cp["size"]},
                         headers=auth(token()))
    assert r.status_code == 200, r.text
    pr = r.json()
    assert pr["hash"] == settled["hash"] and pr["root"] == cp["root"]
    assert CP.verify_entry_inclusion(settled["hash"], settled["seq"], cp, pr["proof"])
    # the bundle route: a bundle from seq 1 recomputes the checkpoint's root by itself
    assert CP.root_of_entries(casino.store.read(1, cp["size"]), cp["size"]) == cp["root"]
    r = await client.get("/regulator/api/merkle/inclusion", params={"seq": 5, "size": 10 ** 9},
                         headers=auth(token()))
    assert r.status_code == 422


async def test_publisher_waits_when_the_journal_is_behind_its_last_checkpoint(tmp_path: Path):
    """After a restore that lost the tail, the edge claims nothing until the gap is reconciled."""
    key = tokens.new_signing_key()
    sent = []

    async def publish(subject, payload):
        sent.append(payload)

    c = Casino(config(tmp_path))
    await c.start(run_tables=False)
    p = CP.CheckpointPublisher(c, key, publish, interval_s=10)
    p.last = {**CP.make_checkpoint(chain_hashes(5), None, key, "mt-1"), "size": c.store.durable_seq + 100}
    assert await p.publish_now() is None and sent == []
    await p.stop(final=False)
    await c.stop()
    c.close()


async def test_edge_rewriting_its_sqlite_journal_is_caught_by_the_cloud(tmp_path: Path):
    """End to end: a real edge publishes checkpoints; the operator then rewrites a deposit in the
    SQLite journal and re-chains every later entry, so the edge replays its journal happily — but
    the next checkpoint cannot be verified against the one the cloud holds."""
    key = tokens.new_signing_key()
    pub = tokens.public_pem(key)
    cloud: list[dict] = []

    async def publish(subject, payload):
        cp = json.loads(payload)
        r = CP.verify_checkpoint(cp, pub, cloud[-1] if cloud else None)
        if r:
            cloud.append(cp)
        else:
            cloud_rejections.append(r.reason)

    cloud_rejections: list[str] = []
    c = Casino(config(tmp_path))
    await c.start()
    p = CP.CheckpointPublisher(c, key, publish, interval_s=10)
    psn = c.ensure_player("alice", {})
    await fund(c, psn, 10_000)
    await bet(c, psn, "red", 500)
    assert await p.publish_now() is not None and len(cloud) == 1
    await p.stop(final=False)
    await c.stop()
    c.close()

    # The rewrite: the deposit becomes 1,000,000 cents; every later entry is re-chained.
    conn = sqlite3.connect(tmp_path / "j.db")
    rows = conn.execute("SELECT seq, ts, kind, data, prev, hash FROM journal ORDER BY seq").fetchall()
    prev = J.GENESIS_PREV
    with conn:
        for seq, ts, kind, data, old_prev, h in rows:
            d = json.loads(data)
            if kind == "deposit.credited":
                d["amount"] = 1_000_000
            e = J.make_entry(seq, ts, kind, d, prev)
            conn.execute("UPDATE journal SET data = ?, prev = ?, hash = ? WHERE seq = ?",
                         (json.dumps(d, sort_keys=True, separators=(",", ":")), e["prev"], e["hash"], seq))
            prev = e["hash"]
    conn.close()

    c2 = Casino(config(tmp_path))  # replays the rewritten journal without complaint
    await c2.start(run_tables=False)
    assert c2.state.cash(psn) > 900_000
    p2 = CP.CheckpointPublisher(c2, key, publish, interval_s=10)
    c2.ensure_player("bob", {})
    await c2.store.durable(c2.store.seq)
    await p2.publish_now()
    assert len(cloud) == 1 and "rewritten" in cloud_rejections[-1]
    # Starting over without the old checkpoint does not help: the cloud still holds it.
    p2.last = None
    await p2.publish_now()
    assert len(cloud) == 1 and "proof is from size 0" in cloud_rejections[-1]
    await p2.stop(final=False)
    await c2.stop()
    c2.close()


@pytest.mark.slow
def test_checkpoint_cost_at_one_million_entries(tmp_path: Path):
    db = tmp_path / "big.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE journal (seq INTEGER PRIMARY KEY, ts INTEGER, kind TEXT, data TEXT, prev TEXT, hash TEXT)")
    n = 1_000_000
    conn.executemany("INSERT INTO journal VALUES (?,?,?,?,?,?)",
                     ((i, i, "k", "{}", "", hashlib.sha256(str(i).encode()).hexdigest()) for i in range(1, n + 1)))
    conn.commit()
    key = tokens.new_signing_key()
    t0 = time.perf_counter()
    tree = CP.tree_from_journal(db)
    built = time.perf_counter() - t0
    prev = CP.make_checkpoint(tree, None, key, "mt-1")
    conn.executemany("INSERT INTO journal VALUES (?,?,?,?,?,?)",
                     ((i, i, "k", "{}", "", hashlib.sha256(str(i).encode()).hexdigest()) for i in range(n + 1, n + 5001)))
    conn.commit()
    t0 = time.perf_counter()
    CP.extend_from_journal(tree, lambda s, p=(): conn.execute(s, p).fetchall(), n + 5000)
    cp = CP.make_checkpoint(tree, prev, key, "mt-1")
    tick = time.perf_counter() - t0
    print(json.dumps({"bench": "checkpoint_1m", "build_s": round(built, 2), "tick_ms": round(tick * 1000, 1)}))
    assert CP.verify_checkpoint(cp, tokens.public_pem(key), prev)
    assert built < 20 and tick < 0.5
