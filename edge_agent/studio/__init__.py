"""Studio simulator: renders a dealer table, encodes H.264 + AAC with PyAV, sends MPEG-TS over SRT."""
from edge_agent.studio.sender import run_studio

__all__ = ["run_studio"]
