"""The player WebSocket: round events in, bets out — the main path.

Client -> server (JSON text frames):
  {"type": "bet", "req": <any>, "table_id", "spot", "amount", ["rules_version"], ["player_seed"]}
  {"type": "bets", "req": <any>, "bets": [ {table_id, spot, amount, ...}, ... ]}   (several chips at once)
  {"type": "act", "req": <any>, "table_id", ...}   (a decision in a game's play phase, e.g. blackjack)
  {"type": "subscribe", "table_id"}        {"type": "ping", "t": <client ms>}
  {"type": "reality_check.ack", "action": "continue" | "logout"}
Server -> client:
  {"type": "hello", "wallet": {...}, "tables": [...]}
  {"type": "bet.accepted", "req", ...receipt}   {"type": "bet.refused", "req", "error": {"code", "message"}}
  {"type": "bets.result", "req", "results": [receipt | {"error": ...}, ...]}
  {"type": "act.accepted", "req", ...} / {"type": "act.refused", "req", "error"}
  round.opened / round.closed / round.settled / round.voided / table.live / table.down (per table)
  settlement / refund / deposit / withdrawal / session.ended / reality_check (per player)
  {"type": "pong", "t": <echo>, "server_ts": <ms>}
A bet is acknowledged only once durable; acknowledgements may arrive out of request order.
"""
from __future__ import annotations

import asyncio
import functools
from typing import Any

import orjson
import structlog
from fastapi import WebSocket, WebSocketDisconnect

from edge_agent import metrics as M
from edge_agent.api import wsproto
from edge_agent.api.auth import bearer
from edge_agent.api.wsframes import SCOPE_KEY, FrameWriter
from edge_agent.domain.errors import DomainError
from edge_agent.events import Wire

log = structlog.get_logger("ws")

MAX_FRAME = 16_384
MAX_BATCH = 50
CLOSE = object()  # the socket is closing: stop writing once what is queued is sent


async def player_socket(ws: WebSocket, app_state: Any) -> None:
    casino, auth = app_state.casino, app_state.auth
    token = ws.query_params.get("token") or bearer(ws.headers.get("authorization"))
    try:
        p = auth.player(token)
        psn = casino.ensure_player(p.sub)
        casino.start_session(psn)
    except DomainError as err:
        await ws.accept()
        await ws.send_text(orjson.dumps({"type": "error", "error": err.as_dict()}).decode())
        await ws.close(code=4401 if err.status == 401 else 4403)
        return
    await ws.accept()
    M.WS_CONNECTIONS.inc()
    # One queue and one task per socket: the hub's events arrive encoded once per publish
    # (Wire); the socket's own replies go ahead of any event still queued (Outbox.put_ahead).
    events = casino.events.subscribe(f"player:{psn}", *(f"table:{t}" for t in casino.state.tables), wire=True)
    loop = asyncio.get_running_loop()

    frames = FrameWriter(ws)

    def send(obj: dict[str, Any]) -> None:
        # An acknowledgement with nothing queued before it is sent now, not by the writer task
        # (one task wake-up less per bet and decision); otherwise it goes ahead of the queue.
        payload = orjson.dumps(obj)
        if not (events.empty() and frames.reply(payload)):
            events.put_ahead(payload.decode())

    if frames.fd >= 0:
        events.sink = frames  # broadcasts may skip the queue while nothing is queued (wsfanout.py)

    async def writer() -> None:
        try:
            await write_queued()
        finally:
            frames.stop()  # nothing more goes to this socket, directly either

    async def write_queued() -> None:
        # Whatever is queued when the writer wakes goes out in one write (see wsframes.py).
        batch: list[str] = []
        while True:
            item = await events.get()
            while True:
                if item is None or item is CLOSE:
                    break
                if isinstance(item, Wire):
                    batch.append(item.text)
                    if item.type == "session.ended":
                        item = CLOSE
                        break
                else:
                    batch.append(item)
                if events.empty():
                    break
                item = events.get_nowait()
            if batch:
                await frames.write(batch)
                batch.clear()
            if item is None:  # the hub dropped this socket: it fell QUEUE_BOUND events behind
                await frames.write([orjson.dumps(
                    {"type": "error", "error": {"code": "too_slow", "message": "event queue overflow"}}).decode()])
                return
            if item is CLOSE:
                return

    def answer_bet(req: Any, fut: asyncio.Future[dict[str, Any]]) -> None:
        exc = fut.exception()
        if exc is None:
            send({"type": "bet.accepted", "req": req, **fut.result()})
        else:
            send({"type": "bet.refused", "req": req, "error": {"code": "journal_failed", "message": str(exc)}})

    def answer_batch(req: Any, fut: asyncio.Future[list[dict[str, Any]]]) -> None:
        exc = fut.exception()
        if exc is None:
            send({"type": "bets.result", "req": req, "results": fut.result()})
        else:
            send({"type": "bets.result", "req": req, "error": {"code": "journal_failed", "message": str(exc)}})

    def answer_act(req: Any, result: dict[str, Any] | None, err: BaseException | None) -> None:
        if err is None:
            send({"type": "act.accepted", "req": req, **(result or {})})
        else:
            send({"type": "act.refused", "req": req, "error": {"code": "journal_failed", "message": str(err)}})

    writing = asyncio.create_task(writer())
    stop_reminders = app_state.reality.watch(psn, send)
    send({"type": "hello", "player": psn, "wallet": casino.wallet(psn),
          "tables": [casino.table_view(t) for t in casino.state.tables],
          "notices": casino.notices.pop(psn, [])})

    def handle(raw: str | None) -> bool:
        """One message from the player; False: the player logged out (stop reading)."""
        if raw is None:
            # A binary frame: the protocol is JSON text; say so and keep the connection.
            send({"type": "error", "error": {"code": "invalid_request", "message": "frames are JSON text"}})
            return True
        if len(raw) > MAX_FRAME:
            send({"type": "error", "error": {"code": "body_too_large", "message": "frame too large"}})
            return True
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            send({"type": "error", "error": {"code": "malformed_json", "message": "frame is not valid JSON"}})
            return True
        if not isinstance(msg, dict):
            send({"type": "error", "error": {"code": "invalid_request", "message": "frame must be an object"}})
            return True
        kind, req = msg.get("type"), msg.get("req")
        try:
            if kind == "bet":
                try:
                    fut = casino.betting.submit(psn, msg)
                except DomainError as err:
                    send({"type": "bet.refused", "req": req, "error": err.as_dict()})
                else:
                    fut.add_done_callback(functools.partial(answer_bet, req))
            elif kind == "bets":
                bets = msg.get("bets")
                if not isinstance(bets, list) or not 1 <= len(bets) <= MAX_BATCH:
                    send({"type": "error", "req": req,
                          "error": {"code": "invalid_request", "message": f"bets must be a list of 1..{MAX_BATCH}"}})
                    return True
                casino.betting.submit_batch(psn, bets).add_done_callback(functools.partial(answer_batch, req))
            elif kind == "act":
                # A decision in a game's play phase (e.g. blackjack's hit/stand), answered once durable.
                try:
                    casino.submit_act(psn, msg.get("table_id"), msg, functools.partial(answer_act, req))
                except DomainError as err:
                    send({"type": "act.refused", "req": req, "error": err.as_dict()})
            elif kind == "ping":
                send({"type": "pong", "t": msg.get("t"), "server_ts": casino.clock()})
            elif kind == "subscribe":
                tid = msg.get("table_id")
                if isinstance(tid, str) and tid in casino.state.tables:
                    casino.events.add_topic(events, f"table:{tid}")
                    send({"type": "table", **casino.table_view(tid)})
                else:
                    send({"type": "error", "req": req,
                          "error": {"code": "unknown_table", "message": f"unknown table {str(tid)[:64]!r}"}})
            elif kind == "reality_check.ack":
                if msg.get("action") == "logout":
                    casino.end_session(psn, "reality_check_logout")
                    return False
            elif kind == "wallet":
                send({"type": "wallet", "req": req, **casino.wallet(psn)})
            else:
                send({"type": "error", "req": req, "error": {"code": "invalid_request",
                                                             "message": f"unknown message type {kind!r}"}})
        except DomainError as err:
            send({"type": "error", "req": req, "error": err.as_dict()})
        except Exception:
            log.exception("websocket message failed", kind=str(kind)[:32])
            send({"type": "error", "req": req, "error": {"code": "internal_error", "message": "internal error"}})
        return True

    # Under uvicorn (wsproto.PlayerProtocol) plain text messages come straight from the protocol
    # to `handle`; what still comes through ASGI (the disconnect, binary or fragmented messages)
    # is read below, in order with them (see wsproto.py).
    logged_out = loop.create_future()

    def on_text(raw: str) -> None:
        if not logged_out.done() and not handle(raw):
            logged_out.set_result(None)

    direct = wsproto.deliver_text(ws.scope.get(SCOPE_KEY), on_text)
    try:
        while not logged_out.done():
            if direct:
                recv = asyncio.ensure_future(ws.receive())
                await asyncio.wait((recv, logged_out), return_when=asyncio.FIRST_COMPLETED)
                if not recv.done():
                    recv.cancel()
                    break
                frame = recv.result()
            else:
                frame = await ws.receive()
            if frame["type"] == "websocket.disconnect" or not handle(frame.get("text")):
                break
    except WebSocketDisconnect:
        pass
    finally:
        wsproto.deliver_text(ws.scope.get(SCOPE_KEY), None)
        M.WS_CONNECTIONS.dec()
        casino.events.unsubscribe(events)
        stop_reminders()
        events.put_last(CLOSE)
        try:
            await asyncio.wait_for(writing, 2)
        except (TimeoutError, Exception):  # noqa: BLE001
            writing.cancel()
        del loop
