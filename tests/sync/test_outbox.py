"""The journal outbox: order, message ids, the acknowledged mark, restarts, duplicates."""
from __future__ import annotations

from contract import journal as J
from contract import sync as S
from edge_agent import metrics as M
from edge_agent.sync.service import KV_SENT, SyncService
from tests.sync.conftest import (
    PROFILE,
    bet_when_open,
    check_exactly_once,
    create_streams,
    edge_config,
    fund,
    read_stream,
    shutdown,
    start_casino,
    until,
)


def kv_sent(c) -> int | None:
    row = c.store.query("SELECT value FROM kv WHERE key = ?", (KV_SENT,))
    return int(row[0][0]) if row else None


async def test_entries_published_in_order_with_msg_id(tmp_path, nats_server):
    cfg = edge_config(tmp_path, nats_server.url)
    c = await start_casino(cfg)
    sync = SyncService(c, cfg, ensure_streams=True)
    await sync.start()
    psn = c.ensure_player("alice", PROFILE)
    await fund(c, psn, 10_000, "d1")
    for _ in range(5):
        await bet_when_open(c, psn)
    await until(lambda: sync.sent_seq == c.store.durable_seq and sync.lag == 0, what="outbox drained")
    assert M.SYNC_LAG.labels(edge="mt-1")._value.get() == 0
    head = c.store.durable_seq
    await shutdown(c, sync)

    got = await read_stream(nats_server.url, "mt-1")
    assert [e["seq"] for e, _ in got][:head] == list(range(1, head + 1))  # stream order = seq order
    for e, hdr in got:
        assert hdr["Nats-Msg-Id"] == S.journal_msg_id("mt-1", e["seq"]) == f"mt-1:{e['seq']}"
        assert e["redacted"] == []
        assert J.entry_hash(e["seq"], e["ts"], e["kind"], e["data"], e["prev"]) == e["hash"]
    kinds = {e["kind"] for e, _ in got}
    assert {"bet.placed", "deposit.credited", "command.applied", "player.registered"} <= kinds


async def test_sent_seq_persists_only_after_ack_and_restart_resumes(tmp_path, nats_server):
    cfg = edge_config(tmp_path, nats_server.url)
    c = await start_casino(cfg)
    # No stream yet: every publish gets "no responders" -> nothing is acknowledged, nothing marked.
    sync = SyncService(c, cfg, ensure_streams=False, ack_timeout=1.0)
    await sync.start()
    psn = c.ensure_player("alice", PROFILE)
    await fund(c, psn, 10_000, "d1")
    await bet_when_open(c, psn)
    await until(lambda: sync.connected, what="connected")
    await until(lambda: sync.last_error is not None and "NoStream" in sync.last_error, what="a refused publish")
    assert sync.sent_seq == 0 and kv_sent(c) is None
    assert sync.lag == c.store.durable_seq > 0

    await create_streams(nats_server.url)
    await until(lambda: sync.sent_seq == c.store.durable_seq, what="drained once the stream exists")
    await until(lambda: kv_sent(c) == sync.sent_seq, what="mark written")
    await sync.stop()

    # Bets while the service is stopped, then a new service resumes from the mark.
    for _ in range(3):
        await bet_when_open(c, psn)
    mark = kv_sent(c)
    assert mark is not None and mark < c.store.durable_seq
    sync2 = SyncService(c, cfg)
    await sync2.start()
    assert sync2.sent_seq == mark
    await until(lambda: sync2.sent_seq == c.store.durable_seq, what="resumed")
    assert sync2.duplicates == 0  # resumed after the mark: nothing re-sent
    await shutdown(c, sync2)
    got = [e for e, _ in await read_stream(nats_server.url, "mt-1")]
    check_exactly_once(got, c.store.seq, c.store.head)


async def test_republish_is_acked_as_duplicate_and_counts_as_success(tmp_path, nats_server):
    cfg = edge_config(tmp_path, nats_server.url)
    c = await start_casino(cfg)
    sync = SyncService(c, cfg, ensure_streams=True)
    await sync.start()
    psn = c.ensure_player("alice", PROFILE)
    await fund(c, psn, 10_000, "d1")
    await bet_when_open(c, psn)
    await until(lambda: sync.sent_seq == c.store.durable_seq, what="drained")
    await sync.stop()
    sent = sync.sent_seq  # what the stream holds (the table's rounds go on journaling meanwhile)
    # The mark is lost (e.g. the kv write did not make it before a crash): everything goes again.
    c.store.side_write([("DELETE FROM kv WHERE key = ?", (KV_SENT,))])
    await until(lambda: kv_sent(c) is None, what="mark deleted")
    sync2 = SyncService(c, cfg)
    await sync2.start()
    assert sync2.sent_seq == 0
    await until(lambda: sync2.sent_seq >= sent, what="re-published")
    assert sync2.duplicates >= sent  # the stream said "duplicate" for each, and the mark advanced
    await shutdown(c, sync2)
    got = [e for e, _ in await read_stream(nats_server.url, "mt-1")]
    check_exactly_once(got, c.store.seq, c.store.head)
