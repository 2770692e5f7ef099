"""An ASGI app on a real socket, in its own thread and event loop (for tools that call it
synchronously, like schemathesis): the app's runtime starts and stops inside that loop."""
from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

Setup = Callable[[], Awaitable[tuple[Any, Callable[[], Awaitable[None]]]]]  # -> (asgi app, teardown)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(setup: Setup) -> Iterator[str]:
    """Run `setup()` (returns the app and its teardown) and uvicorn in a thread; yield the base URL."""
    port = free_port()
    started = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        try:
            app, teardown = await setup()
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                   lifespan="off", ws="websockets"))
            box["server"] = server
            task = asyncio.create_task(server.serve())
            while not server.started and not task.done():
                await asyncio.sleep(0.01)
        except BaseException as exc:  # noqa: BLE001 - surfaced in the test thread
            box["error"] = exc
            started.set()
            return
        started.set()
        await task
        await teardown()

    t = threading.Thread(target=lambda: asyncio.run(main()), name="live-app", daemon=True)
    t.start()
    started.wait(60)
    if "error" in box:
        raise box["error"]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        box["server"].should_exit = True
        t.join(30)
