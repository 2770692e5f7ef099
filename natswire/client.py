"""nats-py's client with two shortcuts for the journal's hot paths.

At backlog speed (tens of thousands of journal entries a second) nats-py's per-message work was
the largest single cost on both sides of the sync: every delivery becomes a `Msg` (subject
decoded, header block parsed into a dict, a queue hop to a callback task) and every publish
validates its subject and re-encodes its headers. `LeanClient` keeps everything else nats-py's
own (connect, reconnect, auth, JetStream management API, ordinary subscriptions) and adds:

- `raw_subscribe`: deliveries go to a plain function straight from the protocol parser, as bytes,
  with the header block unparsed (`header_status` reads a status line when one is needed);
- `publish_raw`: protocol commands built by the caller (pre-encoded `HPUB`s, a batch of `+ACK`s)
  written with one buffer append.

It also mends one ordering bug of nats-py 2.16: `flush()` writes its PING straight to the socket,
ahead of commands still waiting in the pending buffer, so the PONG could come back before the
server had seen an earlier SUB, PUB or ACK (a subscription "flushed" and then missed messages).
`LeanClient` queues the PING behind them, which is what `flush()` promises.

It relies on nats-py internals: `_process_msg` (the parser's dispatch), `_send_command` and
`_flush_pending` (the pending write buffer), `_send_ping` and `_pongs` (PING/PONG matching).
They are checked at import (a release without them fails at start, not at run time), and
tests/sync/test_natswire.py drives each against a real nats-server.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client
from nats.errors import ConnectionClosedError, OutboundBufferLimitError

PING = b"PING\r\n"
_INTERNALS = ("_process_msg", "_send_command", "_flush_pending", "_send_ping")
_missing = [name for name in _INTERNALS if not callable(getattr(Client, name, None))]
if _missing:  # pragma: no cover - only with an untested nats-py release
    raise ImportError(f"natswire: nats-py lacks the internals it relies on: {', '.join(_missing)}")

RawHandler = Callable[[bytes, bytes, bytes, bytes | None], None]  # subject, reply, data, raw header block


def header_status(headers: bytes) -> str | None:
    """`NATS/1.0 404 No Messages\\r\\n...` -> "404"; None for a header block without a status."""
    parts = headers.split(b"\r\n", 1)[0].split(b" ", 2)
    return parts[1].decode() if len(parts) > 1 and parts[1] else None


def hpub(subject: bytes, reply: bytes, header_block: bytes, payload: bytes) -> bytes:
    """One `HPUB` command; `header_block` is `NATS/1.0\\r\\n<Name: value\\r\\n>...\\r\\n`."""
    return b"HPUB %s %s %d %d\r\n%s%s\r\n" % (subject, reply, len(header_block), len(header_block) + len(payload),
                                               header_block, payload)


def header_block(headers: dict[str, str]) -> bytes:
    return b"NATS/1.0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n"


class LeanClient(Client):
    def __init__(self) -> None:
        super().__init__()
        self._raw: dict[int, RawHandler] = {}

    async def raw_subscribe(self, subject: str, handler: RawHandler) -> Any:
        """A subscription whose deliveries go to `handler` synchronously from the parser. The
        subscription itself is nats-py's (re-sent on reconnect, removed on close)."""
        sub = await self.subscribe(subject)
        self._raw[sub._id] = handler
        return sub

    async def _process_msg(self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        handler = self._raw.get(sid)
        if handler is None:
            await super()._process_msg(sid, subject, reply, data, headers)
            return
        self.stats["in_msgs"] += 1
        self.stats["in_bytes"] += len(data)
        handler(subject, reply, data, headers)

    async def _send_ping(self, future: asyncio.Future[bool] | None = None) -> None:
        # In order with everything already queued: the PONG then proves the server saw it all.
        self._pongs.append(future if future is not None else asyncio.get_running_loop().create_future())
        await self._send_command(PING)
        await self._flush_pending()

    async def publish_raw(self, commands: bytes, count: int = 1) -> None:
        """Write protocol commands (e.g. `hpub(...)` joined, or `ack_commands(...)`) as one
        buffered write. Like `publish`: refused while disconnected unless the client buffers."""
        if self.is_closed:
            raise ConnectionClosedError
        if not self.is_connected and (self._max_pending_size <= 0
                                      or len(commands) + self._pending_data_size > self._max_pending_size):
            raise OutboundBufferLimitError
        self.stats["out_msgs"] += count
        await self._send_command(commands)
        if self._flush_queue is not None and self._flush_queue.empty():
            await self._flush_pending()


def ack_commands(replies: list[bytes]) -> bytes:
    """An empty PUB to each JetStream reply subject: an empty body is `+ACK`."""
    return b"".join(b"PUB %s 0\r\n\r\n" % r for r in replies)
