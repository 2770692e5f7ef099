"""Per-viewer rung choice from receiver feedback (REMB, RTCP RR loss and RTT).

Down fast, up slow: a rung is dropped as soon as the estimate cannot carry it or loss is high;
a higher rung is taken only after the estimate has had headroom for `up_hold_s`. The switch
itself happens at the next keyframe (the fan-out does that); this only picks the target.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class AbrController:
    bitrates_bps: list[int]  # rung 0 is the top rung (highest bitrate)
    rung: int = 0
    headroom: float = 0.85  # use at most this share of the estimate
    loss_down: float = 0.08  # fraction lost (RR) that forces a step down
    loss_up_max: float = 0.02
    rtt_down_s: float = 0.4
    up_hold_s: float = 3.0
    remb_bps: float | None = None
    loss: float = 0.0
    rtt_s: float | None = None
    _up_since: float | None = field(default=None, repr=False)
    _last_down: float = field(default=-1e9, repr=False)

    def on_remb(self, bps: float, now: float | None = None) -> int:
        self.remb_bps = bps
        return self._decide(time.monotonic() if now is None else now)

    def on_receiver_report(self, fraction_lost: float, rtt_s: float | None, now: float | None = None) -> int:
        self.loss = fraction_lost
        if rtt_s is not None:
            self.rtt_s = rtt_s
        return self._decide(time.monotonic() if now is None else now)

    def _fits(self, rung: int) -> bool:
        return self.remb_bps is None or self.bitrates_bps[rung] <= self.remb_bps * self.headroom

    def _decide(self, now: float) -> int:
        lowest = len(self.bitrates_bps) - 1
        congested = self.loss >= self.loss_down or (self.rtt_s is not None and self.rtt_s >= self.rtt_down_s)
        if congested and self.rung < lowest and now - self._last_down > 1.0:
            self.rung += 1
            self._last_down, self._up_since = now, None
            return self.rung
        if not self._fits(self.rung) and self.rung < lowest:
            while self.rung < lowest and not self._fits(self.rung):
                self.rung += 1
            self._last_down, self._up_since = now, None
            return self.rung
        if self.rung > 0 and self._fits(self.rung - 1) and not congested and self.loss <= self.loss_up_max:
            if self._up_since is None:
                self._up_since = now
            elif now - self._up_since >= self.up_hold_s:
                self.rung -= 1
                self._up_since = None
        else:
            self._up_since = None
        return self.rung
