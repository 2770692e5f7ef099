"""The C fast path of the fan-out (`_fastsend.c`): per frame per viewer, one call numbers the RTP
packets, SRTP-protects them with aiortc's own libsrtp session and sends them with one `sendmmsg`,
building each packet in its slot of the viewer's NACK ring (`History`: no allocation per packet).

It is optional. If the extension is not built (no compiler at install time), cannot load, or is
switched off with EDGE_MEDIA_FASTSEND=0, the fan-out keeps its pure-Python path; `AVAILABLE` says
which one runs, the `media_fastsend_enabled` gauge exports it and the choice is logged once.
"""
from __future__ import annotations

import os
import socket
from typing import Any

import structlog
from prometheus_client import Gauge

from edge_agent.media.compat import pylibsrtp as srtp_compat

log = structlog.get_logger(__name__)

try:
    if os.environ.get("EDGE_MEDIA_FASTSEND", "1").lower() in ("0", "false", "no", "off"):
        raise ImportError("disabled by EDGE_MEDIA_FASTSEND")
    from edge_agent.media import _fastsend

    # pylibsrtp bundles libsrtp 2.x: srtp_protect(srtp_t, void *rtp, int *len), in place (checked
    # by the compat module, which fails loudly on a pylibsrtp it was not tested with).
    PROTECT_FN = srtp_compat.protect_fn()
    send_frame = _fastsend.send_frame
    History = _fastsend.History
    SrtpError = _fastsend.SrtpError
    if os.environ.get("EDGE_MEDIA_GSO", "1").lower() in ("0", "false", "no", "off"):
        _fastsend.set_gso(False)
    AVAILABLE = True
    REASON = "C extension loaded"
except Exception as exc:  # noqa: BLE001 - any failure means: stay on the Python path
    AVAILABLE = False
    REASON = f"{type(exc).__name__}: {exc}"
    PROTECT_FN = 0
    send_frame = None  # type: ignore[assignment]
    History = None  # type: ignore[assignment,misc]

    class SrtpError(Exception):  # type: ignore[no-redef]
        pass

ENABLED = Gauge("media_fastsend_enabled", "1 when the fan-out sends through the C fast path (RTP+SRTP+sendmmsg)")
ENABLED.set(1 if AVAILABLE else 0)
_logged = False


def log_choice() -> None:
    global _logged
    if not _logged:
        _logged = True
        log.info("media.fastsend", enabled=AVAILABLE, reason=REASON, gso=gso_enabled())


def gso_enabled() -> bool:
    """Whether the C path still sends with UDP GSO (False once the kernel refused it)."""
    return AVAILABLE and bool(_fastsend.gso_enabled())


def srtp_ctx(session: Any) -> int:
    """The `srtp_t` of a pylibsrtp.Session (kept alive by whoever holds the Session)."""
    return srtp_compat.srtp_ctx(session)


def udp_fd(transport: Any) -> int:
    """The fd of an asyncio datagram transport's IPv4 socket, or -1 (then use the Python path)."""
    get = getattr(transport, "get_extra_info", None)
    sock = get("socket") if get is not None else None
    if sock is None or sock.family != socket.AF_INET or sock.type != socket.SOCK_DGRAM:
        return -1
    return sock.fileno()
