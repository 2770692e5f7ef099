"""What the edge asks the cloud: its high-water mark, and the entries it holds from a seq on.

Preferred source: the control plane, by request/reply on `contract.sync.hwm_subject(edge_id)`:
- empty body               -> `HighWaterMark` JSON (the last seq the cloud applied for this edge, and its hash);
- body `{"from_seq": N, "limit": M}` -> the same object plus `"entries": [SyncedEntry, ...]` for
  seq N .. N+M-1 as the cloud stored them (fewer or none past its high-water mark).

Fallback when nobody answers on that subject in time (control plane down or not deployed): the JetStream
journal stream itself -- the last message on the edge's subject (direct get) and a pull consumer
named `replay-<edge_id>` filtered on the edge's subject. A high-water mark from the stream is used
only to detect a restored journal that is behind or forked, never to skip entries (the stream may
hold a later entry before an earlier one after a partition; see docs/SYNC.md).
"""
from __future__ import annotations

import contextlib
import json
from typing import Any

import nats.errors
import nats.js.errors
from nats.js import api

from contract import sync as S

CONTROL_PLANE = "control_plane"
STREAM = "stream"


def replay_consumer(edge_id: str) -> str:
    return f"replay-{edge_id}"


async def query_hwm(nc: Any, edge_id: str, *, timeout: float = 2.0,
                    stream: str = S.JOURNAL_STREAM) -> tuple[S.HighWaterMark, str]:
    """The cloud's high-water mark for this edge and where it came from."""
    try:
        msg = await nc.request(S.hwm_subject(edge_id), b"", timeout=timeout)
        return S.HighWaterMark.model_validate_json(msg.data), CONTROL_PLANE
    except (TimeoutError, nats.errors.NoRespondersError):
        pass  # no control plane (or a silent listener on the subject): the stream still knows
    return await stream_hwm(nc, edge_id, timeout=timeout, stream=stream), STREAM


async def stream_hwm(nc: Any, edge_id: str, *, timeout: float = 2.0,
                     stream: str = S.JOURNAL_STREAM) -> S.HighWaterMark:
    js = nc.jetstream(timeout=timeout)
    subject = S.journal_subject(edge_id)
    try:
        try:
            raw = await js.get_last_msg(stream, subject, direct=True)
        except nats.errors.NoRespondersError:
            raw = await js.get_last_msg(stream, subject)  # stream without allow_direct
    except nats.js.errors.NotFoundError:
        return S.HighWaterMark(edge_id=edge_id, seq=0, hash="")
    e = S.SyncedEntry.model_validate_json(raw.data)
    return S.HighWaterMark(edge_id=edge_id, seq=e.seq, hash=e.hash)


async def fetch_entries(nc: Any, edge_id: str, from_seq: int, to_seq: int, *, timeout: float = 5.0,
                        stream: str = S.JOURNAL_STREAM, page: int = 1000) -> list[S.SyncedEntry]:
    """Entries from_seq..to_seq as the cloud holds them, one per seq, in seq order."""
    out: list[S.SyncedEntry] = []
    nxt = from_seq
    try:
        while nxt <= to_seq:
            body = json.dumps({"from_seq": nxt, "limit": min(page, to_seq - nxt + 1)}).encode()
            msg = await nc.request(S.hwm_subject(edge_id), body, timeout=timeout)
            reply = json.loads(msg.data)
            if "entries" not in reply:  # a control plane that answers only the high-water mark
                return await stream_entries(nc, edge_id, from_seq, to_seq, timeout=timeout, stream=stream)
            got = [S.SyncedEntry.model_validate(e) for e in reply["entries"]]
            got = [e for e in got if nxt <= e.seq <= to_seq]
            if not got:
                break
            out.extend(got)
            nxt = got[-1].seq + 1
        return _one_per_seq(out, from_seq, to_seq)
    except nats.errors.NoRespondersError:
        return await stream_entries(nc, edge_id, from_seq, to_seq, timeout=timeout, stream=stream)


async def stream_entries(nc: Any, edge_id: str, from_seq: int, to_seq: int, *, timeout: float = 5.0,
                         stream: str = S.JOURNAL_STREAM) -> list[S.SyncedEntry]:
    """Read the edge's subject of the journal stream (a full scan of this edge's messages)."""
    js = nc.jetstream(timeout=timeout)
    name = replay_consumer(edge_id)
    subject = S.journal_subject(edge_id)
    with contextlib.suppress(Exception):  # absent, or not allowed: create below says which
        await js.delete_consumer(stream, name)
    cfg = api.ConsumerConfig(name=name, filter_subject=subject, ack_policy=api.AckPolicy.NONE,
                             deliver_policy=api.DeliverPolicy.ALL, inactive_threshold=60.0,
                             mem_storage=True)
    sub = await js.pull_subscribe(subject, durable=name, stream=stream, config=cfg)
    info = await js.consumer_info(stream, name)
    left = info.num_pending or 0
    got: list[S.SyncedEntry] = []
    try:
        while left > 0:
            try:
                msgs = await sub.fetch(min(left, 1000), timeout=timeout)
            except TimeoutError:
                break
            for m in msgs:
                left -= 1
                e = S.SyncedEntry.model_validate_json(m.data)
                if from_seq <= e.seq <= to_seq:
                    got.append(e)
    finally:
        await sub.unsubscribe()
        with contextlib.suppress(Exception):  # it expires on its own (inactive_threshold)
            await js.delete_consumer(stream, name)
    return _one_per_seq(got, from_seq, to_seq)


class CloudConflict(RuntimeError):
    """The cloud holds two different entries for one seq of this edge."""


def _one_per_seq(entries: list[S.SyncedEntry], from_seq: int, to_seq: int) -> list[S.SyncedEntry]:
    by_seq: dict[int, S.SyncedEntry] = {}
    for e in entries:
        seen = by_seq.get(e.seq)
        if seen is not None and seen.hash != e.hash:
            raise CloudConflict(f"the cloud holds two different entries for seq {e.seq}")
        by_seq.setdefault(e.seq, e)
    return [by_seq[s] for s in sorted(by_seq)]
