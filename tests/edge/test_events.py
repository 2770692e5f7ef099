"""The event hub's fan-out: order, the wire form, the replies' lane, the overflow rule."""
from __future__ import annotations

import asyncio

import orjson

from edge_agent import events as EV
from edge_agent.api.wsframes import frame


async def test_a_sliced_fan_out_keeps_publish_order_for_every_subscriber() -> None:
    hub = EV.EventHub()
    qs = [hub.subscribe("table:t", f"player:p{i}", wire=i % 2 == 0) for i in range(EV.SLICE * 3 + 7)]
    hub.publish("table:t", {"type": "a", "n": 1})
    hub.publish("player:p5", {"type": "mine"})      # behind the table event still being fanned out
    hub.publish("table:t", {"type": "b", "n": 2})
    assert sum(q.empty() for q in qs) == len(qs) - EV.SLICE  # the rest follows a slice per loop turn
    for _ in range(20):
        await asyncio.sleep(0)
    for i, q in enumerate(qs):
        got = [q.get_nowait() for _ in range(q.qsize())]
        kinds = [g.type if isinstance(g, EV.Wire) else g["type"] for g in got]
        assert kinds == (["a", "mine", "b"] if i == 5 else ["a", "b"]), i
        if i % 2 == 0:
            assert orjson.loads(got[0].text) == {"type": "a", "n": 1}
        else:
            assert got[0] == {"type": "a", "n": 1}


async def test_replies_go_ahead_of_queued_events_in_their_own_order() -> None:
    hub = EV.EventHub()
    q = hub.subscribe("table:t", wire=True)
    hub.publish("table:t", {"type": "e1"})
    hub.publish("table:t", {"type": "e2"})
    q.put_ahead("r1")
    q.put_ahead("r2")
    got = [q.get_nowait() for _ in range(4)]
    assert got[:2] == ["r1", "r2"] and [g.type for g in got[2:]] == ["e1", "e2"]
    q.put_ahead("r3")                                 # the lane is empty again: r3 is next
    hub.publish("table:t", {"type": "e3"})
    assert q.get_nowait() == "r3" and q.get_nowait().type == "e3"


async def test_a_subscriber_bound_events_behind_is_dropped_and_keeps_its_replies() -> None:
    hub = EV.EventHub()
    q = hub.subscribe("table:t", wire=True)
    q.put_ahead("reply")
    for i in range(EV.QUEUE_BOUND):                  # replies do not count against the bound
        hub.publish("table:t", {"type": "e", "i": i})
    assert q.qsize() == EV.QUEUE_BOUND
    hub.publish("table:t", {"type": "e", "i": -1})
    assert q.get_nowait() == "reply" and q.get_nowait() is None and q.empty()
    hub.publish("table:t", {"type": "e"})             # unsubscribed: nothing more arrives
    assert q.empty()


def test_frames_are_unmasked_text_frames_of_every_length_class() -> None:
    for n in (0, 125, 126, 65_535, 65_536):
        f = frame(b"x" * n)
        assert f[0] == 0x81 and not f[1] & 0x80
        head = {0: 2, 125: 2, 126: 4, 65_535: 4, 65_536: 10}[n]
        assert len(f) == head + n
