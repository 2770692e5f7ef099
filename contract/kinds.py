"""Every kind of journal entry an edge writes, named once.

The fairness kinds (CONTRACT section 2) live in contract.journal and the money/KYC kinds the
cloud reads in contract.sync; the rest are the edge's own bookkeeping. Configuration that names
kinds (the residency policy's `allow_kinds`, `redact_fields`) is checked against this set.
"""
from __future__ import annotations

from contract import blackjack as BJ
from contract import journal as J
from contract import sync as S
from contract.video import ROUND_VIDEO  # CONTRACT section 2: a round's clip

# The edge's own kinds (state it replays; the cloud stores them, reads few).
PLAYER_REGISTERED = "player.registered"     # player, jurisdiction
PLAYER_SETTINGS = "player.settings"         # player, reality_check_min
SESSION_STARTED = "session.started"         # player, session_id
SESSION_ENDED = "session.ended"             # player, session_id, reason
LIMITS_CHANGED = "limits.changed"           # player, limit, period, amount|None, effective_ts
TABLE_RULES = "table.rules"                 # table_id, version, game, limits
TABLE_STATUS = "table.status"               # table_id, enabled, reason, by
TABLE_FEED = "table.feed"                   # table_id, live, reason
REGULATOR_QUERY = "regulator.query"         # regulator, jurisdiction, route, params, status
# Round video evidence (CONTRACT section 2 has `round.video`) and the camera's check of a reveal.
VIDEO_FAILED = "video.failed"        # table_id, chain_id, n, reason: the round has no clip
VIDEO_RECOVERED = "video.recovered"  # table_id, chain_id, n, action: finished | discarded, reason
VIDEO_DELETED = "video.deleted"      # table_id, chain_id, n, sha256, reason: the clip is gone, its hash is not
VISION_CHECKED = "vision.checked"    # table_id, chain_id, n, result, expected, seen, latency_ms

FAIRNESS_KINDS = frozenset({J.FAIRNESS_CHAIN, J.ROUND_OPENED, J.ROUND_CLOSED, J.BET_PLACED,
                            J.ROUND_SETTLED, J.ROUND_VOIDED,
                            BJ.DEALT, BJ.DECISION, BJ.CARD})  # a blackjack round's steps
MONEY_KINDS = frozenset({S.DEPOSIT_REQUESTED, S.DEPOSIT_CREDITED, S.DEPOSIT_REFUSED, S.DEPOSIT_DECLINED,
                         S.WITHDRAWAL_REQUESTED, S.WITHDRAWAL_PAID, S.WITHDRAWAL_RELEASED})
PLAYER_KINDS = frozenset({S.PLAYER_EXCLUDED, S.KYC_REQUESTED, S.KYC_UPDATED, PLAYER_REGISTERED,
                          PLAYER_SETTINGS, SESSION_STARTED, SESSION_ENDED, LIMITS_CHANGED})
EDGE_KINDS = frozenset({S.COMMAND_APPLIED, TABLE_RULES, TABLE_STATUS, TABLE_FEED, REGULATOR_QUERY})
EVIDENCE_KINDS = frozenset({ROUND_VIDEO, VIDEO_FAILED, VIDEO_RECOVERED, VIDEO_DELETED, VISION_CHECKED})

JOURNAL_KINDS: frozenset[str] = FAIRNESS_KINDS | MONEY_KINDS | PLAYER_KINDS | EDGE_KINDS | EVIDENCE_KINDS
