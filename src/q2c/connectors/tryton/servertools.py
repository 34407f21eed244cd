"""The plumbing under ``TrytonServer``: cache key and place, file lock, SQLite snapshots,
PostgreSQL administration, and the trytond process (free port, stop by pid, log tail)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from q2c.connectors.tryton.provision import PROVISION_VERSION
from q2c.errors import ConfigError
from q2c.serving import free_port

__all__ = [
    "INIT_VERSION",
    "Backend",
    "PostgresCluster",
    "cache_dir",
    "cache_key",
    "free_port",
    "locked",
    "log_tail",
    "relaxed_uri",
    "sqlite_snapshot",
    "terminate",
    "tryton_versions",
]

Backend = Literal["sqlite", "postgresql"]
INIT_VERSION = 1  # bump when the way databases are initialised changes


def cache_dir() -> Path:
    """Where initialised databases are kept between runs."""
    explicit = os.environ.get("Q2C_TRYTON_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "q2c" / "tryton"


def tryton_versions() -> dict[str, str]:
    """Installed trytond distributions and their versions (part of the cache key)."""
    versions: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("-", "_")
        if name == "trytond" or name.startswith("trytond_"):
            versions[name] = dist.version
    if "trytond" not in versions:
        raise ConfigError(
            "Tryton (trytond) is not installed in this Python environment",
            suggested_fix="Install q2c with the 'tryton' extra: pip install 'q2c[tryton]'.",
            system="tryton",
        )
    return dict(sorted(versions.items()))


def cache_key(backend: Backend, modules: Sequence[str], year: int) -> str:
    """``<backend>-<16 hex>`` over the versions, modules, setup/init versions and the year."""
    material = {
        "backend": backend,
        "modules": sorted(modules),
        "provision": PROVISION_VERSION,
        "init": INIT_VERSION,
        "year": year,
        "versions": tryton_versions(),
    }
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    return f"{backend}-{digest[:16]}"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` across processes (parallel test runs build once)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sqlite_snapshot(source: Path, target: Path) -> None:
    """A self-contained copy of a SQLite database: trytond runs SQLite in WAL mode, so the
    file alone can miss committed pages still in ``-wal``; the backup API reads through it."""
    target.unlink(missing_ok=True)
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)


def relaxed_uri(uri: str) -> str:
    """A throw-away test database does not need each commit flushed to disk: ask PostgreSQL
    for ``synchronous_commit=off`` on trytond's own sessions (libpq ``options``), unless the
    URI already sets parameters. Crash safety is unchanged; only the last commits could be
    lost."""
    if "?" in uri:
        return uri
    return uri + "?options=-c%20synchronous_commit%3Doff"


class PostgresCluster:
    """Just enough administration of a PostgreSQL server: create, copy and drop databases."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def conninfo(self, dbname: str = "postgres") -> dict[str, Any]:
        parts = urlsplit(self.uri)
        info: dict[str, Any] = {"dbname": dbname, "autocommit": True}
        for key, value in (
            ("host", parts.hostname),
            ("port", parts.port),
            ("user", parts.username),
            ("password", parts.password),
        ):
            if value:
                info[key] = value
        return info

    def execute(self, sql: str) -> None:
        import psycopg  # only the PostgreSQL variant needs it

        with psycopg.connect(**self.conninfo()) as conn:
            conn.execute(sql.encode())

    def exists(self, name: str) -> bool:
        import psycopg

        with psycopg.connect(**self.conninfo()) as conn:
            row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return row is not None

    def create(self, name: str, *, template: str = "template0") -> None:
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" ENCODING \'UTF8\'')

    def drop(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def terminate(process: subprocess.Popen[bytes] | None) -> None:
    """Stop one trytond process we started, by its pid: TERM, then KILL after 5 s."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def log_tail(log: Path, size: int = 2000) -> str:
    try:
        return log.read_bytes()[-size:].decode("utf-8", "replace")
    except OSError:
        return ""
