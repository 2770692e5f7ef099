"""ensure_streams waits for a JetStream that is electing its meta leader (a cluster node just
started or was lost) instead of failing the process that starts then; past its deadline it raises."""
from __future__ import annotations

import nats.errors
import nats.js.errors
import pytest

from contract import streams


class ElectingJetStream:
    """Silent for `not_ready` API calls, then every stream exists."""

    def __init__(self, not_ready: int) -> None:
        self.not_ready, self.calls = not_ready, 0

    async def stream_info(self, name: str) -> str:
        self.calls += 1
        if self.calls <= self.not_ready:
            raise (nats.errors.TimeoutError if self.calls % 2 else nats.js.errors.ServiceUnavailableError)()
        return name

    async def add_stream(self, cfg: object) -> None:
        raise AssertionError("streams exist: nothing to create")


async def test_waits_for_jetstream_to_answer() -> None:
    js = ElectingJetStream(not_ready=3)
    await streams.ensure_streams(js, replicas=3, ready_within_s=10)
    assert js.calls == 3 + len(streams.stream_configs(3))


async def test_gives_up_after_its_deadline() -> None:
    js = ElectingJetStream(not_ready=10**6)
    with pytest.raises((nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError)):
        await streams.ensure_streams(js, ready_within_s=0.6)
    assert 1 < js.calls < 10
