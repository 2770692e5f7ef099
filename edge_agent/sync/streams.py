"""The sync streams, as the contract defines them (`contract.streams`)."""
from __future__ import annotations

from contract.streams import DUPLICATE_WINDOW_S, ensure_streams, stream_configs

__all__ = ["DUPLICATE_WINDOW_S", "ensure_streams", "stream_configs"]
