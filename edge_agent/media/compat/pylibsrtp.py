"""The pylibsrtp internals the C fast path uses (the cffi binding and a Session's srtp_t),
checked when imported (compat/aiortc.py says why). Tested in tests/media/test_compat.py."""
from __future__ import annotations

import pylibsrtp
from pylibsrtp import Session
from pylibsrtp._binding import ffi, lib

TESTED_VERSION = "1.0.0"
PROTECT_SIGNATURE = "srtp_err_status_t(*)(struct srtp_ctx_t_ *, void *, int *)"


class CompatError(RuntimeError):
    pass


def check() -> None:
    where = f"pylibsrtp {pylibsrtp.__version__} (tested with {TESTED_VERSION}); see edge_agent/media/compat/pylibsrtp.py"
    if "_srtp" not in Session.__init__.__code__.co_names:
        raise CompatError(f"Session no longer holds _srtp: {where}")
    sig = ffi.typeof(lib.srtp_protect).cname
    if sig != PROTECT_SIGNATURE:
        raise CompatError(f"unexpected srtp_protect signature {sig}: {where}")


def protect_fn() -> int:
    """Address of libsrtp's srtp_protect inside pylibsrtp's own copy of libsrtp."""
    return int(ffi.cast("uintptr_t", ffi.addressof(lib, "srtp_protect")))


def srtp_ctx(session: Session) -> int:
    """The `srtp_t` of a Session (valid while the Session lives)."""
    return int(ffi.cast("uintptr_t", session._srtp[0]))


check()
