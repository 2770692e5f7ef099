"""Journal kinds of round video evidence (CONTRACT section 2 has `round.video`; the rest are ours)."""
from __future__ import annotations

ROUND_VIDEO = "round.video"          # table_id, chain_id, n, sha256, bytes, start_ts, end_ts, container, rung
VIDEO_FAILED = "video.failed"        # table_id, chain_id, n, reason: the round has no clip
VIDEO_RECOVERED = "video.recovered"  # table_id, chain_id, n, action: finished | discarded, reason
VIDEO_DELETED = "video.deleted"      # table_id, chain_id, n, sha256, reason: the clip is gone, its hash is not
