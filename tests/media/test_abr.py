"""ABR: feedback picks a lower rung, and the viewer moves there at a keyframe, never mid-GOP."""
from __future__ import annotations

from dataclasses import dataclass, field

from edge_agent.media.abr import AbrController
from edge_agent.media.fanout import EncodedFrame, TableFanout

BITRATES = [2_000_000, 800_000, 250_000]


@dataclass(eq=False)
class FakeViewer:
    rung: int
    target: int
    awaiting_key: bool = True
    late_frames: int = 0
    got: list[tuple[int, int, bool]] = field(default_factory=list)

    def send_frame(self, frame: EncodedFrame) -> None:
        self.got.append((frame.rung, frame.pts, frame.key))


def _instant(fan: TableFanout, n: int, key: bool) -> None:
    # The transcoder emits every rung of one picture in ladder order, same pts.
    for rung in range(3):
        fan.push(EncodedFrame(rung, n * 3600, key, [b"x"], 1))


def test_remb_below_top_rung_steps_down() -> None:
    abr = AbrController(BITRATES, rung=0)
    assert abr.on_remb(5_000_000, now=0) == 0
    assert abr.on_remb(1_200_000, now=1) == 1
    assert abr.on_remb(200_000, now=2) == 2


def test_loss_steps_down_one_rung_at_a_time_and_recovers_slowly() -> None:
    abr = AbrController(BITRATES, rung=0)
    abr.on_remb(10_000_000, now=0)
    assert abr.on_receiver_report(0.20, 0.05, now=1) == 1
    assert abr.on_receiver_report(0.20, 0.05, now=1.5) == 1  # at most one step down per second
    assert abr.on_receiver_report(0.20, 0.05, now=2.6) == 2
    # Loss gone: up only after the estimate has had headroom for up_hold_s.
    assert abr.on_receiver_report(0.0, 0.05, now=3) == 2
    assert abr.on_receiver_report(0.0, 0.05, now=5) == 2
    assert abr.on_receiver_report(0.0, 0.05, now=6.1) == 1


def test_high_rtt_steps_down() -> None:
    abr = AbrController(BITRATES, rung=1)
    assert abr.on_receiver_report(0.0, 0.8, now=0) == 2


def test_new_viewer_starts_from_gop_cache() -> None:
    fan = TableFanout(3)
    _instant(fan, 0, True)
    _instant(fan, 1, False)
    _instant(fan, 2, False)
    v = FakeViewer(rung=1, target=1)
    fan.add(v)
    assert v.got == [(1, 0, True), (1, 3600, False), (1, 7200, False)]
    _instant(fan, 3, False)
    assert v.got[-1] == (1, 10800, False)


def test_viewer_moves_down_at_keyframe_after_loss_feedback() -> None:
    fan = TableFanout(3)
    v = FakeViewer(rung=0, target=0)
    abr = AbrController(BITRATES, rung=0)
    _instant(fan, 0, True)
    fan.add(v)
    _instant(fan, 1, False)
    v.target = abr.on_receiver_report(0.25, 0.05, now=10)  # heavy loss in an RTCP RR
    assert v.target == 1
    _instant(fan, 2, False)  # mid-GOP: still on the old rung
    assert v.got[-1] == (0, 7200, False) and v.rung == 0
    _instant(fan, 3, True)  # keyframe: switch
    assert v.rung == 1
    assert v.got[-1] == (1, 10800, True)
    assert (0, 10800, True) not in v.got  # never both rungs of one instant
    _instant(fan, 4, False)
    assert v.got[-1] == (1, 14400, False)
    assert fan.switches == [(0, 1)]


def test_viewer_moves_up_at_keyframe() -> None:
    fan = TableFanout(3)
    v = FakeViewer(rung=2, target=2)
    _instant(fan, 0, True)
    fan.add(v)
    v.target = 0
    _instant(fan, 1, False)
    assert v.got[-1] == (2, 3600, False)
    _instant(fan, 2, True)
    # Rung 0's keyframe of this instant was pushed before rung 2's: taken from the GOP cache.
    assert v.rung == 0 and v.got[-1] == (0, 7200, True)
    assert [g for g in v.got if g[1] == 7200] == [(0, 7200, True)]


def test_a_failing_viewer_is_dropped_without_stalling_the_others() -> None:
    class Broken(FakeViewer):
        def send_frame(self, frame: EncodedFrame) -> None:
            raise OSError("socket closed")

    fan = TableFanout(3)
    _instant(fan, 0, True)
    bad, good = Broken(rung=0, target=0, awaiting_key=False), FakeViewer(rung=0, target=0)
    fan.hubs[0].sinks.update({bad, good})
    good.awaiting_key = False
    _instant(fan, 1, False)
    assert good.got == [(0, 3600, False)]
    assert bad not in fan.hubs[0].sinks and good in fan.hubs[0].sinks
