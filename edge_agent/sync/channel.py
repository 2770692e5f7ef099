"""The wire between the edge process and its sync publisher process (edge_agent/sync/publisher_process.py).

Two file descriptors, both created by the edge and inherited by the child:
- a Unix stream socket pair carrying one JSON object per line in both directions (messages below);
- a pipe on which the journal's writer thread writes one byte per group commit (`poke`): "the
  journal has grown, read it". A byte carries no seq on purpose: the journal file is the only
  truth about what is committed, and the publisher reads it; a lost or coalesced poke costs at
  most the publisher's idle re-check (`IDLE_RECHECK_S`), never an entry.

edge -> publisher: `init` (first, once), `heartbeat`, `checkpoint`, `command_done`, `stop`.
publisher -> edge: `sent` (the stream acknowledged every seq up to `seq`), `state` (link, conflict,
last error), `command` (a cloud command to apply in the edge), `checkpoint_done`.
"""
from __future__ import annotations

import asyncio
import os
from typing import Any

import orjson

IDLE_RECHECK_S = 1.0  # the publisher re-reads the journal this often without a poke

# message types ("t")
INIT, HEARTBEAT, CHECKPOINT, COMMAND_DONE, STOP = "init", "heartbeat", "checkpoint", "command_done", "stop"
SENT, STATE, COMMAND, CHECKPOINT_DONE = "sent", "state", "command", "checkpoint_done"

# answers to a `command` (what the publisher then does with the JetStream message)
ACK, TERM, NAK = "ack", "term", "nak"

MAX_LINE = 16 * 1024 * 1024  # a checkpoint or a command is far smaller; a line longer is a broken peer


class Channel:
    """One end of the message socket: `send` (never blocks the loop; the kernel buffers), `recv`
    (None at end of file: the other process is gone)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, fd: int) -> Channel:
        import socket

        sock = socket.socket(fileno=fd)
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=MAX_LINE)
        return cls(reader, writer)

    def send(self, t: str, **fields: Any) -> None:
        if self.writer.is_closing():
            return  # the peer is gone; whoever supervises it sees the end of file
        self.writer.write(orjson.dumps({"t": t, **fields}) + b"\n")

    async def recv(self) -> dict[str, Any] | None:
        try:
            line = await self.reader.readline()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            return None
        if not line:
            return None
        msg: dict[str, Any] = orjson.loads(line)
        return msg

    async def close(self) -> None:
        try:
            self.writer.close()
            await self.writer.wait_closed()
        except (ConnectionError, RuntimeError):
            pass


def poke(fd: int) -> None:
    """Writer thread, once per group commit: one byte, never blocking (a full pipe already wakes the reader)."""
    try:
        os.write(fd, b"\x01")
    except (BlockingIOError, BrokenPipeError, OSError):
        pass


def drain_pokes(fd: int) -> bool | None:
    """Read every pending poke: True when there was one, False when none, None at end of file
    (the edge closed its end: stop watching the pipe)."""
    got = False
    while True:
        try:
            chunk = os.read(fd, 4096)
        except (BlockingIOError, InterruptedError):
            return got
        except OSError:
            return None
        if not chunk:
            return None
        got = True
