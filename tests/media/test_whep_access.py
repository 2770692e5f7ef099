"""WHEP authorization on a live table: session ownership, an exclusion closes the player's live
session, surveillance viewers are reported for audit, Link headers name the ICE servers."""
from __future__ import annotations

import asyncio

import httpx

from contract import tokens
from edge_agent.media.access import Denied
from edge_agent.media.client import WhepError, play


class Policy:
    """A casino stand-in: who is excluded, and what was opened/closed (the audit trail)."""

    def __init__(self) -> None:
        self.excluded: set[str] = set()
        self.watches: list[tuple[str, str, str]] = []
        self.ended: list[tuple[str, str]] = []

    def refusal(self, player_id: str) -> Denied | None:
        return Denied(403, "player_excluded", "player is self-excluded") if player_id in self.excluded else None

    def opened(self, p: tokens.Principal, table_id: str, sid: str) -> None:
        self.watches.append((p.role, p.sub, sid))

    def closed(self, p: tokens.Principal, sid: str) -> None:
        self.ended.append((p.sub, sid))


async def test_ownership_exclusion_and_surveillance(edge_factory, studio, http: httpx.AsyncClient) -> None:
    key = tokens.new_signing_key()
    policy = Policy()
    edge = await edge_factory(token_public_key_pem=tokens.public_pem(key), jurisdiction="mt", policy=policy,
                              ice_servers=[{"urls": ["stun:stun.example.net:3478"]},
                                           {"urls": ["turn:turn.example.net:3478?transport=udp"],
                                            "username": "u1", "credential": "c1"}])
    svc = edge.service
    studio("t1", edge.srt_port)
    assert await edge.wait(lambda: svc.is_live("t1")), "feed never came up"
    alice, bob = tokens.issue(key, "alice", "player", "mt"), tokens.issue(key, "bob", "player", "mt")
    url = f"{edge.base}/whep/t1"

    player = await play(http, url, token=alice, audio=False)
    try:
        assert await edge.wait(lambda: "video" in player.tracks)
        await asyncio.wait_for(player.tracks["video"].recv(), 10)
        sid = player.location.rsplit("/", 1)[1]
        # Another player's token can neither end nor patch alice's session.
        other = {"Authorization": f"Bearer {bob}"}
        r = await http.delete(player.location, headers=other)
        assert (r.status_code, r.json()["error"]) == (403, "not_session_owner")
        r = await http.patch(player.location, content="a=end-of-candidates\r\n",
                             headers={**other, "Content-Type": "application/trickle-ice-sdpfrag"})
        assert r.status_code == 403
        assert svc.viewer_count() == 1
        r = await http.patch(player.location, content="a=end-of-candidates\r\n",
                             headers={"Authorization": f"Bearer {alice}",
                                      "Content-Type": "application/trickle-ice-sdpfrag", "If-Match": '"stale"'})
        assert r.status_code == 412
        # Alice self-excludes: her live session is closed and she cannot open another.
        policy.excluded.add("alice")
        assert await svc.close_sessions_of("alice") == 1
        assert await edge.wait(lambda: svc.viewer_count() == 0)
        assert ("alice", sid) in policy.ended
        r = await http.delete(player.location, headers={"Authorization": f"Bearer {alice}"})
        assert r.status_code == 404
        try:
            await play(http, url, token=alice, audio=False)
            raise AssertionError("an excluded player was let in")
        except WhepError as exc:
            assert exc.status == 403 and "player_excluded" in exc.body
    finally:
        await player.close()

    # An operator may watch (surveillance); the policy hears of it (the casino audits it).
    op = tokens.issue(key, "op-1", "operator", "mt")
    watcher = await play(http, url, token=op, audio=False)
    try:
        assert ("operator", "op-1", watcher.location.rsplit("/", 1)[1]) in policy.watches
        r = await http.delete(watcher.location, headers={"Authorization": f"Bearer {op}"})
        assert r.status_code == 200
    finally:
        await watcher.close()

    # Link headers for the configured ICE servers (draft section 4.4), on the 201.
    r = await http.post(url, content=player.pc.localDescription.sdp,
                        headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {bob}"})
    assert r.status_code == 201 and r.headers["etag"]
    links = r.headers["link"]
    assert '<stun:stun.example.net:3478>; rel="ice-server"' in links
    assert 'username="u1"; credential="c1"; credential-type="password"' in links
    await http.delete(str(httpx.URL(url).join(r.headers["location"])), headers={"Authorization": f"Bearer {bob}"})
