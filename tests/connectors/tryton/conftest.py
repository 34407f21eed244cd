"""Fixtures: one real Tryton server (SQLite, from the cached database) for the session.

The first run on a machine initialises the database (trytond-admin + setup over RPC, ~50 s
here) and caches it; later runs copy the file and start ``trytond`` in ~2 s. Set
``Q2C_TRYTON_TIMINGS=<path>`` to have the server's timings and per-call latencies written there
at the end of the session (for BENCHMARKS.md).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from q2c.connectors.tryton.adapter import TrytonErp
from q2c.connectors.tryton.rpc import TrytonRpc
from q2c.connectors.tryton.server import TrytonServer


@pytest.fixture(scope="session")
def tryton_server() -> Iterator[TrytonServer]:
    server = TrytonServer()
    with server:
        pid = server.pid
        yield server
        target = os.environ.get("Q2C_TRYTON_TIMINGS")
        if target:
            report = {
                "backend": server.backend,
                "cache_key": server.key,
                "timings": server.timings.as_dict(),
                "calls": server.call_stats.summary(),
            }
            Path(target).write_text(json.dumps(report, indent=2))
    assert pid is not None and server.pid is None
    with pytest.raises(ProcessLookupError):  # trytond was stopped, by its pid
        os.kill(pid, 0)
    assert not server.workdir.exists()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30.0) as client:
        yield client


@pytest.fixture(scope="session")
def erp(tryton_server: TrytonServer) -> Iterator[TrytonErp]:
    """One signed-in adapter for the session: a Tryton login costs ~0.25 s (password hash)."""
    with httpx.Client(timeout=30.0) as client:
        yield tryton_server.erp(client)


@pytest.fixture
def fresh_erp(tryton_server: TrytonServer, http: httpx.Client) -> TrytonErp:
    """An adapter that has not signed in yet."""
    return tryton_server.erp(http)


@pytest.fixture(scope="session")
def admin(tryton_server: TrytonServer) -> Iterator[TrytonRpc]:
    """A separate JSON-RPC connection for looking at Tryton's own records in assertions."""
    with httpx.Client(timeout=30.0) as client:
        yield tryton_server.rpc(client)


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:10]
