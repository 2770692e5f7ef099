"""Residency: a busy day under a strict policy; not one byte of personal data on any casino.> subject."""
from __future__ import annotations

import asyncio

import nats

from contract import journal as J
from contract import sync as S
from edge_agent.config import ResidencyPolicy
from edge_agent.sync.residency import ResidencyFilter
from edge_agent.sync.service import SyncService
from tests.sync.conftest import bet_when_open, edge_config, read_stream, shutdown, start_casino, until

STRICT = {
    "allow_kinds": ["round.*", "fairness.chain", "bet.placed", "table.*", "deposit.*", "withdrawal.*",
                    "player.excluded", "kyc.updated", "command.applied"],
    "redact_fields": {"*": ["player_seed", "method", "reference"]},
}


def people(n: int) -> list[tuple[str, dict[str, str]]]:
    return [(f"uid-{7000 + i}-{'xq' * 2}{i}", {"display_name": f"Zorana{i} Quillfeather", "email": f"zq{i}@mail-{i}.example",
                                         "birth_date": f"19{60 + i}-0{1 + i % 9}-1{i % 10}",
                                         "address": f"{i} Via Pomodoro, Valletta"})
            for i in range(12)]


def pii_strings(ps: list[tuple[str, dict[str, str]]]) -> list[str]:
    out = []
    for pid, prof in ps:
        out += [pid, prof["display_name"], prof["display_name"].split()[0], prof["email"], prof["birth_date"],
                prof["address"]]
    return out + ["Quillfeather", "PASSPORT"]


async def test_busy_day_leaks_no_personal_data(tmp_path, nats_server):
    cfg = edge_config(tmp_path, nats_server.url, residency=STRICT)
    listener = await nats.connect(nats_server.url)
    captured: list[tuple[str, bytes, dict[str, str]]] = []

    async def grab(msg) -> None:
        captured.append((msg.subject, msg.data, dict(msg.headers or {})))

    await listener.subscribe(">", cb=grab)  # every message the server routes: casino.>, $JS API, inboxes

    c = await start_casino(cfg)
    sync = SyncService(c, cfg, ensure_streams=True)
    await sync.start()
    await until(lambda: sync.connected, what="connected")
    js = listener.jetstream()
    ps = people(12)
    psns = []
    for i, (pid, prof) in enumerate(ps):
        psn = c.ensure_player(pid, prof)
        psns.append(psn)
        c.start_session(psn)
        c.request_kyc(psn, f"PASSPORT {prof['display_name']} born {prof['birth_date']}".encode())
        dep = c.request_deposit(psn, 50_000, method=f"card of {prof['display_name']}")
        # the cloud confirms the deposit and the KYC over NATS, naming the player by pseudonym only
        cmd = S.DepositCredit(id=f"c-dep-{i}", ts=0, deposit_id=dep["data"]["deposit_id"], player=psn,
                              amount=50_000, currency="EUR")
        await js.publish(S.command_subject("mt-1"), cmd.model_dump_json().encode())
        kyc = S.KycResult(id=f"c-kyc-{i}", ts=0, player=psn, status="verified", reference=f"ref-{i}")
        await js.publish(S.command_subject("mt-1"), kyc.model_dump_json().encode())
    await until(lambda: sync.commands_applied == 24, what="commands applied")
    c.set_limit(psns[0], "deposit", "24h", 10_000)

    async def play(i: int, psn: str) -> None:
        for k in range(6):
            seed = f"lucky {ps[i][1]['display_name']}" if k % 2 else ""  # free text a player typed
            await bet_when_open(c, psn, "odd" if k % 2 else "red", 100 + k, player_seed=seed)

    await asyncio.gather(*(play(i, p) for i, p in enumerate(psns)))
    wd = c.request_withdrawal(psns[1], 1_000)
    await js.publish(S.command_subject("mt-1"), S.PayoutResult(
        id="c-pay-1", ts=0, withdrawal_id=wd["data"]["withdrawal_id"], player=psns[1], status="paid",
        rail="bank", rail_ref="IBAN-REF-1").model_dump_json().encode())
    c.exclude(psns[2], "self_exclusion", "6m")
    c.exclude(psns[3], "break", "1d")
    await js.publish(S.command_subject("mt-1"), S.PlayerExclude(
        id="c-exc-1", ts=0, player=psns[4], until_ts=c.clock() + 86_400_000, origin_edge="gr-1").model_dump_json().encode())
    await until(lambda: sync.commands_applied == 26, what="payout and remote exclusion applied")
    await asyncio.sleep(1.2)  # a couple of heartbeats
    await shutdown(c, sync)
    await listener.flush()
    await listener.close()

    # everything left, in some form
    stream = [e for e, _ in await read_stream(nats_server.url, "mt-1")]
    assert sorted(e["seq"] for e in stream) == list(range(1, c.store.seq + 1))
    assert any(s.startswith("casino.heartbeat.") for s, _, _ in captured)
    assert sum(1 for s, _, _ in captured if s == S.journal_subject("mt-1")) >= c.store.seq

    # ... and no personal data anywhere on the wire
    needles = pii_strings(ps)
    assert any(s.startswith("$JS.API.") for s, _, _ in captured)
    for subject, data, headers in captured:
        blob = data.decode("utf-8", "replace") + subject + repr(headers)
        for n in needles:
            assert n not in blob, f"{n!r} leaked on {subject}: {blob[:300]}"

    # the policy did act: disallowed kinds leave as empty shells, listed fields are removed,
    # the in-country hash is kept (and still verifies wherever nothing was removed)
    from edge_agent.journal.store import JournalStore

    store = JournalStore(cfg.db_path)
    local = {e["seq"]: e for e in store.iter_all()}
    store.close()
    kinds = {e["kind"] for e in stream}
    assert {"bet.placed", "kyc.requested", "player.registered", "session.started"} <= kinds
    for e in stream:
        mine = local[e["seq"]]
        assert e["hash"] == mine["hash"] and e["prev"] == mine["prev"]
        if e["kind"] in ("kyc.requested", "player.registered", "session.started", "limits.changed"):
            assert e["data"] == {} and e["redacted"] == sorted(mine["data"])
        elif e["kind"] in ("bet.placed", "deposit.requested"):
            assert "player_seed" not in e["data"] and "method" not in e["data"]
            assert e["redacted"] and set(e["redacted"]) <= {"player_seed", "method"}
        if not e["redacted"]:
            assert J.entry_hash(e["seq"], e["ts"], e["kind"], e["data"], e["prev"]) == e["hash"]


def test_filter_rules():
    f = ResidencyFilter(ResidencyPolicy(**STRICT))
    assert f.apply("session.started", {"player": "p", "session_id": "s"}) == ({}, ["player", "session_id"])
    assert f.apply("bet.placed", {"amount": 1, "player_seed": "x"}) == ({"amount": 1}, ["player_seed"])
    assert f.apply("round.settled", {"n": 1}) == ({"n": 1}, [])
    # the fast path (stored canonical text) and the general path give the same bytes
    e = J.make_entry(3, 1000, "round.opened", {"n": 1, "table_id": "t", "é": "ü"}, "0" * 64)
    row = f.payload_row(e["seq"], e["ts"], e["kind"], J.canonical_json(e["data"]).decode(), e["prev"], e["hash"])
    assert row == f.payload(e)
    assert S.SyncedEntry.model_validate_json(row).model_dump() == {**e, "redacted": []}
    open_policy = ResidencyFilter(ResidencyPolicy())
    assert open_policy.apply("anything", {"a": 1}) == ({"a": 1}, [])
