"""The cashier: deposits, withdrawals and KYC submissions. Money moves only by journal entries
(the ledger postings are derived from their kinds: `edge_agent/domain/ledger.py`)."""
from __future__ import annotations

import hashlib
import secrets
from typing import Any

from contract import sync as S
from edge_agent.app.betting import positive_amount
from edge_agent.app.engine import Engine
from edge_agent.app.ports import KycDocument
from edge_agent.domain import errors as E
from edge_agent.domain import responsible as RG

RAILS = ("bank", "crypto")
MAX_KYC_DOCUMENT = 1_000_000  # bytes; the HTTP body limit of the KYC route is this same figure


class Cashier:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def request_deposit(self, psn: str, amount: Any, method: str = "card") -> dict[str, Any]:
        eng = self._engine
        amount = positive_amount(amount)
        RG.check_deposit(eng.state.player(psn), amount, eng.clock())
        deposit_id = f"dep-{eng.config.edge_id}-{secrets.token_hex(8)}"
        return eng.record(S.DEPOSIT_REQUESTED, {"deposit_id": deposit_id, "player": psn, "amount": amount,
                                                "currency": eng.config.currency, "method": str(method)[:32]})

    async def deposit(self, psn: str, amount: Any, method: str = "card") -> dict[str, Any]:
        e = self.request_deposit(psn, amount, method)
        await self._engine.durable(e)
        return e

    def credit_deposit(self, psn: str, deposit_id: str, amount: int) -> dict[str, Any]:
        """A payment confirmed upstream: credit it, or refuse it when a limit forbids it."""
        eng = self._engine
        amount = positive_amount(amount)
        data = {"deposit_id": deposit_id, "player": psn, "amount": amount, "currency": eng.config.currency}
        try:
            RG.check_deposit(eng.state.player(psn), amount, eng.clock())
        except E.DomainError as err:
            return eng.record(S.DEPOSIT_REFUSED, {**data, "reason": err.code})
        e = eng.record(S.DEPOSIT_CREDITED, data)
        eng.publish_player(psn, {"type": "deposit", "deposit_id": deposit_id, "amount": amount,
                                 "balance": eng.state.cash(psn)})
        return e

    def request_withdrawal(self, psn: str, amount: Any, rail: str = "bank") -> dict[str, Any]:
        eng = self._engine
        amount = positive_amount(amount)
        if rail not in RAILS:
            raise E.DomainError(E.INVALID_REQUEST, "rail must be bank or crypto")
        if eng.state.cash(psn) < amount:
            raise E.DomainError(E.INSUFFICIENT_FUNDS, "insufficient funds", 402, balance=eng.state.cash(psn))
        wid = f"wd-{eng.config.edge_id}-{secrets.token_hex(8)}"
        return eng.record(S.WITHDRAWAL_REQUESTED, {"withdrawal_id": wid, "player": psn, "amount": amount,
                                                   "currency": eng.config.currency, "rail": rail})

    async def withdraw(self, psn: str, amount: Any, rail: str = "bank") -> dict[str, Any]:
        e = self.request_withdrawal(psn, amount, rail)
        await self._engine.durable(e)
        return e

    def request_kyc(self, psn: str, document: bytes) -> dict[str, Any]:
        """Identity documents stay in-country; the cloud gets only a reference to the check."""
        if not document or len(document) > MAX_KYC_DOCUMENT:
            raise E.DomainError(E.INVALID_REQUEST, "a KYC submission is 1 byte to 1 MB")
        reference = "kyc-" + hashlib.sha256(psn.encode() + document).hexdigest()[:24]
        return self._engine.record(S.KYC_REQUESTED, {"player": psn, "reference": reference},
                                   [KycDocument(reference, psn, document, self._engine.clock())])

    async def submit_kyc(self, psn: str, document: bytes) -> dict[str, Any]:
        e = self.request_kyc(psn, document)
        await self._engine.durable(e)
        return e
