"""A codec or fan-out child process with a duplex pipe, its messages delivered on the event loop."""
from __future__ import annotations

import asyncio
import multiprocessing as mp
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any


def spawn_child(target: Callable[..., None], args: tuple[Any, ...], name: str,
                on_message: Callable[[Any], None]) -> tuple[BaseProcess, Connection]:
    """Start `target(*args, child_end)` in a fresh interpreter (spawn: no inherited loop or codec
    state); a reader thread hands each message it sends to `on_message` on the running loop."""
    loop = asyncio.get_running_loop()
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(*args, child), daemon=True, name=name)
    proc.start()
    child.close()

    def reader() -> None:
        while True:
            try:
                msg = parent.recv()
            except (EOFError, OSError):
                return
            try:
                loop.call_soon_threadsafe(on_message, msg)
            except RuntimeError:  # loop closed
                return

    threading.Thread(target=reader, daemon=True, name=f"{name}-rx").start()
    return proc, parent
