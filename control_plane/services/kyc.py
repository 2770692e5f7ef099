"""KYC decisions in the cloud: vendor callbacks and operator actions, each a legal transition,
each followed by a KycResult command to the player's edge (the cloud keeps no document)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select, update

from contract import sync as S
from control_plane.adapters import outbox
from control_plane.adapters.db.models import kyc
from control_plane.clock import now_ms
from control_plane.domain import kyc as rules
from control_plane.services import operator_log

_FIELDS = ("jurisdiction", "player", "status", "reference", "vendor_ref", "edge_id", "version", "updated_ts")


class KycNotFound(LookupError):
    pass


class VendorRefMismatch(ValueError):
    pass


class KycService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, jurisdiction: str, player: str) -> dict[str, Any]:
        with self.engine.connect() as c:
            row = c.execute(select(kyc).where(kyc.c.jurisdiction == jurisdiction, kyc.c.player == player)).mappings().first()
        if row is None:
            return {"jurisdiction": jurisdiction, "player": player, "status": "unverified", "reference": "",
                    "version": 0}
        return {k: row[k] for k in _FIELDS}

    def listing(self, jurisdiction: str | None, statuses: tuple[str, ...] = (), limit: int = 200
                ) -> list[dict[str, Any]]:
        """Most recently changed first; `jurisdiction` None: every jurisdiction."""
        q = select(kyc).order_by(kyc.c.updated_ts.desc(), kyc.c.player).limit(limit)
        if jurisdiction is not None:
            q = q.where(kyc.c.jurisdiction == jurisdiction)
        if statuses:
            q = q.where(kyc.c.status.in_(statuses))
        with self.engine.connect() as c:
            rows = [{k: r[k] for k in _FIELDS} for r in c.execute(q).mappings()]
        for r in rows:  # what an operator may decide next (the page offers only legal moves)
            r["next"] = sorted(rules.TRANSITIONS.get(r["status"], frozenset()))
        return rows

    def set_status(self, jurisdiction: str, player: str, target: str, *, vendor_ref: str | None = None,
                   by: str | None = None, reason: str = "") -> bool:
        """Apply a transition; True if it changed something, False for an idempotent repeat.

        Raises IllegalTransition, KycNotFound, VendorRefMismatch. `by`: the operator deciding (the
        decision is then recorded in the operator log, in the same transaction).
        """
        with self.engine.begin() as c:
            row = c.execute(select(kyc).where(kyc.c.jurisdiction == jurisdiction, kyc.c.player == player)
                            .with_for_update()).mappings().first()
            if row is None:
                raise KycNotFound(f"no KYC record for {player} in {jurisdiction}")
            if vendor_ref is not None:
                if row["vendor_ref"] != vendor_ref:
                    if row["status"] == target:
                        return False  # a late webhook for an older check
                    raise VendorRefMismatch("callback for another check")
                if row["status"] == target:
                    return False  # vendors redeliver webhooks
            rules.transition(row["status"], target)
            version = row["version"] + 1
            values: dict[str, Any] = {"status": target, "version": version, "updated_ts": now_ms()}
            if target == "pending":  # a fresh check: the vendor is asked again
                values.update(submitted=False, vendor_ref="")
            c.execute(update(kyc).where(kyc.c.jurisdiction == jurisdiction, kyc.c.player == player).values(**values))
            outbox.enqueue(c, row["edge_id"], S.KycResult(
                id=outbox.kyc_result_id(jurisdiction, player, version), ts=now_ms(), player=player,
                status=target, reference=row["reference"]))  # type: ignore[arg-type]
            if by is not None:
                operator_log.record(c, operator=by, jurisdiction=jurisdiction, action=f"kyc.{target}", target=player,
                                    reason=reason, detail={"from": row["status"], "version": version})
        return True
