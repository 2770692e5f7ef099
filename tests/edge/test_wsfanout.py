"""Broadcast writes off the event loop (edge_agent/api/wsfanout.py, _wsfanout.c) and the order
FrameWriter keeps around them: on real sockets (socketpairs under a real asyncio transport)."""
from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import pytest

from edge_agent import events as EV
from edge_agent.api import wsfanout as WF
from edge_agent.api import wsframes
from edge_agent.api.wsframes import FrameWriter, frame

IMPLS = [pytest.param(WF._py_send_each, id="python")]
if WF.AVAILABLE:
    IMPLS.append(pytest.param(WF.send_each, id="c"))


def _pair(sndbuf: int | None = None) -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    if sndbuf:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sndbuf)
    a.setblocking(False)
    return a, b


def _read_all(s: socket.socket, n: int) -> bytes:
    s.settimeout(5)
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


@pytest.mark.parametrize("send_each", IMPLS)
def test_send_each_writes_every_fd_whole_or_says_how_much(send_each: Any) -> None:
    pairs = [_pair() for _ in range(3)]
    small = _pair(sndbuf=4096)
    fds = [a.fileno() for a, _ in pairs] + [small[0].fileno()]
    big = b"x" * (4 << 20)  # more than a small socket buffer takes without a reader
    assert send_each(fds[:3], b"hello", False) == []
    assert [_read_all(b, 5) for _, b in pairs] == [b"hello"] * 3
    assert send_each(fds[:3], [b"a", b"bb", b"ccc"], False) == []
    assert [_read_all(b, k) for (_, b), k in zip(pairs, (1, 2, 3))] == [b"a", b"bb", b"ccc"]
    left = send_each([fds[3]], big, False)
    assert len(left) == 1 and left[0][0] == 0 and 0 < left[0][1] < len(big)
    for a, b in [*pairs, small]:
        a.close()
        b.close()


@pytest.mark.parametrize("send_each", IMPLS)
def test_send_each_closes_the_fds_it_was_given(send_each: Any) -> None:
    a, b = _pair()
    dup = os.dup(a.fileno())
    assert send_each([dup], b"x", True) == []
    with pytest.raises(OSError):
        os.fstat(dup)
    assert _read_all(b, 1) == b"x"
    a.close()
    b.close()


def test_send_each_refuses_bad_arguments_before_writing() -> None:
    if not WF.AVAILABLE:
        pytest.skip("C extension not built")
    with pytest.raises(ValueError):
        WF.send_each([1, 2], [b"x"], False)
    with pytest.raises(TypeError):
        WF.send_each([1], "text", False)


class _Proto(asyncio.Protocol):
    """What FrameWriter needs of uvicorn's websockets-sansio protocol."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.close_sent = False
        self.disconnected = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.disconnected = True


class _WS:
    def __init__(self, proto: _Proto) -> None:
        self.scope = {wsframes.SCOPE_KEY: proto}


async def _socket(sndbuf: int | None = None) -> tuple[FrameWriter, _Proto, socket.socket]:
    a, b = _pair(sndbuf)
    proto = _Proto()
    await asyncio.get_running_loop().connect_accepted_socket(lambda: proto, a)
    return FrameWriter(_WS(proto)), proto, b  # type: ignore[arg-type]


def _texts(raw: bytes) -> list[str]:
    out, i = [], 0
    while i < len(raw):
        n, head = raw[i + 1] & 0x7F, 2
        if n == 126:
            n, head = int.from_bytes(raw[i + 2:i + 4], "big"), 4
        elif n == 127:
            n, head = int.from_bytes(raw[i + 2:i + 10], "big"), 10
        out.append(raw[i + head:i + head + n].decode())
        i += head + n
    return out


async def _drain(b: socket.socket, n: int) -> bytes:
    return await asyncio.get_running_loop().run_in_executor(None, _read_all, b, n)


@pytest.fixture(params=IMPLS)
def impl(request: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(WF, "send_each", request.param)
    return request.param


async def test_writes_wait_while_the_thread_holds_the_socket_then_follow_it(impl: Any) -> None:
    w, proto, b = await _socket()
    fd = w.claim()
    assert fd is not None and w.busy and w.claim() is None  # one holder at a time
    ack = asyncio.ensure_future(w.write(["ack"]))            # the socket's own reply: waits
    proto.transport.write(frame(b"ping"))                    # uvicorn's own write: waits too
    await asyncio.sleep(0.01)
    assert not ack.done() and proto.transport.get_write_buffer_size() == 0
    card = frame(b"card")
    assert impl([fd], card, False) == []
    w.release(b"")
    await ack
    assert _texts(await _drain(b, 3 * 2 + len("card") + len("ping") + len("ack"))) == ["card", "ping", "ack"]
    proto.transport.close()
    b.close()


async def test_the_part_the_kernel_did_not_take_goes_before_everything_else(impl: Any) -> None:
    w, proto, b = await _socket(sndbuf=4096)
    big = "y" * (2 << 20)
    data = frame(big.encode())
    fd = w.claim()
    assert fd is not None
    left = impl([fd], data, False)
    assert left and left[0][1] < len(data)                   # partial: the buffer filled up
    ack = asyncio.ensure_future(w.write(["ack"]))
    proto.transport.write(frame(b"ping"))
    w.release(data[left[0][1]:])                             # the rest, to the transport
    reader = asyncio.ensure_future(_drain(b, len(data) + 2 * 2 + 7))
    await ack
    assert _texts(await reader) == [big, "ping", "ack"]
    proto.transport.close()
    b.close()


async def test_a_close_while_held_waits_for_the_broadcast() -> None:
    w, proto, b = await _socket()
    fd = w.claim()
    assert fd is not None
    proto.transport.write(frame(b"bye"))
    proto.transport.close()                                  # uvicorn closing: after the broadcast
    assert proto.transport.is_closing()
    WF.send_each([fd], frame(b"card"), False)
    w.release(b"")
    assert _texts(await _drain(b, 6 + 5)) == ["card", "bye"]
    await asyncio.sleep(0.01)
    assert b.recv(1) == b""                                  # then closed
    b.close()


async def test_no_claim_with_a_transport_buffer_or_after_the_writer_stopped() -> None:
    w, proto, b = await _socket(sndbuf=4096)
    proto.transport.write(b"z" * (1 << 20))                  # the transport buffers what is left
    assert proto.transport.get_write_buffer_size() > 0 and w.claim() is None
    w2, proto2, b2 = await _socket()
    w2.done = True
    assert w2.claim() is None
    for p, s in ((proto, b), (proto2, b2)):
        p.transport.abort()
        s.close()


async def _until_free(*ws: FrameWriter) -> None:
    for _ in range(200):
        if not any(w.busy for w in ws):
            return
        await asyncio.sleep(0.005)
    raise AssertionError("a socket stayed held")


async def test_a_reply_goes_out_at_once_only_when_nothing_is_under_way() -> None:
    w, proto, b = await _socket()
    assert w.reply(b"ack1")                                  # idle: claimed, sent at the end of this turn
    assert w.busy and not w.reply(b"ack2")                   # held until then: the caller queues ack2
    await _until_free(w)
    fd = w.claim()
    assert fd is not None
    assert not w.reply(b"ack2")                              # the thread holds it: the caller queues it
    WF.send_each([fd], frame(b"card"), False)
    w.release(b"")
    proto.writable.clear()                                   # flow control paused the socket
    assert not w.reply(b"ack3")
    proto.writable.set()
    w.writing = True                                         # the writer task has texts in hand
    assert not w.reply(b"ack4")
    w.writing = False
    assert w.reply(b"ack5")
    await _until_free(w)
    proto.close_sent = True
    assert not w.reply(b"ack6")
    assert _texts(await _drain(b, 3 * 2 + 3 * 4)) == ["ack1", "card", "ack5"]
    proto.transport.close()
    b.close()


async def test_replies_of_one_loop_turn_go_to_the_threads_as_one_batch(impl: Any) -> None:
    socks = [await _socket() for _ in range(WF.MIN_THREADED + 4)]
    fan = socks[0][0].fanout
    batches = fan.batches
    for i, (w, _, _) in enumerate(socks):
        assert w.reply(f"ack{i}".encode())
    assert all(w.busy for w, _, _ in socks)                  # claimed, not yet written
    await _until_free(*(w for w, _, _ in socks))
    assert fan.batches == batches + 1                        # one batch for the whole turn
    for i, (_, _, b) in enumerate(socks):
        assert _texts(await _drain(b, 2 + len(f"ack{i}"))) == [f"ack{i}"]
    w, proto, b = await _socket(sndbuf=4096)
    proto.transport.write(b"z" * (1 << 20))                  # a transport buffer: no claim, written behind it
    assert w.reply(b"late") and not w.busy and proto.transport.get_write_buffer_size() > 1 << 19
    for _, p, s in [*socks, (w, proto, b)]:
        p.transport.abort()
        s.close()


async def test_the_hub_writes_idle_sockets_directly_and_queues_behind_pending_replies(impl: Any) -> None:
    hub = EV.EventHub()
    socks = [await _socket() for _ in range(WF.MIN_THREADED + 4)]
    qs = []
    for i, (w, _, _) in enumerate(socks):
        q = hub.subscribe("table:t", f"player:p{i}", wire=True)
        q.sink = w
        qs.append(q)
    qs[0].put_ahead('{"type":"act.accepted"}')               # an ack not yet written: the card queues behind it
    hub.publish("table:t", {"type": "blackjack.card", "card": "AS"})
    assert [q.qsize() for q in qs[1:]] == [0] * (len(qs) - 1)  # the others: handed to the thread
    assert [g for g in (qs[0].get_nowait(), qs[0].get_nowait())][1].type == "blackjack.card"
    for w, _, b in socks[1:]:
        got = _texts(await _drain(b, len(frame(b'{"type":"blackjack.card","card":"AS"}'))))
        assert got == ['{"type":"blackjack.card","card":"AS"}']
    for _ in range(50):
        if not any(w.busy for w, _, _ in socks):
            break
        await asyncio.sleep(0.01)
    assert not any(w.busy for w, _, _ in socks)
    for _, p, b in socks:
        p.transport.close()
        b.close()


async def test_a_table_result_and_each_players_own_event_go_out_together() -> None:
    hub = EV.EventHub()
    socks = [await _socket() for _ in range(WF.MIN_THREADED + 2)]
    for i, (w, _, _) in enumerate(socks):
        q = hub.subscribe("table:t", f"player:p{i}", wire=True)
        q.sink = w
    queued = hub.subscribe("table:t", "player:p0", wire=True)  # a second socket of p0, no sink
    watcher = hub.subscribe("all")
    lone = hub.subscribe("player:p1")                         # holds p1's topic, not the table's
    own = {f"player:p{i}": {"type": "settlement", "i": i} for i in range(len(socks))}
    hub.publish_with_own("table:t", [{"type": "blackjack.dealer"}, {"type": "round.settled"}], own)
    for i, (_, _, b) in enumerate(socks):
        texts = ['{"type":"blackjack.dealer"}', '{"type":"round.settled"}', f'{{"type":"settlement","i":{i}}}']
        assert _texts(await _drain(b, sum(len(frame(t.encode())) for t in texts))) == texts
    assert [g.type for g in (queued.get_nowait() for _ in range(3))] == ["blackjack.dealer", "round.settled",
                                                                         "settlement"]
    assert lone.get_nowait() == {"type": "settlement", "i": 1} and lone.empty()
    seen = [watcher.get_nowait()["type"] for _ in range(watcher.qsize())]
    assert seen == ["blackjack.dealer", "round.settled"] + ["settlement"] * len(socks)
    await asyncio.sleep(0.05)
    for _, p, b in socks:
        p.transport.close()
        b.close()


async def test_a_socket_that_cannot_take_more_is_queued_and_dropped_at_the_bound() -> None:
    hub = EV.EventHub()
    w, proto, b = await _socket(sndbuf=4096)
    proto.transport.write(b"z" * (1 << 20))                  # a client that stopped reading
    q = hub.subscribe("table:t", wire=True)
    q.sink = w
    for i in range(EV.QUEUE_BOUND):
        hub.publish("table:t", {"type": "e", "i": i})
    assert q.qsize() == EV.QUEUE_BOUND                       # never claimed: all queued
    hub.publish("table:t", {"type": "e", "i": -1})
    assert q.get_nowait() is None                            # the too_slow rule
    proto.transport.abort()
    b.close()


async def test_one_fd_per_socket_for_the_threads_closed_once_the_writer_stops_and_the_thread_is_done() -> None:
    w, proto, b = await _socket()
    fd = w.claim()
    assert fd is not None and fd != w.fd
    w.release(b"")
    assert w.claim() == fd                                   # the same dup() every time
    w.stop()                                                 # the writer stopped while the thread holds it
    os.fstat(fd)                                             # still open: the thread may be writing
    assert WF.send_each([fd], frame(b"last"), False) == []
    w.release(b"")
    with pytest.raises(OSError):
        os.fstat(fd)                                         # closed with the release
    assert w.claim() is None
    w2, proto2, b2 = await _socket()
    fd2 = w2.claim()
    assert fd2 is not None
    w2.release(b"")
    w2.stop()                                                # idle: closed at once
    with pytest.raises(OSError):
        os.fstat(fd2)
    assert _texts(await _drain(b, 6)) == ["last"]
    for p, s in ((proto, b), (proto2, b2)):
        p.transport.close()
        s.close()


needs_c = pytest.mark.skipif(not WF.AVAILABLE, reason="the C extension is not built")


def _threads_stat(field: int) -> list[int]:
    """One numeric field of /proc/<pid>/task/<tid>/stat for every thread of this process
    (counted from the state, the field after the command's parenthesis)."""
    out = []
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/stat") as f:
            out.append(int(f.read().rsplit(")", 1)[1].split()[field]))
    return out


def _nices() -> list[int]:
    """The nice value of every thread of this process."""
    return _threads_stat(16)


def _policies() -> list[int]:
    """The scheduling policy of every thread of this process (0 SCHED_OTHER, 3 SCHED_BATCH)."""
    return _threads_stat(38)


@needs_c
def test_sender_threads_run_as_batch_threads_when_asked() -> None:
    """SCHED_BATCH: a thread the loop wakes does not preempt the loop (same share of the CPU)."""
    from edge_agent.api._wsfanout import Sender

    before = _policies().count(3)
    plain, batch = Sender(1), Sender(2, 0, True)
    try:
        assert _policies().count(3) == before + 2
        assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the caller's own policy is unchanged
    finally:
        plain.close()
        batch.close()


def _collect(sender: Any, batches: int) -> dict[int, list[tuple[int, int]]]:
    """Wait on the Sender's eventfd until `batches` batches are reported."""
    import select

    got: dict[int, list[tuple[int, int]]] = {}
    while len(got) < batches:
        assert select.select([sender.fileno()], [], [], 5)[0], "no batch reported within 5 s"
        got.update(dict(sender.completed()))
    return got


@needs_c
def test_sender_threads_send_every_batch_and_report_what_was_not_taken() -> None:
    from edge_agent.api._wsfanout import Sender

    before = _nices().count(7)
    sender = Sender(2, 7)
    try:
        pairs = [_pair() for _ in range(40)]
        small, peer = _pair(sndbuf=4096)
        dead_a, dead_b = _pair()
        dead_b.close()
        big = b"z" * (1 << 21)
        one = sender.submit([a.fileno() for a, _ in pairs[:20]], b"card")
        two = sender.submit([a.fileno() for a, _ in pairs[20:]], [f"own{i}".encode() for i in range(20)])
        three = sender.submit([small.fileno(), dead_a.fileno()], [big, b"late"])
        got = _collect(sender, 3)
        assert got[one] == [] and got[two] == []
        assert [_read_all(b, 4) for _, b in pairs[:20]] == [b"card"] * 20
        assert [_read_all(b, 3 + len(str(i))) for i, (_, b) in enumerate(pairs[20:])] == [
            f"own{i}".encode() for i in range(20)]
        (i_small, sent_small), (i_dead, sent_dead) = sorted(got[three])
        assert (i_small, i_dead) == (0, 1) and 0 < sent_small < len(big) and sent_dead == 0
        assert sender.completed() == []  # reported once
        with pytest.raises(TypeError):
            sender.submit([pairs[0][0].fileno()], "text, not bytes")
        with pytest.raises(ValueError):
            sender.submit([pairs[0][0].fileno()], [b"a", b"b"])
        assert sender.completed() == []  # refused batches were never queued
        # The threads run at the nice value asked for (the event loop keeps its own).
        assert _nices().count(7) == before + 2 and os.getpriority(os.PRIO_PROCESS, 0) == 0
    finally:
        sender.close()
    for a, b in pairs + [(small, peer), (dead_a, dead_b)]:
        a.close()
        b.close()


@needs_c
def test_urgent_batches_are_sent_before_queued_broadcasts() -> None:
    """Replies (urgent) overtake the broadcast batches still queued: an acknowledgement must not
    wait behind 5,000 sends of a card."""
    from edge_agent.api._wsfanout import Sender

    sender = Sender(1)
    wide = [_pair() for _ in range(1500)]
    few = [_pair() for _ in range(3)]
    try:
        fds = [a.fileno() for a, _ in wide]
        first = sender.submit(fds, b"card")            # the thread starts on it at once
        later = [sender.submit(fds, b"card") for _ in range(3)]
        reply = sender.submit([a.fileno() for a, _ in few], b"ack", True)
        order: list[int] = []
        while len(order) < 5:
            import select
            assert select.select([sender.fileno()], [], [], 5)[0]
            order += [b for b, _ in sender.completed()]
        assert order.index(reply) < min(order.index(b) for b in later)
        assert order.index(first) < min(order.index(b) for b in later)  # the others keep their order
        assert [order.index(b) for b in later] == sorted(order.index(b) for b in later)
        assert all(_read_all(b, 3) == b"ack" for _, b in few)
    finally:
        sender.close()
    for a, b in wide + few:
        a.close()
        b.close()


@needs_c
def test_sender_close_sends_what_is_queued_then_refuses_more() -> None:
    from edge_agent.api._wsfanout import Sender

    sender = Sender(1)
    pairs = [_pair() for _ in range(200)]
    ids = [sender.submit([a.fileno()], b"bye") for a, _ in pairs]
    sender.close()
    assert sorted(dict(sender.completed())) == sorted(ids)
    assert all(_read_all(b, 3) == b"bye" for _, b in pairs)
    with pytest.raises(RuntimeError):
        sender.submit([pairs[0][0].fileno()], b"more")
    for a, b in pairs:
        a.close()
        b.close()


@needs_c
def test_a_forked_child_neither_uses_nor_waits_for_its_parents_sender_threads() -> None:
    from edge_agent.api._wsfanout import Sender

    sender = Sender(2)
    a, b = _pair()
    pid = os.fork()
    if pid == 0:  # the child: no threads of the parent's here; close and drop must not hang
        code = 0
        try:
            try:
                sender.submit([a.fileno()], b"from the child")
                code = 1
            except RuntimeError:
                pass
            if sender.completed() != []:
                code = 2
            sender.close()
        except BaseException:  # noqa: BLE001
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    batch = sender.submit([a.fileno()], b"parent")  # the parent's threads still work
    assert _collect(sender, 1) == {batch: []} and _read_all(b, 6) == b"parent"
    sender.close()
    a.close()
    b.close()
