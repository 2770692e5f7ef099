"""Every aioice internal the media path uses, checked when this module is imported (see
compat/aiortc.py for why). Tested against the pinned version in tests/media/test_compat.py."""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import aioice
import aioice.ice
from aioice.ice import CandidatePair, Connection, StunProtocol

TESTED_VERSION = "0.13.0"


class CompatError(RuntimeError):
    pass


def check() -> None:
    def fail(what: str) -> None:
        raise CompatError(f"aioice {aioice.__version__}: {what} (tested with {TESTED_VERSION}); "
                          "see edge_agent/media/compat/aioice.py")

    init = set(Connection.__init__.__code__.co_names)
    for name in ("_nominated", "_query_consent_task", "remote_password"):
        if name not in init:
            fail(f"Connection no longer sets {name}")
    for name in ("query_consent", "build_request", "close"):
        if not hasattr(Connection, name):
            fail(f"Connection lacks {name}")
    if "retransmissions" not in inspect.signature(StunProtocol.request).parameters:
        fail("StunProtocol.request has no retransmissions parameter")
    if "protocol" not in CandidatePair.__init__.__code__.co_names or not hasattr(CandidatePair, "remote_addr"):
        fail("CandidatePair no longer holds protocol/remote_addr")
    if not callable(getattr(aioice.ice, "get_host_addresses", None)):
        fail("aioice.ice.get_host_addresses is gone")


def nominated_pair(conn: Connection, component: int = 1) -> CandidatePair | None:
    """The pair ICE nominated for `component` (1 = RTP; rtcp-mux puts RTCP there too)."""
    return conn._nominated.get(component)


def nominated_by_component(conn: Connection) -> dict[int, CandidatePair]:
    """The live mapping component -> nominated pair (aioice clears it, never replaces it): the
    fan-out looks the RTP pair up in it once per frame without a call through this module."""
    return conn._nominated


def nominated_pairs(conn: Connection) -> list[CandidatePair]:
    return list(conn._nominated.values())


def replace_consent(conn: Connection, make: Callable[[Connection], Any]) -> None:
    """Run `make(conn)` instead of aioice's consent freshness loop (started once ICE connects)."""
    conn.query_consent = lambda: make(conn)  # type: ignore[method-assign]


def consent_lost(conn: Connection) -> None:
    """Forget the consent task (it is ending itself) before closing the connection."""
    conn._query_consent_task = None


def stun_request(pair: CandidatePair, conn: Connection, retransmissions: int) -> Any:
    """A consent check (binding request) on `pair`, with our retransmission count."""
    assert conn.remote_password is not None
    return pair.protocol.request(conn.build_request(pair, nominate=False), pair.remote_addr,
                                 integrity_key=conn.remote_password.encode("utf8"), retransmissions=retransmissions)


_original_host_addresses = aioice.ice.get_host_addresses


def set_host_addresses(addresses: list[str]) -> None:
    """Host candidates on exactly these local addresses (aioice otherwise drops 127.0.0.1);
    an empty list restores aioice's own choice."""
    if addresses:
        aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: list(addresses)
    else:
        aioice.ice.get_host_addresses = _original_host_addresses


check()
