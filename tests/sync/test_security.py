"""Per-edge NATS users: an edge works with its own credentials and cannot touch another edge."""
from __future__ import annotations

import asyncio

import nats
import nats.errors
import pytest
from nats.js import api

from contract import sync as S
from edge_agent.sync import nats_auth
from edge_agent.sync.reconcile import reconcile_from_cloud
from edge_agent.sync.service import SyncService, inbox_prefix
from tests.support.nats import NatsServer
from tests.sync.conftest import (
    PROFILE,
    bet_when_open,
    create_streams,
    edge_config,
    read_stream,
    shutdown,
    start_casino,
    until,
)

CLOUD = {"user": "cloud", "password": "cloud-pw"}
# how the server says no: no reply (timeout) or an error from the client library
REFUSED = (asyncio.TimeoutError, nats.errors.Error)


@pytest.fixture
def secure_server(tmp_path):
    conf = nats_auth.server_config([("mt-1", "pw-a"), ("gr-1", "pw-b")], "cloud-pw", store_dir="{store}")
    srv = NatsServer(tmp_path / "nats", config=conf).start()
    yield srv
    srv.stop()


def test_generated_config_confines_each_edge():
    perms = nats_auth.edge_permissions("mt-1")
    pub = perms["publish"]["allow"]
    assert {"casino.journal.mt-1", "casino.checkpoint.mt-1", "casino.heartbeat.mt-1", "casino.hwm.mt-1"} <= set(pub)
    assert not any(("gr-1" in p) or p.endswith(".*") or p == ">" for p in pub)
    assert perms["subscribe"]["allow"] == ["_INBOX_mt-1.>"]
    with pytest.raises(ValueError):
        nats_auth.server_config([("a.b", "x")], "c")
    with pytest.raises(ValueError):
        nats_auth.server_config([("a", "x"), ("a", "y")], "c")


async def test_edge_works_with_own_credentials_and_cannot_touch_another(tmp_path, secure_server):
    url = secure_server.url
    await create_streams(url, **CLOUD)  # the control plane owns the streams

    # Edge A, with its own user, does everything it needs: journal, heartbeats, hwm, commands.
    cfg = edge_config(tmp_path, url, nats={"url": url, "user": "edge-mt-1", "password": "pw-a", "heartbeat_s": 0.5})
    c = await start_casino(cfg)
    sync = SyncService(c, cfg)
    await sync.start()
    cloud = await nats.connect(url, **CLOUD)
    cjs = cloud.jetstream()
    beats: list[bytes] = []

    async def beat(m) -> None:
        beats.append(m.data)

    await cloud.subscribe(S.heartbeat_subject("mt-1"), cb=beat)
    psn = c.ensure_player("alice", PROFILE)
    await cjs.publish(S.command_subject("mt-1"), S.DepositCredit(
        id="c1", ts=0, deposit_id="d1", player=psn, amount=5_000, currency="EUR").model_dump_json().encode())
    await until(lambda: sync.commands_applied == 1, what="own command applied")
    await bet_when_open(c, psn)
    await until(lambda: sync.sent_seq == c.store.durable_seq > 0, what="own journal published")
    await until(lambda: len(beats) > 0, what="heartbeat")
    assert sync.conflict is None
    await sync.publish_checkpoint(S.checkpoint_subject("mt-1"), b'{"size": 1}')  # allowed, acked
    await sync.publish_checkpoint(S.checkpoint_subject("mt-1"), b'{"size": 1}')  # a retry: deduplicated
    cps = await cjs.stream_info(S.CHECKPOINT_STREAM)
    assert cps.state.messages == 1

    # A command for edge B waits in the stream for B.
    await cjs.publish(S.command_subject("gr-1"), S.DepositCredit(
        id="c-b", ts=0, deposit_id="d-b", player=psn, amount=7, currency="EUR").model_dump_json().encode())

    # Edge A, misbehaving with its own credentials:
    errors: list[str] = []

    async def err_cb(e: Exception) -> None:
        errors.append(str(e))

    rogue = await nats.connect(url, user="edge-mt-1", password="pw-a", inbox_prefix=inbox_prefix("mt-1"),
                               error_cb=err_cb)
    rjs = rogue.jetstream(timeout=1.0)
    # 1. publish into B's journal: refused by the server, so no PubAck ever comes
    with pytest.raises(REFUSED):
        await rjs.publish(S.journal_subject("gr-1"), b'{"seq":1}', headers={"Nats-Msg-Id": "gr-1:1"})
    # 2. read B's commands: a core subscription is refused ...
    leaked: list[bytes] = []

    async def leak(m) -> None:
        leaked.append(m.data)

    await rogue.subscribe(S.command_subject("gr-1"), cb=leak)
    await rogue.subscribe(f"{inbox_prefix('gr-1')}.>", cb=leak)
    # ... and so is B's durable consumer, or any consumer filtered on B's subject
    with pytest.raises(REFUSED):
        sub = await rjs.pull_subscribe(S.command_subject("gr-1"), durable="edge-gr-1", stream=S.COMMAND_STREAM)
        await sub.fetch(1, timeout=1.0)
    with pytest.raises(REFUSED):
        cfg_b = api.ConsumerConfig(name="edge-mt-1", durable_name="edge-mt-1",
                                   filter_subject=S.command_subject("gr-1"))
        await rjs.add_consumer(S.COMMAND_STREAM, config=cfg_b)
    with pytest.raises(REFUSED):
        await rjs.get_last_msg(S.JOURNAL_STREAM, S.journal_subject("gr-1"), direct=True)
    await cjs.publish(S.command_subject("gr-1"), b'{"another": "command for B"}')
    await rogue.flush()
    await until(lambda: sum("ermission" in e for e in errors) >= 3, what="permission violations reported")
    await asyncio.sleep(0.5)
    assert leaked == []

    # B's command is still there for B, unread; B's journal subject holds nothing.
    info = await cjs.stream_info(S.COMMAND_STREAM, subjects_filter=S.command_subject("gr-1"))
    assert info.state.subjects == {S.command_subject("gr-1"): 2}
    assert await read_stream(url, "gr-1", **CLOUD) == []
    names = [ci.name for ci in await cjs.consumers_info(S.COMMAND_STREAM)]
    assert names == ["edge-mt-1"]

    # A wrong password is refused outright.
    with pytest.raises(REFUSED):
        await nats.connect(url, user="edge-gr-1", password="pw-a", allow_reconnect=False, max_reconnect_attempts=1)

    await rogue.close()
    await cloud.close()
    await shutdown(c, sync)
    got = await read_stream(url, "mt-1", **CLOUD)
    assert len(got) == c.store.seq
    # the reconcile fallback (read-back of its own subject) works within the edge's permissions
    res = await reconcile_from_cloud(cfg)
    assert res.action == "in_sync" and res.source == "stream" and res.cloud_seq == c.store.seq
