"""Alembic migrations, one revision per change of the schema."""
