"""Player HTTP API: bets (with Idempotency-Key), wallet, limits, breaks and exclusion, proofs."""
from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from contract.bounds import INT64_MAX, MAX_MONEY
from edge_agent.api.auth import bearer
from edge_agent.api.errors import ERROR_SCHEMA
from edge_agent.api.fastpath import http_bet
from edge_agent.api.limits import KYC_MAX_BYTES
from edge_agent.domain.errors import DomainError

BET_SCHEMA = {
    "type": "object",
    "required": ["table_id", "spot", "amount"],
    "properties": {
        "table_id": {"type": "string"},
        "spot": {"type": "string", "description": "e.g. red, straight:17, dozen:2, banker"},
        "amount": {"type": "integer", "minimum": 1, "maximum": MAX_MONEY, "description": "minor units"},
        "rules_version": {"type": "string", "description": "refused with stale_rules if not current"},
        "player_seed": {"type": "string", "maxLength": 64},
    },
}
ERRORS = {c: {"description": d, "content": {"application/json": {"schema": ERROR_SCHEMA}}} for c, d in {
    400: "malformed_json", 401: "unauthorized", 402: "insufficient_funds",
    403: "forbidden, wrong_jurisdiction, player_excluded, player_on_break",
    404: "unknown_table, not_found", 409: "betting_closed, stale_rules, table_not_live, idempotency_conflict, "
                                          "duplicate_bet; blackjack decisions: not_in_play, decisions_closed, "
                                          "already_decided, hand_finished, hand_takes_card, no_bet_in_round",
    413: "body_too_large", 415: "unsupported_media_type",
    422: "invalid_request, invalid_amount, invalid_limit, unknown_spot, below_table_min, above_spot_max, "
         "above_round_max, loss_limit_reached, deposit_limit_exceeded; blackjack decisions: unknown_action, "
         "double_not_allowed, split_not_allowed, already_split",
    503: "edge_out_of_sync",
}.items()}
PUBLIC_ERRORS = {c: ERRORS[c] for c in (404, 422)}

# Money in a request body: declared as a bounded integer; the domain refuses anything else with
# invalid_amount (its own code), so the model leaves the value to it.
_MONEY = {"type": "integer", "minimum": 1, "maximum": MAX_MONEY}


class _Strict(BaseModel):
    """Request bodies parse into exact types: no "5" for 5, no true for 1, no unknown keys lost."""

    model_config = ConfigDict(strict=True)


class AmountBody(_Strict):
    amount: Any = Field(description="positive integer, minor units", json_schema_extra=_MONEY)
    method: str = Field("card", min_length=1, max_length=32)


class WithdrawalBody(_Strict):
    amount: Any = Field(description="positive integer, minor units", json_schema_extra=_MONEY)
    rail: Literal["bank", "crypto"] = "bank"


class LimitBody(_Strict):
    amount: Any = Field(description="positive integer (minor units) or null to remove",
                        json_schema_extra={"anyOf": [_MONEY, {"type": "null"}]})


class DurationBody(_Strict):
    duration: str = Field(max_length=8, description="break: 1d, 1w, 1m, 2m, 3m; self-exclusion: 6m, 1y, 5y")


class VoidBody(_Strict):
    reason: str = Field("operator_action", max_length=64)


class RealityCheckBody(_Strict):
    minutes: int | None = Field(None, ge=1, le=24 * 60)


RoundNumber = Annotated[int, Path(ge=1, le=INT64_MAX, description="round number within its chain")]


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


def player_router(app_state: Any) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["players"], responses=ERRORS)
    casino, auth = app_state.casino, app_state.auth

    def player(request: Request) -> str:
        p = auth.player(bearer(request.headers.get("authorization")))
        return casino.ensure_player(p.sub)

    @r.post("/bets", status_code=201, openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": BET_SCHEMA}}},
        "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"},
                        "description": "same key + same body -> same answer; same key + other body -> 409"}]},
        summary="Place a bet (acknowledged once durable)")
    async def place_bet(request: Request) -> Response:
        # Normally answered by edge_agent.api.fastpath before reaching here; same handler.
        status, payload = await http_bet(app_state, request.headers.get("authorization"),
                                         request.headers.get("idempotency-key"), await request.body(),
                                         request.headers.get("content-type"))
        return _json(payload, status)

    @r.get("/me", summary="Who am I at this edge (pseudonym, jurisdiction)")
    async def me(request: Request) -> Response:
        psn = player(request)
        return _json({"player": psn, "edge_id": casino.config.edge_id,
                      "jurisdiction": casino.config.jurisdiction, "currency": casino.config.currency})

    @r.get("/wallet", summary="Balance, in play, pending withdrawal, session clock and net position")
    async def wallet(request: Request) -> Response:
        return _json(casino.wallet(player(request)))

    @r.post("/wallet/deposits", status_code=202, summary="Ask for a deposit; credited when the payment confirms")
    async def deposit(request: Request, body: AmountBody) -> Response:
        psn = player(request)
        e = await casino.cashier.deposit(psn, body.amount, body.method)
        return _json({"deposit_id": e["data"]["deposit_id"], "status": "requested"}, 202)

    @r.post("/wallet/withdrawals", status_code=202, summary="Request a withdrawal (funds move to pending)")
    async def withdraw(request: Request, body: WithdrawalBody) -> Response:
        psn = player(request)
        e = await casino.cashier.withdraw(psn, body.amount, body.rail)
        return _json({"withdrawal_id": e["data"]["withdrawal_id"], "status": "pending",
                      "balance": casino.state.cash(psn)}, 202)

    @r.get("/wallet/withdrawals", summary="Withdrawals and their status")
    async def withdrawals(request: Request) -> Response:
        psn = player(request)
        return _json([{"withdrawal_id": w.withdrawal_id, "amount": w.amount, "rail": w.rail,
                       "status": {"requested": "pending", "released": "refused"}.get(w.status, w.status), "reason": w.reason}
                      for w in casino.state.withdrawals.values() if w.player == psn])

    @r.get("/limits", summary="Deposit and loss limits (with pending increases), breaks, exclusion")
    async def limits(request: Request) -> Response:
        return _json(casino.limits_view(player(request)))

    @r.put("/limits/{kind}/{period}", response_model=None, summary="Set a deposit or loss limit: decreases now, increases after 24 h")
    async def set_limit(request: Request, kind: str, period: str, body: LimitBody) -> Response:
        psn = player(request)
        e = await casino.players.change_limit(psn, kind, period, body.amount)
        return _json({**casino.limits_view(psn), "effective_ts": e["data"]["effective_ts"]})

    @r.put("/settings/reality-check", summary="Reality-check reminder interval in minutes (null: off)")
    async def reality(request: Request, body: RealityCheckBody) -> Response:
        psn = player(request)
        await casino.players.change_reality_check(psn, body.minutes)
        return _json(casino.limits_view(psn))

    @r.post("/breaks", status_code=201, summary="Take a break (1d, 1w, 1m, 2m, 3m); cannot be lifted early")
    async def take_break(request: Request, body: DurationBody) -> Response:
        psn = player(request)
        e = await casino.players.take_break(psn, body.duration)
        return _json({"until_ts": e["data"]["until_ts"], "kind": "break"}, 201)

    @r.post("/self-exclusion", status_code=201, summary="Self-exclude (6m, 1y, 5y); immediate logout, cannot be lifted early")
    async def self_exclude(request: Request, body: DurationBody) -> Response:
        psn = player(request)
        e = await casino.players.self_exclude(psn, body.duration)
        return _json({"until_ts": e["data"]["until_ts"], "kind": "self_exclusion"}, 201)

    @r.post("/kyc", status_code=202, summary="Submit identity documents (kept in-country) for verification",
            openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
                "schema": {"type": "string", "format": "binary", "maxLength": KYC_MAX_BYTES}}}}})
    async def kyc(request: Request) -> Response:
        psn = player(request)
        body = await request.body()
        if len(body) > KYC_MAX_BYTES:
            raise DomainError("body_too_large", f"a KYC submission is at most {KYC_MAX_BYTES} bytes", 413)
        e = await casino.cashier.submit_kyc(psn, body)
        return _json({"status": "pending", "reference": e["data"]["reference"]}, 202)

    return r


def public_router(app_state: Any) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["tables"], responses=PUBLIC_ERRORS)
    casino, auth = app_state.casino, app_state.auth

    @r.get("/tables", summary="Tables at this edge")
    async def tables() -> Response:
        return _json([casino.table_view(t) for t in casino.state.tables])

    @r.get("/tables/{table_id}", summary="One table: rules, chain commitment, current round")
    async def table(table_id: str) -> Response:
        return _json(casino.table_view(table_id))

    @r.post("/tables/{table_id}/actions", status_code=201, responses=ERRORS, summary="A decision in the play phase of the table's round "
            "(games with one, e.g. blackjack); answered once durable")
    async def act(request: Request, table_id: str) -> Response:
        psn = casino.ensure_player(auth.player(bearer(request.headers.get("authorization"))).sub)
        try:
            action = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise DomainError("malformed_json", "body is not valid JSON", 400) from None
        if not isinstance(action, dict):
            raise DomainError("invalid_request", "body must be a JSON object", 422)
        key = request.headers.get("idempotency-key")
        if key:  # same key + same body -> same answer; same key + other body -> 409 (as for bets)
            action = {**action, "idempotency_key": key[:128]}
        return _json(await casino.act(psn, table_id, action), 201)

    @r.get("/tables/{table_id}/rounds/{chain_id}/{n}", summary="A round's fairness proof (CONTRACT section 3)")
    async def round_proof(table_id: str, chain_id: str, n: RoundNumber) -> Response:
        return _json(casino.round_proof(table_id, chain_id, n))

    return r


def operator_router(app_state: Any) -> APIRouter:
    r = APIRouter(prefix="/v1/operator", tags=["operator"], responses=ERRORS)
    casino, auth = app_state.casino, app_state.auth

    @r.post("/tables/{table_id}/void", summary="Void the round in progress, refunding every stake")
    async def void(request: Request, table_id: str, body: VoidBody) -> Response:
        op = auth.operator(bearer(request.headers.get("authorization")))
        e = await casino.void_round(table_id, body.reason, op.sub)
        return _json({"voided": e["data"]})

    @r.post("/tables/{table_id}/{action}", summary="Enable or disable a table (disable voids its round)")
    async def toggle(request: Request, table_id: str, action: Literal["enable", "disable"], body: VoidBody) -> Response:
        op = auth.operator(bearer(request.headers.get("authorization")))
        await casino.set_table_enabled(table_id, action == "enable", body.reason, op.sub)
        return _json(casino.table_view(table_id))

    return r
