from __future__ import annotations

import pytest

from tests.ops.scrape import Scrape, run_and_scrape


@pytest.fixture(scope="session")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Scrape:
    """One run of the real services, scraped, shared by the metric and dashboard tests."""
    return run_and_scrape(tmp_path_factory.mktemp("scrape") / "demo")
