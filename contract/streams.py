"""The JetStream streams of the sync wire (CONTRACT: journal, commands, checkpoints), defined once
for both sides. The control plane owns them; an edge creates them only when told to (tests, the
single-process demo). Creation is idempotent: an existing stream is left exactly as it is.
"""
from __future__ import annotations

from typing import Any

import nats.js.errors
from nats.js import api

from contract import sync as S

DUPLICATE_WINDOW_S = 120.0  # the JetStream default; longer partitions rely on the consumer's (edge, seq)


def stream_configs(replicas: int = 1, duplicate_window_s: float = DUPLICATE_WINDOW_S) -> list[api.StreamConfig]:
    """`replicas` 3 on a three-node cluster: a stream survives the loss of any one node (R3).

    File storage, no deletes or purges (the journal stream is evidence), direct get for the
    high-water-mark check, and a duplicate window over `Nats-Msg-Id = <edge>:<seq>`."""
    common: dict[str, Any] = {"storage": api.StorageType.FILE, "duplicate_window": duplicate_window_s,
                              "allow_direct": True, "deny_delete": True, "deny_purge": True,
                              "num_replicas": replicas}
    return [
        api.StreamConfig(name=S.JOURNAL_STREAM, subjects=[S.journal_subject("*")], **common),
        api.StreamConfig(name=S.COMMAND_STREAM, subjects=[S.command_subject("*")], **common),
        api.StreamConfig(name=S.CHECKPOINT_STREAM, subjects=[S.checkpoint_subject("*")], **common),
    ]


async def ensure_streams(js: Any, replicas: int = 1, duplicate_window_s: float = DUPLICATE_WINDOW_S) -> None:
    """Create the sync streams when missing; an existing stream is left exactly as it is."""
    for cfg in stream_configs(replicas, duplicate_window_s):
        try:
            await js.stream_info(cfg.name)
            continue
        except nats.js.errors.NotFoundError:
            pass
        try:
            await js.add_stream(cfg)
        except nats.js.errors.BadRequestError:
            await js.stream_info(cfg.name)  # created concurrently by the other side: fine
