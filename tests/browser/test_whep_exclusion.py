"""The real edge (casino + media + WHEP, as composed by edge_agent.runtime): a player who
self-excludes through the player API loses their live WHEP session at once and is refused a new
one; a regulator of another jurisdiction is refused."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from contract import tokens
from edge_agent.media.client import WhepError, play
from tests.browser.conftest import EdgeProc

pytestmark = pytest.mark.browser


async def _scenario(edge: EdgeProc, token: str, foreign_regulator: str) -> None:
    url = f"{edge.url}/whep/roulette-1"
    async with httpx.AsyncClient(timeout=20) as http:
        player = None
        for _ in range(200):  # the studio simulator needs a moment to make the table live (busy box: up to 60 s)
            try:
                player = await play(http, url, token=token, audio=False)
                break
            except WhepError as exc:
                assert exc.status == 409, exc
                await asyncio.sleep(0.3)
        assert player is not None, "the table never went live"
        try:
            for _ in range(200):
                if "video" in player.tracks:
                    break
                await asyncio.sleep(0.05)
            await asyncio.wait_for(player.tracks["video"].recv(), 30)
            r = await http.post(f"{edge.url}/v1/self-exclusion", json={"duration": "6m"},
                                headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 201, r.text
            gone = False
            for _ in range(100):  # the edge closes the session: its resource disappears
                # (a harmless trickle PATCH probes it: 204 while it exists, 404 once closed)
                r = await http.patch(player.location, content="a=end-of-candidates\r\n",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/trickle-ice-sdpfrag"})
                assert r.status_code in (204, 404), r.text
                if r.status_code == 404:
                    gone = True
                    break
                await asyncio.sleep(0.1)
            assert gone, "the excluded player's WHEP session is still open"
            with pytest.raises(WhepError) as refused:
                await play(http, url, token=token, audio=False)
            assert refused.value.status == 403 and "player_excluded" in refused.value.body
            with pytest.raises(WhepError) as foreign:
                await play(http, url, token=foreign_regulator, audio=False)
            assert foreign.value.status == 403 and "wrong_jurisdiction" in foreign.value.body
        finally:
            await player.close()


def test_self_exclusion_closes_the_live_video(tmp_path: Any, signing_key: Any) -> None:
    edge = EdgeProc(tmp_path, signing_key, media=True)
    try:
        edge.fund("zed", 1_000)
        scenario = _scenario(edge, edge.token("zed"), tokens.issue(signing_key, "reg-dk", "regulator", "DK"))
        # Its own thread: Playwright's sync API (other browser tests) leaves a loop running on this one.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, scenario).result()
    finally:
        edge.stop()
