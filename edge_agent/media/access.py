"""Who may watch a table over WHEP, and who owns a session resource.

Players of the edge's jurisdiction only, and not while self-excluded or on a break (AGCO 2.14:
an exclusion logs the player out at once, so their live sessions are closed too). Operators and
regulators may watch for surveillance (UKGC RTS 17A); each such session is audited. A session
resource (PATCH, DELETE) belongs to the principal whose token created it.

The casino side is a `ViewerPolicy` (edge_agent.media.casino_policy wires the casino's); the
media service only asks it questions and exposes `close_sessions_of(player)` for exclusions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from contract import tokens


@dataclass(frozen=True)
class Denied(Exception):
    status: int
    code: str
    message: str


@dataclass(frozen=True)
class Owner:
    role: str
    sub: str

    @classmethod
    def of(cls, p: tokens.Principal | None) -> Owner | None:
        return None if p is None else cls(p.role, p.sub)


class ViewerPolicy(Protocol):
    def refusal(self, player_id: str) -> Denied | None:
        """Why this player may not watch now (exclusion, break), or None."""
        ...

    def opened(self, principal: tokens.Principal, table_id: str, session_id: str) -> None:
        """A session was created (audit surveillance viewers; watch players for exclusions)."""
        ...

    def closed(self, principal: tokens.Principal, session_id: str) -> None: ...


SURVEILLANCE_ROLES = ("operator", "regulator")


def admit(p: tokens.Principal | None, jurisdiction: str | None, policy: ViewerPolicy | None) -> None:
    """Raise Denied unless `p` may open a WHEP session here (None = tokens are off: development)."""
    if p is None:
        return
    if p.role == "player":
        if jurisdiction is not None and p.jurisdiction != jurisdiction:
            raise Denied(403, "wrong_jurisdiction",
                         f"this edge serves players of jurisdiction {jurisdiction}, not {p.jurisdiction or 'none'}")
        refusal = policy.refusal(p.sub) if policy is not None else None
        if refusal is not None:
            raise refusal
    elif p.role == "regulator":
        if jurisdiction is not None and p.jurisdiction != jurisdiction:
            raise Denied(403, "wrong_jurisdiction", f"this edge belongs to jurisdiction {jurisdiction}")
    elif p.role not in SURVEILLANCE_ROLES:
        raise Denied(403, "role_not_allowed", f"a {p.role} token cannot watch tables")


def check_owner(owner: Owner | None, p: tokens.Principal | None) -> None:
    """A session resource is changed only by the principal that created it."""
    if owner is not None and Owner.of(p) != owner:
        raise Denied(403, "not_session_owner", "this session belongs to another token")
