"""Tables (SQLAlchemy Core). The schema itself is created by the Alembic migrations."""
from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Integer, MetaData, String, Table, Text, UniqueConstraint

metadata = MetaData()

edges = Table(
    "edges", metadata,
    Column("id", String(64), primary_key=True),
    Column("jurisdiction", String(16), nullable=False, index=True),
    Column("public_url", String(512), nullable=False, default=""),
    Column("checkpoint_public_key", Text, nullable=True),
    Column("registered_ts", BigInteger, nullable=False),
    Column("last_heartbeat_ts", BigInteger, nullable=True),
    Column("healthy", Boolean, nullable=False, default=False),
    Column("viewers", Integer, nullable=False, default=0),
    Column("viewer_capacity", Integer, nullable=False, default=0),
    Column("reported_head_seq", BigInteger, nullable=False, default=0),
)

# Per-edge sync state: the last contiguous (seq, hash) held and the highest seq seen.
edge_sync = Table(
    "edge_sync", metadata,
    Column("edge_id", String(64), primary_key=True),
    Column("head_seq", BigInteger, nullable=False, default=0),
    Column("head_hash", String(64), nullable=False),
    Column("max_seq", BigInteger, nullable=False, default=0),
    Column("applied", BigInteger, nullable=False, default=0),
)

# Every journal entry received, applied once: the primary key is the exactly-once guard.
entries = Table(
    "entries", metadata,
    Column("edge_id", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("ts", BigInteger, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("prev", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("received_ts", BigInteger, nullable=False),
)

audit_flags = Table(
    "audit_flags", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("edge_id", String(64), nullable=False, index=True),
    Column("kind", String(48), nullable=False),
    Column("seq", BigInteger, nullable=True),
    Column("detail", Text, nullable=False, default=""),
    Column("ts", BigInteger, nullable=False),
    UniqueConstraint("edge_id", "kind", "seq", name="uq_audit_flag"),
)

kyc = Table(
    "kyc", metadata,
    Column("jurisdiction", String(16), primary_key=True),
    Column("player", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("reference", String(256), nullable=False, default=""),
    Column("vendor_ref", String(128), nullable=False, default=""),
    Column("edge_id", String(64), nullable=False),
    Column("version", Integer, nullable=False, default=0),
    Column("submitted", Boolean, nullable=False, default=False),
    Column("updated_ts", BigInteger, nullable=False),
)

deposits = Table(
    "deposits", metadata,
    Column("deposit_id", String(128), primary_key=True),
    Column("edge_id", String(64), nullable=False),
    Column("jurisdiction", String(16), nullable=False),
    Column("player", String(64), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(8), nullable=False),
    Column("method", String(64), nullable=False, default=""),
    # requested -> confirmed (credit command sent) -> credited | refused -> refunded ; or failed
    Column("status", String(16), nullable=False),
    Column("psp_ref", String(128), nullable=False, default=""),
    Column("reason", String(256), nullable=False, default=""),
    Column("created_ts", BigInteger, nullable=False),
    Column("updated_ts", BigInteger, nullable=False),
)

withdrawals = Table(
    "withdrawals", metadata,
    Column("withdrawal_id", String(128), primary_key=True),
    Column("edge_id", String(64), nullable=False),
    Column("jurisdiction", String(16), nullable=False),
    Column("player", String(64), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(8), nullable=False),
    Column("rail", String(16), nullable=False),
    # requested -> review | approved | refused ; approved -> paying -> paid ; edge -> settled/released
    Column("status", String(16), nullable=False),
    Column("reason", String(256), nullable=False, default=""),
    Column("rail_ref", String(128), nullable=False, default=""),
    Column("created_ts", BigInteger, nullable=False),
    Column("updated_ts", BigInteger, nullable=False),
)

aml_flags = Table(
    "aml_flags", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("jurisdiction", String(16), nullable=False),
    Column("player", String(64), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("ref_id", String(128), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("ts", BigInteger, nullable=False),
    UniqueConstraint("kind", "ref_id", name="uq_aml_flag"),
)

# Outbox of commands to edges; the id is deterministic from the business key, so re-deciding
# the same thing never makes a second command.
commands = Table(
    "commands", metadata,
    Column("id", String(200), primary_key=True),
    Column("edge_id", String(64), nullable=False, index=True),
    Column("type", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_ts", BigInteger, nullable=False),
    Column("published_ts", BigInteger, nullable=True),
)

checkpoints = Table(
    "checkpoints", metadata,
    Column("edge_id", String(64), primary_key=True),
    Column("size", BigInteger, primary_key=True),
    Column("root", String(64), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("sig", String(128), nullable=False),
    Column("prev_size", BigInteger, nullable=True),
    Column("status", String(24), nullable=False),  # ok | inconsistent
    Column("entries_check", String(16), nullable=True),  # None (not yet held) | ok | mismatch
    Column("received_ts", BigInteger, nullable=False),
)

# Every operator action taken through the API (review decisions, KYC decisions, table commands):
# who, in which jurisdiction, on what, why. Written in the same transaction as the action.
operator_actions = Table(
    "operator_actions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", BigInteger, nullable=False),
    Column("operator", String(128), nullable=False),
    Column("jurisdiction", String(16), nullable=False, index=True),
    Column("action", String(32), nullable=False),
    Column("target", String(200), nullable=False),
    Column("reason", String(500), nullable=False, default=""),
    Column("detail", Text, nullable=False, default="{}"),
)

# Per edge and table, what the edge's journal says of it (a projection kept by the journal applier
# from table.rules / table.status / table.feed / round.* entries): the back office's table view.
edge_tables = Table(
    "edge_tables", metadata,
    Column("edge_id", String(64), primary_key=True),
    Column("table_id", String(64), primary_key=True),
    Column("game", String(32), nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("status_reason", String(256), nullable=False, default=""),
    Column("feed_live", Boolean, nullable=True),  # None: never reported
    Column("round_chain", String(64), nullable=True),  # the round in progress (None: between rounds)
    Column("round_n", Integer, nullable=True),
    Column("last_void_n", Integer, nullable=True),
    Column("last_void_reason", String(256), nullable=False, default=""),
    Column("updated_seq", BigInteger, nullable=False, default=0),
    Column("updated_ts", BigInteger, nullable=False),
)

# Every operator and admin token minted (who, for what, by whom): the bootstrap secret mints
# only while this holds none, and it is the record of who was granted platform rights.
token_grants = Table(
    "token_grants", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sub", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("jurisdiction", String(16), nullable=False),
    Column("issuer", String(160), nullable=False),  # "bootstrap" or "<role>:<sub>"
    Column("issued_ts", BigInteger, nullable=False),
    Column("expires_ts", BigInteger, nullable=False),
)
