"""Fixtures: an emulated NetSuite account with reference data, and clients wired to it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from q2c.connectors.netsuite.auth import NetSuiteTBAAuth
from q2c.connectors.netsuite.sandbox import NetSuiteSandbox, generate_rsa_key_pem

REFERENCE = {
    "subsidiaries": {"US01": "Acme Consulting US Inc.", "DE01": "Acme Consulting GmbH"},
    "departments": ["Consulting", "Advisory"],
    "currencies": ["USD", "EUR"],
    "items": ["CONSULTING-HOUR", "PM-HOUR", "TRAVEL"],
}


@pytest.fixture(scope="session")
def stranger_key() -> bytes:
    """A private key NetSuite has never seen (no certificate mapped)."""
    return generate_rsa_key_pem(2048)


@pytest.fixture
def sandbox() -> Iterator[NetSuiteSandbox]:
    box = NetSuiteSandbox()
    yield box
    box.close()


@pytest.fixture
def ids(sandbox: NetSuiteSandbox) -> dict[str, dict[str, str]]:
    return sandbox.seed_reference_data(**REFERENCE)


@pytest.fixture
def api(sandbox: NetSuiteSandbox, ids: dict[str, dict[str, str]]) -> httpx.Client:
    """A raw HTTP client signed with TBA (no token traffic), for wire-level tests."""
    client = sandbox.client(timeout=2.0)
    client.auth = NetSuiteTBAAuth(
        account_id=sandbox.account_id,
        consumer_key=sandbox.tba.consumer_key,
        consumer_secret=sandbox.tba.consumer_secret,
        token_id=sandbox.tba.token_id,
        token_secret=sandbox.tba.token_secret,
    )
    return client


@pytest.fixture
def ledger(sandbox: NetSuiteSandbox, ids: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The ledger reference data on top of ``ids``: ``sandbox.reference`` after seeding."""
    sandbox.seed_ledger_reference_data()
    return sandbox.reference
