"""Alembic environment: runs against the engine handed in by control_plane.db.engine.migrate."""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from control_plane.adapters.db.models import metadata

config = context.config
engine = config.attributes.get("engine") or create_engine(config.get_main_option("sqlalchemy.url"))

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
