"""WHEP error cases and CORS (no feed needed: the service's tables are not live)."""
from __future__ import annotations

import httpx

from contract import tokens

OFFER = "\r\n".join([
    "v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
    "m=video 9 UDP/TLS/RTP/SAVPF 102", "c=IN IP4 0.0.0.0", "a=mid:0", "a=recvonly", "a=rtcp-mux",
    "a=rtpmap:102 H264/90000", "a=fmtp:102 packetization-mode=1;profile-level-id=42e01f",
    "a=ice-ufrag:abcd", "a=ice-pwd:abcdefghijklmnopqrstuvwx",
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), "a=setup:actpass", "",
])
SDP = {"Content-Type": "application/sdp"}


async def test_unknown_table_is_404(edge_factory, http: httpx.AsyncClient) -> None:
    edge = await edge_factory(start=False)
    r = await http.post(f"{edge.base}/whep/nope", content=OFFER, headers=SDP)
    assert r.status_code == 404


async def test_bad_sdp_is_400(edge_factory, http: httpx.AsyncClient) -> None:
    edge = await edge_factory(start=False)
    r = await http.post(f"{edge.base}/whep/t1", content="hello", headers=SDP)
    assert r.status_code == 400
    r = await http.post(f"{edge.base}/whep/t1", content=OFFER, headers={"Content-Type": "text/plain"})
    assert r.status_code == 415


async def test_not_live_is_409_with_retry_after(edge_factory, http: httpx.AsyncClient) -> None:
    edge = await edge_factory(start=False)
    r = await http.post(f"{edge.base}/whep/t1", content=OFFER, headers=SDP)
    assert r.status_code == 409
    assert int(r.headers["retry-after"]) > 0


async def test_over_capacity_is_503_or_307_to_sibling(edge_factory, http: httpx.AsyncClient) -> None:
    edge = await edge_factory(start=False, viewer_capacity=0)
    r = await http.post(f"{edge.base}/whep/t1", content=OFFER, headers=SDP)
    assert r.status_code == 503
    assert int(r.headers["retry-after"]) > 0
    sib = await edge_factory(start=False, viewer_capacity=0, sibling_urls=["http://edge-b.example/whep"])
    r = await http.post(f"{sib.base}/whep/t1", content=OFFER, headers=SDP)
    assert r.status_code == 307
    assert r.headers["location"] == "http://edge-b.example/whep/t1"


async def test_options_cors(edge_factory, http: httpx.AsyncClient) -> None:
    edge = await edge_factory(start=False)
    r = await http.options(f"{edge.base}/whep/t1", headers={
        "Origin": "http://player.example", "Access-Control-Request-Method": "POST"})
    assert r.status_code == 204
    assert r.headers["accept-post"] == "application/sdp"
    assert r.headers["access-control-allow-origin"] == "*"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "Location" in r.headers["access-control-expose-headers"]


async def test_bearer_token_required_when_configured(edge_factory, http: httpx.AsyncClient) -> None:
    key = tokens.new_signing_key()
    edge = await edge_factory(start=False, token_public_key_pem=tokens.public_pem(key))
    r = await http.post(f"{edge.base}/whep/t1", content=OFFER, headers=SDP)
    assert r.status_code == 401
    other = tokens.issue(tokens.new_signing_key(), "p1", "player", "mt")
    r = await http.post(f"{edge.base}/whep/t1", content=OFFER, headers={**SDP, "Authorization": f"Bearer {other}"})
    assert r.status_code == 401
    good = tokens.issue(key, "p1", "player", "mt")
    r = await http.post(f"{edge.base}/whep/t1", content=OFFER, headers={**SDP, "Authorization": f"Bearer {good}"})
    assert r.status_code == 409  # past auth; the table is simply not live


async def test_delete_unknown_session_is_404(edge_factory, http: httpx.AsyncClient) -> None:
    edge = await edge_factory(start=False)
    r = await http.delete(f"{edge.base}/whep/t1/does-not-exist")
    assert r.status_code == 404


NO_H264 = OFFER.replace("m=video 9 UDP/TLS/RTP/SAVPF 102", "m=video 9 UDP/TLS/RTP/SAVPF 96").replace(
    "a=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1;profile-level-id=42e01f", "a=rtpmap:96 VP8/90000")


async def test_offer_without_h264_is_a_clear_422(edge_factory, http: httpx.AsyncClient) -> None:
    """Refused before liveness: an offer that could never play gets a 4xx, not a silent session."""
    edge = await edge_factory(start=False)
    r = await http.post(f"{edge.base}/whep/t1", content=NO_H264, headers=SDP)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"] == "no_h264" and "VP8" in r.json()["detail"]


async def test_errors_are_json(edge_factory, http: httpx.AsyncClient) -> None:
    edge = await edge_factory(start=False)
    r = await http.post(f"{edge.base}/whep/t1", content=OFFER, headers=SDP)
    assert r.status_code == 409 and r.json()["error"] == "not_live"
    r = await http.post(f"{edge.base}/whep/nope", content=OFFER, headers=SDP)
    assert r.json()["error"] == "unknown_table"


async def test_players_of_other_jurisdictions_are_403(edge_factory, http: httpx.AsyncClient) -> None:
    key = tokens.new_signing_key()
    edge = await edge_factory(start=False, token_public_key_pem=tokens.public_pem(key), jurisdiction="mt")
    for sub, role, jur, status, code in [("p1", "player", "dk", 403, "wrong_jurisdiction"),
                                         ("r1", "regulator", "dk", 403, "wrong_jurisdiction"),
                                         ("e1", "edge", "mt", 403, "role_not_allowed"),
                                         ("p1", "player", "mt", 409, "not_live"),
                                         ("o1", "operator", "dk", 409, "not_live")]:
        tok = tokens.issue(key, sub, role, jur)
        r = await http.post(f"{edge.base}/whep/t1", content=OFFER, headers={**SDP, "Authorization": f"Bearer {tok}"})
        assert (r.status_code, r.json()["error"]) == (status, code), (sub, role, jur, r.text)
