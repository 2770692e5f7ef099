"""What the HTTP layer is given by the composition root (control_plane/runtime.py): services and
wake-ups, never the runtime itself (so the HTTP layer imports no runtime and no database)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Request

from control_plane.adapters.outbox import Outbox
from control_plane.config import ControlPlaneConfig
from control_plane.metrics import Metrics
from control_plane.services.aml_flags import AmlFlags
from control_plane.services.audit import AuditService
from control_plane.services.checkpoints import CheckpointService
from control_plane.services.deposits import Deposits
from control_plane.services.kyc import KycService
from control_plane.services.operator_log import OperatorLog
from control_plane.services.registry import Registry
from control_plane.services.reviews import Reviews
from control_plane.services.tables import Tables
from control_plane.services.tokens import TokenIssuer
from control_plane.services.withdrawals import Withdrawals


@dataclass(frozen=True)
class Services:
    config: ControlPlaneConfig
    metrics: Metrics
    signing_key: Ed25519PrivateKey
    public_pem: str
    registry: Registry
    kyc: KycService
    checkpoints: CheckpointService
    audit: AuditService
    deposits: Deposits
    withdrawals: Withdrawals
    reviews: Reviews
    aml_flags: AmlFlags
    outbox: Outbox
    tables: Tables
    operator_log: OperatorLog
    tokens: TokenIssuer
    nats_connected: Callable[[], bool]
    wake_processor: Callable[[], None]
    wake_publisher: Callable[[], None]


def services(request: Request) -> Services:
    s: Services = request.app.state.services
    return s
