"""The JetStream streams of the sync wire (CONTRACT: journal, commands, checkpoints), defined once
for both sides. The control plane owns them; an edge creates them only when told to (tests, the
single-process demo). Creation is idempotent: an existing stream is left exactly as it is.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

import nats.errors
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


# What JetStream answers while a cluster elects its meta leader (a node just started or was lost):
# the API is briefly silent or unavailable. A process starting then waits instead of exiting.
_NOT_READY = (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError)


async def ensure_streams(js: Any, replicas: int = 1, duplicate_window_s: float = DUPLICATE_WINDOW_S,
                         ready_within_s: float = 60.0) -> None:
    """Create the sync streams when missing; an existing stream is left exactly as it is. Waits up
    to `ready_within_s` for a JetStream that is not answering yet, then raises what it answered."""
    deadline = time.monotonic() + ready_within_s
    delay = 0.25
    while True:
        try:
            await _ensure(js, replicas, duplicate_window_s)
            return
        except _NOT_READY:
            if time.monotonic() + delay > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def _ensure(js: Any, replicas: int, duplicate_window_s: float) -> None:
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
