"""Edge appliance configuration: one YAML file, any value overridable by an EDGE_* variable.

Strict all the way down: an unknown key anywhere (`tabels:`) is refused with its path named,
so a typo cannot start an edge with defaults the operator did not mean. Environment overrides
go through pydantic-settings (`EDGE_DB_PATH`, `EDGE_HTTP__PORT`, `EDGE_NATS__PASSWORD`: nested
keys joined by `__`), and win over the file.
"""
from __future__ import annotations

import ipaddress
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from contract.bounds import MAX_MONEY
from contract.kinds import JOURNAL_KINDS
from edge_agent.domain import games
from edge_agent.domain import responsible as RG
from edge_agent.domain.tables import Limits, RuleSet, TableSpec
from edge_agent.evidence.config import VideoConfig
from edge_agent.media.config import MediaConfig


class ConfigError(ValueError):
    """A configuration file the edge refuses; the message names every offending key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LimitsConfig(Strict):
    # Journaled with the rules (table.rules): bounded like every money amount.
    min_bet: int = Field(100, gt=0, le=MAX_MONEY)
    max_bet_per_spot: int = Field(100_000, gt=0, le=MAX_MONEY)
    max_per_round: int = Field(500_000, gt=0, le=MAX_MONEY)


class TableConfig(Strict):
    table_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    game: str
    rules_version: str | None = None
    betting_window_s: float = Field(15.0, ge=0)
    reveal_s: float = Field(3.0, ge=0)
    requires_feed: bool = False
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    options: dict[str, float | int | str | bool] = Field(default_factory=dict)  # the game's own (play phase)

    @model_validator(mode="after")
    def _game(self) -> TableConfig:
        if self.game not in games.names():
            raise ValueError(f"game must be one of {games.names()}")
        return self

    def spec(self) -> TableSpec:
        version = self.rules_version or f"{self.game}/1"
        limits = Limits(**self.limits.model_dump())
        return TableSpec(self.table_id, RuleSet(version, self.game, limits), self.betting_window_s,
                         self.reveal_s, self.requires_feed, dict(self.options))


class HttpConfig(Strict):
    host: str = "127.0.0.1"
    port: int = 8100
    public_url: str | None = None
    max_body_bytes: int = 16_384
    cors_origins: list[str] = Field(default_factory=lambda: ["*"])


class NatsConfig(Strict):
    # None: sync disabled (stand-alone edge). A cluster is given by its seed list: a list of URLs
    # or one comma-separated string; the client tries them in order and learns the rest.
    url: str | list[str] | None = None
    user: str | None = None
    password: str | None = None
    heartbeat_s: float = 2.0
    # Create the JetStream streams when missing (single-box installs, the demo). In production
    # the operator creates them once, with the replication the region needs (docs/SYNC.md).
    ensure_streams: bool = False
    stream_replicas: int = Field(1, ge=1, le=5)  # R3 on a three-node cluster (used with ensure_streams)

    @property
    def servers(self) -> list[str]:
        """The seed list as URLs."""
        if self.url is None:
            return []
        urls = self.url if isinstance(self.url, list) else self.url.split(",")
        return [u.strip() for u in urls if u.strip()]


def _matches_a_kind(pattern: str) -> bool:
    return any(fnmatchcase(kind, pattern) for kind in JOURNAL_KINDS)


class ResidencyPolicy(Strict):
    """What may leave the jurisdiction: kinds (or "*") and fields removed per kind.

    Every pattern must match a kind the edge journals (contract.kinds): a policy naming kinds
    that do not exist would silently empty the entries it meant to let through."""

    allow_kinds: list[str] = Field(default_factory=lambda: ["*"])
    redact_fields: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("allow_kinds")
    @classmethod
    def _known_kinds(cls, patterns: list[str]) -> list[str]:
        unknown = [p for p in patterns if not _matches_a_kind(p)]
        if unknown:
            raise ValueError(f"kinds the edge never journals: {unknown} (known: {sorted(JOURNAL_KINDS)})")
        return patterns

    @field_validator("redact_fields")
    @classmethod
    def _known_redactions(cls, fields: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = [p for p in fields if not _matches_a_kind(p)]
        if unknown:
            raise ValueError(f"kinds the edge never journals: {unknown}")
        return fields


Period = Literal["24h", "7d", "30d"]


class ResponsibleGamblingConfig(Strict):
    """Jurisdiction defaults for players who chose nothing themselves (edge_agent.domain.responsible).

    A default deposit limit is where every new player starts: lowering it applies at once,
    raising or removing it waits the 24 h cooling-off like any other increase."""

    default_deposit_limits: dict[Period, int] = Field(default_factory=dict)
    reality_check_minutes: int | None = Field(None, ge=1, le=1440)

    @field_validator("default_deposit_limits")
    @classmethod
    def _positive(cls, limits: dict[Period, int]) -> dict[Period, int]:
        if any(v <= 0 for v in limits.values()):
            raise ValueError("deposit limits are positive integer minor units")
        return limits


class RegulatorAccessConfig(Strict):
    """Who may reach the regulator routes (`/regulator/...`): the token decides the jurisdiction,
    `allowed_cidrs` the networks (empty: any network). Checked on the peer address of the
    connection; put the edge's own reverse proxy, if any, on a network in the list."""

    regulator: str | None = None         # e.g. MGA, AGCO (shown in the regulator view)
    allowed_cidrs: list[str] = Field(default_factory=list)

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, cidrs: list[str]) -> list[str]:
        for c in cidrs:
            ipaddress.ip_network(c, strict=False)  # raises ValueError naming the bad entry
        return cidrs

    def allows(self, host: str | None) -> bool:
        if not self.allowed_cidrs:
            return True
        if host is None:
            return False
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in ipaddress.ip_network(c, strict=False) for c in self.allowed_cidrs)


class EdgeConfig(BaseSettings):
    model_config = SettingsConfigDict(extra="forbid", env_prefix="EDGE_", env_nested_delimiter="__",
                                      case_sensitive=False)
    edge_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    jurisdiction: str
    currency: str = "EUR"
    db_path: Path = Path("var/edge/journal.db")
    http: HttpConfig = Field(default_factory=HttpConfig)
    token_public_key_pem: str | None = None
    token_public_key_file: Path | None = None
    # Operator-wide secret shared by all edges (never by the cloud), so that a player has one
    # pseudonym everywhere and a global exclusion can name them.
    residency_key_hex: str | None = None
    residency_key_file: Path | None = None
    chain_length: int = Field(1000, ge=1, le=100_000)
    tables: list[TableConfig] = Field(default_factory=list)
    nats: NatsConfig = Field(default_factory=NatsConfig)
    residency: ResidencyPolicy = Field(default_factory=ResidencyPolicy)
    responsible_gambling: ResponsibleGamblingConfig = Field(default_factory=ResponsibleGamblingConfig)
    regulator_access: RegulatorAccessConfig = Field(default_factory=RegulatorAccessConfig)
    media: MediaConfig | None = None  # None: no video on this edge
    video: VideoConfig | None = None  # round video evidence and the vision check (needs media)
    # In-country Litestream replica of the journal, run as the edge's child: a directory /
    # file:// URL, or s3://bucket/path (credentials from LITESTREAM_ACCESS_KEY_ID /
    # LITESTREAM_SECRET_ACCESS_KEY). None: no replica, or Litestream runs as its own unit.
    replica: str | None = None
    # Where that child Litestream serves its own metrics ("127.0.0.1:9090"), read by the alerts.
    replica_metrics_addr: str | None = None
    checkpoint_interval_s: float = 30.0
    checkpoint_key_file: Path | None = None

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file (Kubernetes: the Secret over the ConfigMap).
        return env_settings, init_settings

    def token_public_key(self) -> str | None:
        if self.token_public_key_pem:
            return self.token_public_key_pem
        if self.token_public_key_file:
            return Path(self.token_public_key_file).read_text()
        return None

    def residency_key(self) -> bytes:
        if self.residency_key_hex:
            return bytes.fromhex(self.residency_key_hex)
        if self.residency_key_file:
            return bytes.fromhex(Path(self.residency_key_file).read_text().strip())
        raise ValueError("residency key missing: set residency_key_hex or residency_key_file")

    def table_specs(self) -> list[TableSpec]:
        return [t.spec() for t in self.tables]

    def rg_defaults(self) -> RG.Defaults:
        rg = self.responsible_gambling
        return RG.Defaults(deposit_limits=dict(rg.default_deposit_limits), reality_check_min=rg.reality_check_minutes)


PATH_KEYS = ("db_path", "token_public_key_file", "residency_key_file", "checkpoint_key_file")


def describe(err: ValidationError, source: str) -> str:
    """One line per problem, each naming the key by its dotted path."""
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"{source}: {key}: {msg}")
    return "\n".join(lines)


def load_config(path: str | Path) -> EdgeConfig:
    raw = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    try:
        cfg = EdgeConfig(**raw)
    except ValidationError as err:
        raise ConfigError(describe(err, str(path))) from None
    # Relative paths are relative to the file (from it or from the environment alike).
    base = Path(path).resolve().parent
    update = {k: base / v for k in PATH_KEYS if (v := getattr(cfg, k)) is not None and not Path(v).is_absolute()}
    return cfg.model_copy(update=update) if update else cfg
