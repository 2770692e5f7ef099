"""Storage: SQLAlchemy Core tables, engine creation and Alembic migrations shipped in the package."""
