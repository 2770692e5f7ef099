"""Pulling from a JetStream durable consumer at backlog speed: a raw inbox subscription (no
`Msg` per delivery, no header parsing unless the delivery is a status) and a batch acknowledged
with one write of all its `+ACK`s (see natswire)."""
from __future__ import annotations

import asyncio
import json
from typing import Any

import structlog

from natswire import LeanClient, ack_commands, header_status

log = structlog.get_logger("control_plane.pull")

_NAK_DELAY = b'-NAK {"delay": 1000000000}'  # 1 s: a failing database is not hammered


class Delivery:
    """One JetStream delivery: subject, ack reply subject, body."""

    __slots__ = ("data", "reply", "subject")

    def __init__(self, subject: bytes, reply: bytes, data: bytes) -> None:
        self.subject, self.reply, self.data = subject, reply, data

    @property
    def edge(self) -> str:
        """`casino.<kind>.<edge>` -> edge."""
        return self.subject.split(b".", 2)[2].decode()


class Puller:
    """Fetches from a durable pull consumer with one raw inbox subscription and plain pull
    requests, instead of the client's `fetch`, which costs a task, a `wait_for` and a uuid per
    message.

    `fetch(n)` asks for what is available now (`no_wait`); when nothing is, it long-polls for one
    message (`expires`) and then takes whatever else arrived with it, so an entry is handed over
    as soon as it is in the stream and a backlog comes in batches of `n`. Each request has its own
    reply subject, so the status that ends it (404 no messages, 408 expired) is matched to it;
    a delivery that arrives after its request was given up on is kept for the next fetch (it is
    a real delivery: acked like any other, or redelivered after ack_wait)."""

    def __init__(self, nc: LeanClient, js_prefix: str, stream: str, durable: str) -> None:
        self.nc = nc
        self.next_subject = f"{js_prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.inbox = nc.new_inbox()
        self._buf: list[Delivery] = []
        self._req = 0
        self._req_subject = b""
        self._ended = False  # the current request got its terminating status
        self._wake = asyncio.Event()
        self._sub: Any = None

    async def start(self) -> Puller:
        self._sub = await self.nc.raw_subscribe(self.inbox + ".*", self._on_msg)
        return self

    async def close(self) -> None:
        """Stop receiving (deliveries still in flight come back after ack_wait)."""
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception as exc:  # noqa: BLE001 - the connection is gone: nothing to stop
                log.debug("unsubscribe failed", error=repr(exc))

    def _on_msg(self, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        if not data and headers:
            status = header_status(headers)
            if status is not None:
                if status == "100":  # idle heartbeat (not requested, harmless)
                    return
                if subject == self._req_subject:
                    self._ended = True
                if status not in ("404", "408"):
                    log.warning("pull request ended", status=status, header=headers[:200].decode(errors="replace"))
                self._wake.set()
                return
        self._buf.append(Delivery(subject, reply, data))
        self._wake.set()

    async def _request(self, batch: int, expires: float | None = None) -> None:
        self._req += 1
        self._ended = False
        reply = f"{self.inbox}.{self._req}"
        self._req_subject = reply.encode()
        body: dict[str, Any] = {"batch": batch}
        if expires is None:
            body["no_wait"] = True
        else:
            body["expires"] = int(expires * 1e9)
        await self.nc.publish(self.next_subject, json.dumps(body).encode(), reply=reply)

    async def _wait(self, want: int, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self._buf) < want and not self._ended:
            left = deadline - loop.time()
            if left <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except TimeoutError:
                return

    async def fetch(self, n: int, timeout: float = 1.0) -> list[Delivery]:
        """Up to `n` deliveries; [] when none arrived within `timeout`."""
        if len(self._buf) < n:
            await self._request(n - len(self._buf))
            await self._wait(n, 5.0)
        if not self._buf:
            await self._request(1, expires=timeout)
            await self._wait(1, timeout + 1.0)
            if self._buf and len(self._buf) < n:
                await self._request(n - len(self._buf))
                await self._wait(n, 5.0)
        out = self._buf[:n]
        del self._buf[:n]
        return out

    def take_buffered(self) -> list[Delivery]:
        """Deliveries received but not fetched yet (e.g. to nak them when giving the consumer up)."""
        out, self._buf = self._buf, []
        return out

    async def ack(self, msgs: list[Delivery]) -> None:
        """Acknowledge a handled batch in one write (after its commit: a lost ack only means a
        redelivery, which applying absorbs)."""
        replies = [m.reply for m in msgs if m.reply]
        if replies:
            await self.nc.publish_raw(ack_commands(replies), len(replies))

    async def nak(self, msgs: list[Delivery]) -> None:
        """Ask for redelivery in 1 s (best effort: without it, redelivery follows ack_wait)."""
        for m in msgs:
            if m.reply:
                await self.nc.publish(m.reply.decode(), _NAK_DELAY)
