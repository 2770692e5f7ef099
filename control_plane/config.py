"""Control-plane configuration: one YAML file mapped onto pydantic models.

Strict all the way down: an unknown key anywhere is refused with its dotted path named. Any
value can be overridden from the environment as CONTROL_PLANE_<KEY>[__<SUBKEY>]
(`CONTROL_PLANE_DATABASE_URL`, `CONTROL_PLANE_NATS__PASSWORD`), which wins over the file."""
from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from contract import aml


class ConfigError(ValueError):
    """A configuration the control plane refuses; the message names every offending key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HttpConfig(Strict):
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    # Player pages are served by the edges (other origins) and ask the control plane for discovery.
    cors_origins: list[str] = Field(default_factory=lambda: ["*"])


class NatsConfig(Strict):
    # None: no bus (HTTP only, e.g. API tests). A cluster: its seed list (a list of URLs or one
    # comma-separated string); the client learns the rest of the cluster and fails over by itself.
    url: str | list[str] | None = None
    user: str | None = None
    password: str | None = None
    token: str | None = None
    durable: str = "control-plane"
    fetch_batch: int = 1000  # entries per fetch and per database transaction (fetch never waits to fill it)
    ack_wait_s: float = 30.0  # an unacknowledged entry (crash between commit and ack) comes back after this
    duplicate_window_s: float = 120.0
    stream_replicas: int = Field(1, ge=1, le=5)  # 3 on a three-node cluster (streams created when missing)
    rebalance_s: float = Field(1.0, gt=0)  # how often a replica re-balances its journal leases (edges)

    @property
    def servers(self) -> list[str]:
        if self.url is None:
            return []
        urls = self.url if isinstance(self.url, list) else self.url.split(",")
        return [u.strip() for u in urls if u.strip()]


class AmlConfig(Strict):
    """Thresholds in integer minor units per currency (AMLD4 art. 11(d), 31 CFR 1021.311/313/320)."""

    # Defaults: the contract's table (contract/aml.py), which the edges' regulator view applies too.
    cdd_threshold: dict[str, int] = Field(default_factory=lambda: dict(aml.CDD_THRESHOLD))
    cdd_window_s: int = aml.CDD_WINDOW_S  # operations within this window are "linked"
    ctr_threshold: dict[str, int] = Field(default_factory=lambda: dict(aml.CTR_THRESHOLD))
    sar_threshold: dict[str, int] = Field(default_factory=lambda: dict(aml.SAR_THRESHOLD))
    gaming_day_start_hour_utc: int = Field(6, ge=0, le=23)
    structuring_margin_pct: int = Field(10, ge=1, le=50)  # "just under" = within this % below
    structuring_count: int = Field(3, ge=2)
    structuring_window_s: int = 24 * 3600


class BankRailConfig(Strict):
    enabled: bool = True
    state_path: Path | None = None  # the simulated bank's own books (survive our restarts)
    # how long the simulated bank takes to answer a payout (after booking it): tests kill a
    # replica in that window
    answer_delay_s: float = Field(0.0, ge=0)


class CryptoRailConfig(Strict):
    enabled: bool = True
    state_path: Path | None = None
    confirmations: int = Field(3, ge=1)
    block_interval_s: float = Field(2.0, gt=0)


class RailsConfig(Strict):
    bank: BankRailConfig = Field(default_factory=BankRailConfig)
    crypto: CryptoRailConfig = Field(default_factory=CryptoRailConfig)


class PspConfig(Strict):
    state_path: Path | None = None
    decline_methods: list[str] = Field(default_factory=lambda: ["declined_card"])


class KycConfig(Strict):
    vendor: str = "simulated"
    vendor_delay_s: float = Field(2.0, ge=0)
    callback_secret: str = "dev-kyc-callback-secret"


EXAMPLE_SECRETS = frozenset({"change-me", "changeme", "secret", "bootstrap"})
MIN_SECRET_CHARS = 16


class ControlPlaneConfig(BaseSettings):
    model_config = SettingsConfigDict(extra="forbid", env_prefix="CONTROL_PLANE_", env_nested_delimiter="__",
                                      case_sensitive=False)
    database_url: str = "sqlite:///var/control-plane/control-plane.db"
    data_dir: Path = Path("var/control-plane")
    migrate_on_start: bool = True
    nats: NatsConfig = Field(default_factory=NatsConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    token_signing_key_path: Path = Path("var/control-plane/token-signing.pem")
    bootstrap_secret: str | None = None  # lets POST /v1/tokens work until the first operator token exists
    token_ttl_s: int = 3600
    heartbeat_timeout_s: float = 10.0  # an edge without a heartbeat this long is not discovered
    auto_register_edges: bool = True  # a heartbeat from an unknown edge registers it
    processor_interval_s: float = 0.5
    # This replica's name in the lease table (pg_stat_activity); unique per process. Kubernetes
    # sets it from the pod name (CONTROL_PLANE_REPLICA), else host and pid.
    replica: str = Field(default_factory=lambda: os.environ.get("CONTROL_PLANE_REPLICA")
                         or f"{socket.gethostname()}-{os.getpid()}")
    aml: AmlConfig = Field(default_factory=AmlConfig)
    rails: RailsConfig = Field(default_factory=RailsConfig)
    psp: PspConfig = Field(default_factory=PspConfig)
    kyc: KycConfig = Field(default_factory=KycConfig)

    @field_validator("bootstrap_secret")
    @classmethod
    def _real_secret(cls, v: str | None) -> str | None:
        # The example config's placeholder (or anything guessable) would let anyone mint the
        # first operator: refuse to start rather than run with it.
        if v is not None and (v in EXAMPLE_SECRETS or len(v) < MIN_SECRET_CHARS):
            raise ValueError(f"bootstrap_secret must be a generated secret of at least {MIN_SECRET_CHARS} "
                             "characters (e.g. `openssl rand -hex 16`), not the example value")
        return v

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return env_settings, init_settings  # the environment wins over the file

    def state_path(self, configured: Path | None, name: str) -> Path:
        return configured if configured is not None else self.data_dir / name


_ENV_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


class MissingEnvironment(ValueError):
    """A config value names an environment variable that is not set."""


def expand_env(value: object) -> object:
    """`"${NAME}"` inside any string value -> the environment's NAME (Kubernetes Secrets arrive as
    environment variables; the ConfigMap holds no secret). An unset NAME is an error, never ""."""
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in os.environ:
                raise MissingEnvironment(f"config refers to ${{{m.group(1)}}}, which is not set")
            return os.environ[m.group(1)]
        return _ENV_REF.sub(sub, value)
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    return value


def load_config(path: Path) -> ControlPlaneConfig:
    raw = expand_env(yaml.safe_load(Path(path).read_text()) or {})
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    try:
        return ControlPlaneConfig(**raw)
    except ValidationError as err:
        lines = [f"{path}: {'.'.join(str(p) for p in e['loc']) or '(top level)'}: "
                 f"{'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}" for e in err.errors()]
        raise ConfigError("\n".join(lines)) from None
