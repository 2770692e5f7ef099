"""The Alembic migrations build exactly the schema the models describe (SQLite and PostgreSQL), and
walk down and up again."""
from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from control_plane.adapters.db.engine import alembic_config, make_engine, migrate
from control_plane.adapters.db.models import metadata


def test_migrations_match_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate(engine)
        with engine.connect() as c:
            diff = compare_metadata(MigrationContext.configure(c), metadata)
        assert diff == []
        command.downgrade(alembic_config(engine), "0001")
        with engine.connect() as c:
            assert {"operator_actions", "edge_tables"} & set(engine.dialect.get_table_names(c)) == set()
        migrate(engine)
        with engine.connect() as c:
            assert compare_metadata(MigrationContext.configure(c), metadata) == []
    finally:
        engine.dispose()
