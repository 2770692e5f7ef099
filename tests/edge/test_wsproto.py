"""wsproto.PlayerProtocol against the pinned uvicorn and websockets: whatever the client sends, cut
anywhere, reaches the app in order and as uvicorn's own protocol would deliver it; plain text
frames skip the ASGI queue; protocol errors close the socket as before; pings go to silent peers only."""
from __future__ import annotations

import asyncio
import base64
import os
import struct
import zlib
from typing import Any

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st
from uvicorn.config import Config
from uvicorn.server import ServerState

from edge_agent.api import wsproto
from edge_agent.api.wsframes import SCOPE_KEY, capture

UPGRADE = ("GET /v1/ws HTTP/1.1\r\nHost: edge\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n")


def client_frame(opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False) -> bytes:
    """A client frame, masked as RFC 6455 requires."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65_536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Transport:
    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False
        self.paused = 0

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused += 1

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def server_frames(self) -> list[tuple[int, bytes]]:
        """(opcode, payload) of every frame written after the 101 response."""
        buf = bytes(self.written[self.written.index(b"\r\n\r\n") + 4:])
        out, pos = [], 0
        while pos < len(buf):
            op, n, head = buf[pos] & 0x0F, buf[pos + 1] & 0x7F, 2
            if n == 126:
                n, head = struct.unpack_from("!H", buf, pos + 2)[0], 4
            out.append((op, buf[pos + head:pos + head + n]))
            pos += head + n
        return out


class Edge:
    """A PlayerProtocol on a fake transport, with an app that records what reaches it and how."""

    def __init__(self, ping_interval: float | None = None, deflate: bool = False) -> None:
        self.got: list[tuple[str, Any]] = []
        self.attached = asyncio.get_running_loop().create_future()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            self.attached.set_result(
                wsproto.deliver_text(scope.get(SCOPE_KEY), lambda t: self.got.append(("direct", t))))
            while True:
                m = await receive()
                if m["type"] == "websocket.disconnect":
                    self.got.append(("disconnect", m.get("code")))
                    return
                self.got.append(("asgi", m.get("text") if m.get("text") is not None else m.get("bytes")))

        cfg = Config(capture(app), ws=wsproto.PlayerProtocol, ws_max_size=65_536, lifespan="off",
                     ws_ping_interval=ping_interval, ws_ping_timeout=ping_interval, ws_per_message_deflate=deflate)
        cfg.load()
        self.proto = wsproto.PlayerProtocol(cfg, ServerState(), {}, _loop=asyncio.get_running_loop())
        self.t = Transport()
        self.proto.connection_made(self.t)  # type: ignore[arg-type]
        extra = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else ""
        self.proto.data_received(UPGRADE.format(key=base64.b64encode(os.urandom(16)).decode(), extra=extra).encode())

    async def open(self) -> None:
        assert await asyncio.wait_for(self.attached, 5) is True

    async def close(self) -> None:
        self.proto.connection_lost(None)
        await self.settle()

    async def settle(self) -> None:
        for _ in range(5):
            await asyncio.sleep(0)

    def data(self) -> list[Any]:
        return [v for how, v in self.got if how in ("direct", "asgi")]


@pytest.fixture
async def make_edge() -> Any:
    made: list[Edge] = []

    def make(**kw: Any) -> Edge:
        made.append(Edge(**kw))
        return made[-1]

    yield make
    for e in made:
        await e.close()


# One message as (frames, what the app must receive): plain text, binary, fragmented text, a ping.
message = st.one_of(
    st.text(max_size=300).map(lambda s: ([client_frame(1, s.encode())], s)),
    st.binary(max_size=200).map(lambda b: ([client_frame(2, b)], b)),
    st.tuples(st.text(min_size=1, max_size=50), st.text(max_size=50)).map(
        lambda p: ([client_frame(1, p[0].encode(), fin=False), client_frame(0, p[1].encode())], p[0] + p[1])),
    st.binary(max_size=20).map(lambda b: ([client_frame(9, b)], None)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(message, min_size=1, max_size=12), st.lists(st.integers(0, 4000), max_size=8),
       st.lists(st.booleans(), max_size=10))
def test_any_stream_cut_anywhere_reaches_the_app_whole_and_in_order(msgs: list[Any], cuts: list[int],
                                                                      yields: list[bool]) -> None:
    async def run() -> None:
        edge = Edge()
        await edge.open()
        stream = b"".join(f for frames, _ in msgs for f in frames)
        points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
        for k, (a, b) in enumerate(zip(points, points[1:])):
            edge.proto.data_received(stream[a:b])
            if k < len(yields) and yields[k]:
                await edge.settle()  # sometimes the app reads its queue between chunks
        await edge.settle()
        assert edge.data() == [want for _, want in msgs if want is not None]
        pings = [f[0] for frames, want in msgs if want is None for f in [frames]]
        pongs = [p for op, p in edge.t.server_frames() if op == 0xA]
        assert len(pongs) == len(pings)
        assert not edge.t.closed
        await edge.close()

    asyncio.run(run())


async def test_plain_text_frames_skip_the_asgi_queue_and_never_pause_reading(make_edge: Any) -> None:
    edge = make_edge()
    await edge.open()
    edge.proto.data_received(b"".join(client_frame(1, f'{{"n": {i}}}'.encode()) for i in range(50)))
    edge.proto.data_received(client_frame(1, ("é" * 200).encode()))
    assert [how for how, _ in edge.got] == ["direct"] * 51  # delivered synchronously, before any await
    assert edge.data()[0] == '{"n": 0}' and edge.data()[-1] == "é" * 200
    assert edge.t.paused == 0


async def test_a_plain_frame_behind_a_queued_message_waits_its_turn(make_edge: Any) -> None:
    edge = make_edge()
    await edge.open()
    edge.proto.data_received(client_frame(2, b"first") + client_frame(1, b"second") + client_frame(1, b"third"))
    await edge.settle()
    assert edge.got == [("asgi", b"first"), ("asgi", "second"), ("asgi", "third")]
    edge.proto.data_received(client_frame(1, b"fourth"))  # the queue is empty again: direct
    assert edge.got[-1] == ("direct", "fourth")


async def test_invalid_utf8_closes_with_1007_and_delivers_nothing(make_edge: Any) -> None:
    edge = make_edge()
    await edge.open()
    edge.proto.data_received(client_frame(1, b"ok") + client_frame(1, b"\xff\xfe") + client_frame(1, b"late"))
    await edge.settle()
    assert edge.data() == ["ok"]
    closes = [p for op, p in edge.t.server_frames() if op == 0x8]
    assert closes and struct.unpack("!H", closes[0][:2])[0] == 1007
    assert edge.t.closed


async def test_a_frame_over_the_size_limit_closes_with_1009_from_its_header(make_edge: Any) -> None:
    edge = make_edge()
    await edge.open()
    edge.proto.data_received(client_frame(1, b"x" * 70_000)[:20])  # only the header has arrived
    await edge.settle()
    closes = [p for op, p in edge.t.server_frames() if op == 0x8]
    assert closes and struct.unpack("!H", closes[0][:2])[0] == 1009
    assert edge.data() == []


async def test_an_unmasked_client_frame_is_a_protocol_error(make_edge: Any) -> None:
    edge = make_edge()
    await edge.open()
    edge.proto.data_received(b"\x81\x02hi")
    await edge.settle()
    closes = [p for op, p in edge.t.server_frames() if op == 0x8]
    assert closes and struct.unpack("!H", closes[0][:2])[0] == 1002
    assert edge.data() == []


async def test_compressed_messages_go_through_websockets_and_arrive_inflated(make_edge: Any) -> None:
    edge = make_edge(deflate=True)
    await edge.open()
    assert b"permessage-deflate" in edge.t.written
    z = zlib.compressobj(wbits=-15)
    payload = z.compress(b"hello " * 20) + z.flush(zlib.Z_SYNC_FLUSH)
    edge.proto.data_received(client_frame(1, payload[:-4], rsv1=True) + client_frame(1, b"plain"))
    await edge.settle()
    assert edge.data() == ["hello " * 20, "plain"]


async def test_close_from_the_client_is_answered_and_ends_the_app(make_edge: Any) -> None:
    edge = make_edge()
    await edge.open()
    edge.proto.data_received(client_frame(1, b"a") + client_frame(8, struct.pack("!H", 1000)) + client_frame(1, b"b"))
    await edge.settle()
    assert edge.data() == ["a"]
    assert any(op == 0x8 for op, _ in edge.t.server_frames())


async def test_keepalive_pings_only_a_peer_that_has_gone_silent(make_edge: Any) -> None:
    talker, silent = make_edge(ping_interval=0.2), make_edge(ping_interval=0.2)
    await talker.open()
    await silent.open()
    for _ in range(10):  # 0.5 s: the talker sends every 50 ms
        talker.proto.data_received(client_frame(1, b"{}"))
        await asyncio.sleep(0.05)
    assert not any(op == 0x9 for op, _ in talker.t.server_frames())
    assert any(op == 0x9 for op, _ in silent.t.server_frames())
    await asyncio.sleep(0.6)  # now the talker is silent too: pinged, then failed for no pong
    assert any(op == 0x9 for op, _ in talker.t.server_frames())


# --- the real edge app under uvicorn with this protocol, and a client we did not write ----------


@pytest.fixture
async def edge_server(casino: Any) -> Any:
    from edge_agent.api.app import create_app
    from tests.edge.conftest import serving

    async with serving(capture(create_app(casino)), wsproto.PlayerProtocol) as where:
        yield where


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_the_websockets_client_plays_through_either_path(casino: Any, edge_server: str, compression: Any,
                                                               monkeypatch: Any) -> None:
    """Without compression the client's messages take the direct path, with permessage-deflate
    uvicorn's; the answers are the same, fragmented messages included."""
    import json

    import websockets

    from tests.edge.conftest import fund, player_token

    direct: list[str] = []
    attach = wsproto.deliver_text

    def counting(proto: Any, handler: Any) -> bool:
        def h(text: str) -> None:
            direct.append(text)
            handler(text)
        return attach(proto, h if handler is not None else None)

    monkeypatch.setattr(wsproto, "deliver_text", counting)
    psn = casino.ensure_player("alice")
    await fund(casino, psn, 10_000)
    casino.open_round("roulette-1")
    async with websockets.connect(f"ws://{edge_server}/v1/ws?token={player_token('alice')}",
                                  compression=compression) as ws:
        assert json.loads(await ws.recv())["type"] == "hello"
        await ws.send(json.dumps({"type": "bet", "req": 1, "table_id": "roulette-1", "spot": "red", "amount": 500}))
        await ws.send("{broken")
        bet = json.dumps({"type": "bet", "req": 2, "table_id": "roulette-1", "spot": "black", "amount": 300})
        await ws.send([bet[:20], bet[20:]])  # one message in two frames
        await ws.send(b"\x00binary")
        got: dict[Any, Any] = {}
        while len(got) < 4:
            m = json.loads(await ws.recv())
            key = m.get("req") if m.get("req") is not None else m["error"]["code"]
            got[key] = m
    assert got[1]["type"] == "bet.accepted" and got[2]["type"] == "bet.accepted"
    assert got[2]["balance"] == 10_000 - 500 - 300
    assert set(got) == {1, 2, "malformed_json", "invalid_request"}
    if compression is None:
        assert json.loads(direct[0])["req"] == 1 and "{broken" in direct
    else:
        assert direct == []  # every frame compressed: uvicorn's path
