"""Machine-readable refusals. A DomainError is raised before anything changes."""
from __future__ import annotations


class DomainError(Exception):
    """A request refused by a rule. `code` is stable and documented in the OpenAPI schema."""

    status = 422

    def __init__(self, code: str, message: str, status: int | None = None, **details: object):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        if status is not None:
            self.status = status

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


# Codes (stable; the web client and outside integrators switch on them).
INVALID_AMOUNT = "invalid_amount"
UNKNOWN_TABLE = "unknown_table"
UNKNOWN_SPOT = "unknown_spot"
BETTING_CLOSED = "betting_closed"
STALE_RULES = "stale_rules"
BELOW_TABLE_MIN = "below_table_min"
ABOVE_SPOT_MAX = "above_spot_max"
ABOVE_ROUND_MAX = "above_round_max"
INSUFFICIENT_FUNDS = "insufficient_funds"
PLAYER_EXCLUDED = "player_excluded"
PLAYER_ON_BREAK = "player_on_break"
LOSS_LIMIT = "loss_limit_reached"
DEPOSIT_LIMIT = "deposit_limit_exceeded"
INVALID_LIMIT = "invalid_limit"
INVALID_REQUEST = "invalid_request"
DUPLICATE_BET = "duplicate_bet"
NOT_FOUND = "not_found"
KYC_REQUIRED = "kyc_required"
TABLE_NOT_LIVE = "table_not_live"
