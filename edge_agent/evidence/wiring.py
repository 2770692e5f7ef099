"""Composition: round video evidence and the vision check on an edge with a studio feed.

`EdgeConfig.video` (a mapping, see VideoConfig) switches it on; the media path's tap feeds it,
the casino calls its round hooks (`casino.round_evidence`), the clip routes are mounted."""
from __future__ import annotations

from typing import Any

from edge_agent.evidence.config import VideoConfig
from edge_agent.evidence.hooks import RoundEvidence
from edge_agent.evidence.service import EvidenceService


def video_config(config: Any) -> VideoConfig | None:
    raw = getattr(config, "video", None)
    if raw is None or config.media is None:
        return None
    return raw if isinstance(raw, VideoConfig) else VideoConfig.model_validate(raw)


def attach(edge: Any) -> RoundEvidence:
    """Build the round evidence of `edge` (a runtime.Edge); a no-op object without `video`."""
    casino, cfg = edge.casino, edge.config
    vc = video_config(cfg)
    evidence = check = None
    if vc is not None:
        evidence = EvidenceService(vc, cfg.media, casino.engine.record, casino.store.query, clock=casino.clock)
        if vc.vision is not None:
            from edge_agent.vision.check import RevealCheck

            games = {t.table_id: t.game for t in cfg.tables}
            check = RevealCheck(vc.vision, cfg.media, games, casino.engine.record, casino.events.publish)
    hooks = RoundEvidence(evidence, check)
    if vc is not None:
        for table in edge.media.tables.values():
            table.tap = hooks.on_frame
        from edge_agent.evidence.routes import player_clip_router

        edge.app.include_router(player_clip_router(edge.app.state.edge))
        # `edge-agent export --with-video` finds the clips from the journal's kv.
        hooks.on_start = lambda: casino.store.put_setting("video.dir", str(vc.dir.resolve()))
    casino.round_evidence = hooks
    casino.evidence = evidence
    if vc is not None:
        casino.rounds.witness = hooks
    return hooks
