"""Edge registry: registration, heartbeats (health and load), discovery."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select, update

from contract import sync as S
from control_plane.adapters.db.models import edge_sync, edges
from control_plane.adapters.db.sql import insert_ignore
from control_plane.clock import now_ms
from control_plane.domain.discovery import EdgeView, candidates
from control_plane.metrics import Metrics


class Registry:
    def __init__(self, engine: Engine, metrics: Metrics, heartbeat_timeout_s: float, auto_register: bool) -> None:
        self.engine, self.metrics = engine, metrics
        self.timeout_ms = int(heartbeat_timeout_s * 1000)
        self.auto_register = auto_register

    def register(self, edge_id: str, jurisdiction: str, public_url: str, checkpoint_public_key: str | None) -> None:
        with self.engine.begin() as c:
            if not insert_ignore(c, edges, {"id": edge_id, "jurisdiction": jurisdiction, "public_url": public_url,
                                            "checkpoint_public_key": checkpoint_public_key,
                                            "registered_ts": now_ms(), "healthy": False, "viewers": 0,
                                            "viewer_capacity": 0, "reported_head_seq": 0}):
                values: dict[str, Any] = {"jurisdiction": jurisdiction, "public_url": public_url}
                if checkpoint_public_key:
                    values["checkpoint_public_key"] = checkpoint_public_key
                c.execute(update(edges).where(edges.c.id == edge_id).values(**values))

    def jurisdiction_of(self, edge_id: str) -> str | None:
        """The registered jurisdiction of an edge (None when unknown)."""
        with self.engine.connect() as c:
            jur: str | None = c.execute(select(edges.c.jurisdiction).where(edges.c.id == edge_id)).scalar()
        return jur

    def heartbeat(self, hb: S.Heartbeat) -> bool:
        """Record liveness and load; False when ignored (unknown edge, or a jurisdiction that lies)."""
        with self.engine.begin() as c:
            row = c.execute(select(edges.c.jurisdiction).where(edges.c.id == hb.edge_id)).first()
            if row is None:
                if not self.auto_register:
                    return False
                insert_ignore(c, edges, {"id": hb.edge_id, "jurisdiction": hb.jurisdiction,
                                         "public_url": hb.public_url, "checkpoint_public_key": None,
                                         "registered_ts": now_ms(), "healthy": False, "viewers": 0,
                                         "viewer_capacity": 0, "reported_head_seq": 0})
            elif row.jurisdiction != hb.jurisdiction:
                # Residency is what the operator registered, never what a heartbeat claims.
                self.metrics.errors.labels("heartbeat_jurisdiction").inc()
                return False
            c.execute(update(edges).where(edges.c.id == hb.edge_id).values(
                last_heartbeat_ts=now_ms(), healthy=hb.healthy, viewers=hb.viewers,
                viewer_capacity=hb.viewer_capacity, reported_head_seq=hb.head_seq,
                public_url=hb.public_url or edges.c.public_url))
            held = c.execute(select(edge_sync.c.head_seq).where(edge_sync.c.edge_id == hb.edge_id)).scalar() or 0
        self.metrics.sync_lag.labels(hb.edge_id).set(max(0, hb.head_seq - held))
        return True

    def list(self) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            rows = c.execute(select(edges, edge_sync.c.head_seq).outerjoin(
                edge_sync, edge_sync.c.edge_id == edges.c.id).order_by(edges.c.id)).mappings().all()
        now = now_ms()
        out = []
        for r in rows:
            d = {k: r[k] for k in ("id", "jurisdiction", "public_url", "viewers", "viewer_capacity",
                                   "last_heartbeat_ts", "reported_head_seq")}
            d["has_checkpoint_key"] = bool(r["checkpoint_public_key"])
            d["held_seq"] = r["head_seq"] or 0
            d["sync_lag"] = max(0, (r["reported_head_seq"] or 0) - d["held_seq"])
            d["healthy"] = bool(r["healthy"]) and r["last_heartbeat_ts"] is not None \
                and now - r["last_heartbeat_ts"] <= self.timeout_ms
            out.append(d)
        return out

    def discover(self, jurisdiction: str) -> tuple[bool, list[EdgeView]]:
        with self.engine.connect() as c:
            rows = c.execute(select(edges).where(edges.c.jurisdiction == jurisdiction)).mappings().all()
        views = [EdgeView(r["id"], r["jurisdiction"], r["public_url"], bool(r["healthy"]), r["last_heartbeat_ts"],
                          r["viewers"], r["viewer_capacity"]) for r in rows]
        return candidates(views, jurisdiction, now_ms(), self.timeout_ms)
