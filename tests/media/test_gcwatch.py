"""Long full collections of a fan-out process are logged (they stall every viewer it serves)."""
from __future__ import annotations

import gc

import pytest
from structlog.testing import capture_logs

from edge_agent.media import gcwatch


def test_full_collection_over_the_limit_is_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    gcwatch.install()
    try:
        monkeypatch.setattr(gcwatch, "LOG_AFTER_S", 0.0)
        with capture_logs() as logs:
            gc.collect(1)  # young collections are not reported
            gc.collect(2)
        assert [e["event"] for e in logs] == ["media.gc_pause"]
        monkeypatch.setattr(gcwatch, "LOG_AFTER_S", 60.0)
        with capture_logs() as logs:
            gc.collect(2)
        assert logs == []
    finally:
        gc.callbacks.remove(gcwatch._callback)
