"""Alembic environment: runs on the connection q2c hands over (``q2c.store.db.upgrade``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from q2c.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is None:
    # `alembic revision --autogenerate` from the command line, against a scratch database.
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.begin() as scratch:
        context.configure(connection=scratch, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
