"""natswire's shortcuts against a real nats-server: what the raw paths send and receive must be
exactly what nats-py's own publish/subscribe and JetStream see (they lean on client internals)."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from nats.errors import OutboundBufferLimitError
from nats.js import api

from natswire import LeanClient, ack_commands, header_block, header_status, hpub
from tests.support.nats import NatsServer


@pytest.fixture
def server(tmp_path: Path):
    srv = NatsServer(tmp_path).start()
    yield srv
    srv.stop()


async def lean(url: str, **kw: object) -> LeanClient:
    nc = LeanClient()
    await nc.connect(servers=[url], **kw)
    return nc


def test_header_status() -> None:
    assert header_status(b"NATS/1.0 404 No Messages\r\n\r\n") == "404"
    assert header_status(b"NATS/1.0 408\r\n\r\n") == "408"
    assert header_status(b"NATS/1.0\r\nNats-Msg-Id: a:1\r\n\r\n") is None


async def test_raw_publish_is_seen_as_an_ordinary_message_with_headers(server: NatsServer) -> None:
    nc = await lean(server.url)
    plain = await lean(server.url)  # nats-py's own subscribe (LeanClient only orders its flush)
    try:
        sub = await plain.subscribe("t.plain")
        await plain.flush()
        cmds = b"".join(hpub(b"t.plain", b"r.%d" % i, header_block({"Nats-Msg-Id": f"e:{i}", "X-Other": "v"}),
                             b'{"n": %d}' % i) for i in range(3))
        await nc.publish_raw(cmds, 3)
        await nc.flush()  # the server has them (a PING after them was answered)
        got = [await sub.next_msg(timeout=10) for _ in range(3)]
        assert [m.data for m in got] == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
        assert [m.headers for m in got] == [{"Nats-Msg-Id": f"e:{i}", "X-Other": "v"} for i in range(3)]
        assert [m.reply for m in got] == ["r.0", "r.1", "r.2"]
    finally:
        await nc.close()
        await plain.close()


async def test_raw_subscription_gets_bytes_and_unparsed_headers(server: NatsServer) -> None:
    nc = await lean(server.url)
    plain = await lean(server.url)
    got: list[tuple[bytes, bytes, bytes, bytes | None]] = []
    seen = asyncio.Event()

    def handler(subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        got.append((subject, reply, data, headers))
        if len(got) == 2:
            seen.set()

    try:
        await nc.raw_subscribe("t.raw.*", handler)
        normal: list[bytes] = []

        async def cb(m: object) -> None:
            normal.append(m.data)  # type: ignore[attr-defined]

        await nc.subscribe("t.normal", cb=cb)  # other subscriptions stay nats-py's own
        await nc.flush()
        await plain.publish("t.raw.a", b"one", reply="back", headers={"Nats-Msg-Id": "x:1"})
        await plain.publish("t.raw.b", b"two")
        await plain.publish("t.normal", b"three")
        await plain.flush()
        await asyncio.wait_for(seen.wait(), 10)  # generous: a correctness test, not a timing one
        await asyncio.sleep(0.1)
        assert got[0][:3] == (b"t.raw.a", b"back", b"one")
        assert b"Nats-Msg-Id: x:1" in got[0][3] and header_status(got[0][3]) is None
        assert got[1] == (b"t.raw.b", b"", b"two", None)  # no header block at all
        assert normal == [b"three"]
    finally:
        await nc.close()
        await plain.close()


async def test_batched_acks_acknowledge_jetstream_deliveries(server: NatsServer) -> None:
    nc = await lean(server.url)
    try:
        js = nc.jetstream()
        await js.add_stream(api.StreamConfig(name="T", subjects=["t.js"]))
        for i in range(5):
            await js.publish("t.js", b"%d" % i)
        await js.add_consumer("T", api.ConsumerConfig(durable_name="d", ack_policy=api.AckPolicy.EXPLICIT,
                                                      ack_wait=30))
        psub = await js.pull_subscribe_bind("d", "T")
        msgs = await psub.fetch(5, timeout=2)
        assert len(msgs) == 5
        info = await js.consumer_info("T", "d")
        assert info.num_ack_pending == 5
        await nc.publish_raw(ack_commands([m.reply.encode() for m in msgs[:3]]), 3)
        await nc.flush()
        for _ in range(100):  # the server hands acks to the consumer asynchronously
            info = await js.consumer_info("T", "d")
            if info.num_ack_pending == 2:
                break
            await asyncio.sleep(0.05)
        assert info.num_ack_pending == 2 and info.ack_floor.stream_seq == 3
    finally:
        await nc.close()


async def test_raw_publish_is_refused_while_disconnected_without_a_buffer(server: NatsServer) -> None:
    nc = await lean(server.url, pending_size=0, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        server.kill()
        for _ in range(100):
            if not nc.is_connected:
                break
            await asyncio.sleep(0.05)
        with pytest.raises(OutboundBufferLimitError):
            await nc.publish_raw(hpub(b"t.x", b"r", header_block({"A": "b"}), b"x"))
    finally:
        await nc.close()


async def test_flush_ping_follows_the_commands_queued_before_it(tmp_path: Path) -> None:
    """nats-py 2.16 writes flush()'s PING ahead of its pending buffer; LeanClient queues it behind.
    The server's own protocol trace shows the order it received."""
    srv = NatsServer(tmp_path / "trace", config="trace: true\nlogtime: false\n").start()
    try:
        nc = await lean(srv.url, ping_interval=3600)
        try:
            for i in range(20):
                await nc.subscribe(f"t.order.{i}")
                await nc.flush()
        finally:
            await nc.close()
    finally:
        srv.stop()
    trace = (tmp_path / "trace" / "nats.log").read_text()
    received = [" ".join(line.split("<<- [", 1)[1].rstrip("]").split()) for line in trace.splitlines()
                if "<<- [" in line]
    received = [r for r in received if r.startswith(("SUB t.order.", "PING"))][1:]  # [0]: connect's PING
    assert received == [x for i in range(20) for x in (f"SUB t.order.{i} {i + 1}", "PING")], received
