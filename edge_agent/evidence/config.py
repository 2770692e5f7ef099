"""Video evidence settings (EdgeConfig `video`): where clips live, for how long, within what budget."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from edge_agent.vision.config import VisionConfig


class VideoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # In-country storage of the clips (never synced: the cloud gets the `round.video` entry only).
    dir: Path = Path("var/edge/video")
    # Ladder rung recorded (remuxed as encoded, never re-encoded); None = the lowest rung.
    rung: str | None = None
    # The jurisdiction's retention period; clips older than this are deleted (journaled).
    retention_days: float = Field(90.0, gt=0)
    # Disk budget for clips: recording stops at 100 % (the table keeps running); the alarm
    # (`casino_video_storage_ratio`) is raised from `alarm_ratio` on.
    budget_bytes: int = Field(50 * 10**9, gt=0)
    alarm_ratio: float = Field(0.85, gt=0, le=1)
    sweep_interval_s: float = Field(3600.0, gt=0)
    # The camera check of reveals (None: clips only).
    vision: VisionConfig | None = None
