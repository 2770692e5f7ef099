"""Journal kinds of round video evidence (CONTRACT section 2 has `round.video`; the rest are ours).

Named once, in contract.kinds (the residency policy is checked against that list)."""
from __future__ import annotations

from contract.kinds import ROUND_VIDEO, VIDEO_DELETED, VIDEO_FAILED, VIDEO_RECOVERED

__all__ = ["ROUND_VIDEO", "VIDEO_DELETED", "VIDEO_FAILED", "VIDEO_RECOVERED"]
