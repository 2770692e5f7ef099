"""Edge <-> cloud wire over NATS: subjects, stream names, message ids and command shapes.

Journal entries flow edge -> cloud on `casino.journal.{edge_id}` (JetStream, one message per
entry, `Nats-Msg-Id` = f"{edge_id}:{seq}"). Commands flow cloud -> edge on
`casino.cmd.{edge_id}`; every command carries an `id` and is applied at most once per edge.
Players are named only by pseudonym (CONTRACT section 6).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from contract.bounds import Int64, Money, Seq

JOURNAL_STREAM = "CASINO_JOURNAL"
COMMAND_STREAM = "CASINO_COMMANDS"
CHECKPOINT_STREAM = "CASINO_CHECKPOINTS"


def journal_subject(edge_id: str) -> str:
    return f"casino.journal.{edge_id}"


def command_subject(edge_id: str) -> str:
    return f"casino.cmd.{edge_id}"


def checkpoint_subject(edge_id: str) -> str:
    return f"casino.checkpoint.{edge_id}"


def heartbeat_subject(edge_id: str) -> str:
    """Core NATS (not persisted): liveness and load for the registry."""
    return f"casino.heartbeat.{edge_id}"


def hwm_subject(edge_id: str) -> str:
    """Request/reply: the cloud's last applied (seq, hash) for an edge."""
    return f"casino.hwm.{edge_id}"


def journal_msg_id(edge_id: str, seq: int) -> str:
    return f"{edge_id}:{seq}"


# --- journal entry as synced ------------------------------------------------------------------

class SyncedEntry(BaseModel):
    """A journal entry as it leaves the jurisdiction.

    When the residency policy removes fields, `redacted` names them and `hash` still is the
    in-country hash: the cloud then checks linkage (`prev` of the next entry) but cannot
    recompute this entry's hash, which regulators verify in-country.
    """

    model_config = ConfigDict(extra="forbid")
    seq: Seq
    ts: Int64
    kind: str
    data: dict[str, Any]
    prev: str
    hash: str
    redacted: list[str] = Field(default_factory=list)


# --- commands cloud -> edge -------------------------------------------------------------------

class _Cmd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str  # unique per command; the edge applies each id once
    ts: Int64  # Unix ms when the cloud issued it


class KycResult(_Cmd):
    type: Literal["kyc.result"] = "kyc.result"
    player: str
    status: Literal["unverified", "pending", "verified", "rejected", "edd_required", "suspended"]
    reference: str = ""


class DepositCredit(_Cmd):
    type: Literal["deposit.credit"] = "deposit.credit"
    deposit_id: str
    player: str
    amount: Money
    currency: str


class DepositDeclined(_Cmd):
    """The payment provider declined the payment: nothing to credit; the edge closes the request."""

    type: Literal["deposit.declined"] = "deposit.declined"
    deposit_id: str
    player: str
    amount: Money
    reason: str


class PayoutResult(_Cmd):
    type: Literal["payout.result"] = "payout.result"
    withdrawal_id: str
    player: str
    status: Literal["paid", "refused"]
    reason: str = ""
    rail: str = ""
    rail_ref: str = ""


class PlayerExclude(_Cmd):
    type: Literal["player.exclude"] = "player.exclude"
    player: str
    until_ts: Int64  # Unix ms
    origin_edge: str
    reason: str = "self_exclusion"


class TableControl(_Cmd):
    """An operator's table action, carried out by the edge as if taken on its own operator API:
    `enable`/`disable` journal `table.status` (disable voids the round in progress); `void` voids the
    round in progress, only if it is still round `round_n` of `chain_id` when given (a late command
    never voids the next round)."""

    type: Literal["table.control"] = "table.control"
    table_id: str = Field(min_length=1, max_length=64)
    action: Literal["enable", "disable", "void"]
    reason: str = Field(min_length=1, max_length=200)
    by: str = Field(min_length=1, max_length=128)  # the operator (token subject)
    chain_id: str | None = None
    round_n: int | None = Field(None, ge=1)


Command = KycResult | DepositCredit | DepositDeclined | PayoutResult | PlayerExclude | TableControl
COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(
    Annotated[Command, Field(discriminator="type")]
)


def parse_command(raw: bytes | str) -> Command:
    return COMMAND_ADAPTER.validate_json(raw)


# --- journal kinds the cloud reads (besides CONTRACT section 2) --------------------------------
# data shapes, all with `player` as pseudonym and integer minor units:
DEPOSIT_REQUESTED = "deposit.requested"     # deposit_id, player, amount, currency, method
DEPOSIT_CREDITED = "deposit.credited"       # deposit_id, player, amount, currency
DEPOSIT_REFUSED = "deposit.refused"         # deposit_id, player, amount, currency, reason
DEPOSIT_DECLINED = "deposit.declined"       # deposit_id, player, amount, currency, reason (by the PSP)
WITHDRAWAL_REQUESTED = "withdrawal.requested"  # withdrawal_id, player, amount, currency, rail
WITHDRAWAL_PAID = "withdrawal.paid"         # withdrawal_id, player, amount, currency, rail_ref
WITHDRAWAL_RELEASED = "withdrawal.released"  # withdrawal_id, player, amount, currency, reason
PLAYER_EXCLUDED = "player.excluded"         # player, until_ts, kind ("self_exclusion"|"break"), origin
KYC_REQUESTED = "kyc.requested"             # player, reference (document stays in-country)
TABLE_RULES = "table.rules"                 # table_id, version, game, limits
TABLE_STATUS = "table.status"               # table_id, enabled, reason, by
TABLE_FEED = "table.feed"                   # table_id, live, reason
KYC_UPDATED = "kyc.updated"                 # player, status, reference
COMMAND_APPLIED = "command.applied"         # command_id, type  (idempotency record)


class Heartbeat(BaseModel):
    edge_id: str
    jurisdiction: str
    public_url: str
    ts: int
    head_seq: int
    viewers: int = 0
    viewer_capacity: int = 0
    bets_per_s: int = 0
    healthy: bool = True


class HighWaterMark(BaseModel):
    edge_id: str
    seq: int  # 0 when the cloud holds nothing
    hash: str
