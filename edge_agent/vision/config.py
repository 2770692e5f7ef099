"""Vision settings (EdgeConfig `video.vision`): which rung the camera check reads and where each
table's dealer takes its dealing instructions."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class VisionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Rung decoded for the check (a second decode of what the ladder made); None = the rung
    # closest to 360 lines, where a card's rank is some 14 pixels tall.
    rung: str | None = None
    # A reveal not read by then is unreadable: the round is voided (dealer_error).
    timeout_s: float = Field(12.0, gt=0)
    # Dealer link per table: "udp://host:port" of the dealer display (the studio simulator's).
    dealers: dict[str, str] = Field(default_factory=dict)
