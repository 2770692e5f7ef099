"""Edge appliance configuration: one YAML file, values overridable by EDGE_* environment variables."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contract.bounds import MAX_MONEY
from edge_agent.domain import games
from edge_agent.domain.tables import Limits, RuleSet, TableSpec


class LimitsConfig(BaseModel):
    # Journaled with the rules (table.rules): bounded like every money amount.
    min_bet: int = Field(100, gt=0, le=MAX_MONEY)
    max_bet_per_spot: int = Field(100_000, gt=0, le=MAX_MONEY)
    max_per_round: int = Field(500_000, gt=0, le=MAX_MONEY)


class TableConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
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


class HttpConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8100
    public_url: str | None = None
    max_body_bytes: int = 16_384
    cors_origins: list[str] = Field(default_factory=lambda: ["*"])


class NatsConfig(BaseModel):
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


class ResidencyPolicy(BaseModel):
    """What may leave the jurisdiction: kinds (or "*") and fields removed per kind."""

    allow_kinds: list[str] = Field(default_factory=lambda: ["*"])
    redact_fields: dict[str, list[str]] = Field(default_factory=dict)


class EdgeConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
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
    media: Any | None = None  # edge_agent.media.config.MediaConfig when video is on
    # In-country Litestream replica of the journal: a directory / file:// URL, or s3://bucket/path
    # (credentials from LITESTREAM_ACCESS_KEY_ID / LITESTREAM_SECRET_ACCESS_KEY). None: no replica.
    replica: str | None = None
    checkpoint_interval_s: float = 30.0
    checkpoint_key_file: Path | None = None

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


def load_config(path: str | Path) -> EdgeConfig:
    raw = yaml.safe_load(Path(path).read_text()) or {}
    base = Path(path).resolve().parent
    # EDGE_DB_PATH, EDGE_HTTP__PORT ... (Kubernetes: config from env or mounted files)
    for key, value in os.environ.items():
        if key.startswith("EDGE_") and key != "EDGE_CONFIG":
            parts = key[5:].lower().split("__")
            node = raw
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = yaml.safe_load(value)
    for k in ("db_path", "token_public_key_file", "residency_key_file", "checkpoint_key_file"):
        if raw.get(k) and not Path(raw[k]).is_absolute():
            raw[k] = str(base / raw[k])
    cfg = EdgeConfig.model_validate(raw)
    if cfg.media is not None and not hasattr(cfg.media, "model_dump"):
        from edge_agent.media.config import MediaConfig

        cfg.media = MediaConfig.model_validate(cfg.media)
    return cfg
