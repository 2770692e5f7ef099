"""Child processes that never outlive their parent (PR_SET_PDEATHSIG, Linux).

Used as `preexec_fn`: between fork and exec the child asks the kernel for SIGTERM when its
parent dies (kept across exec), then checks the parent did not die before the request landed.
"""
from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A preexec_fn: deliver `sig` to the child when the process that starts it dies."""
    parent = os.getpid()

    def arm() -> None:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
        if os.getppid() != parent:  # the parent died between fork and prctl
            os._exit(1)

    return arm
