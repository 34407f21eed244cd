"""Shared fixtures: a migrated store on SQLite and on PostgreSQL, and a controllable clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from q2c.store.db import create_store_engine, upgrade

PG_URL = os.environ.get("Q2C_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


class Clock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _pg_engine_in_fresh_schema() -> tuple[sa.Engine, str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_store_engine(PG_URL)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    admin.dispose()
    engine = create_store_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    return engine, schema


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A migrated store, once on each backend: the same tests must pass on both."""
    if request.param == "sqlite":
        engine = create_store_engine(f"sqlite:///{tmp_path / 'q2c.db'}")
        upgrade(engine)
        yield engine
        engine.dispose()
        return
    engine, schema = _pg_engine_in_fresh_schema()
    upgrade(engine)
    yield engine
    engine.dispose()
    admin = create_store_engine(PG_URL)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'q2c.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()
