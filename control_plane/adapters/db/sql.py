"""SQL helpers shared by the services' queries."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when the row is new (the idempotency primitive)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing()
    # RETURNING rather than rowcount: drivers disagree on rowcount once RETURNING is implicit.
    stmt = stmt.returning(*table.primary_key.columns)
    return conn.execute(stmt).first() is not None
