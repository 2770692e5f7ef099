"""Authorisation of regulator tokens and the journal record of every regulator query."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from contract import tokens
from edge_agent.app.oversight import REGULATOR_QUERY

if TYPE_CHECKING:
    from edge_agent.casino import Casino

__all__ = ["REGULATOR_QUERY", "AccessDenied", "authorize", "journal_query", "record_query"]


class AccessDenied(Exception):
    def __init__(self, status: int, code: str, message: str, principal: tokens.Principal | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.principal = status, code, message, principal


def authorize(public_key_pem: str | None, jurisdiction: str, token: str | None) -> tokens.Principal:
    """A regulator token of this edge's jurisdiction, else AccessDenied (401 or 403)."""
    if not token:
        raise AccessDenied(401, "unauthorized", "missing bearer token")
    if not public_key_pem:
        raise AccessDenied(401, "unauthorized", "this edge has no token key configured")
    try:
        p = tokens.verify(public_key_pem, token)
    except tokens.TokenError as exc:
        raise AccessDenied(401, "unauthorized", f"invalid token: {exc}") from exc
    if p.role != "regulator":
        raise AccessDenied(403, "forbidden", "a regulator token is required", p)
    if p.jurisdiction != jurisdiction:
        raise AccessDenied(403, "forbidden", f"this edge belongs to jurisdiction {jurisdiction}", p)
    return p


def record_query(casino: Casino, principal: tokens.Principal, route: str, params: dict[str, Any],
                 status: int) -> dict[str, Any]:
    """Journal one regulator query (who, what, when: the entry's ts). Not yet durable.

    `params` must name players by pseudonym only: the journal never holds personal data.
    """
    return casino.oversight.record_query(principal.sub, principal.jurisdiction, route, params, status)


async def journal_query(casino: Casino, principal: tokens.Principal, route: str, params: dict[str, Any],
                        status: int = 200) -> dict[str, Any]:
    """Journal a regulator query; returns once durable (answer only what is recorded)."""
    return await casino.oversight.journal_query(principal.sub, principal.jurisdiction, route, params, status)
