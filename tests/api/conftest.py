"""API fixtures: a hub whose q2c.yaml has an ``api`` section with one client per scope, a
TestClient that carries an admin token, and ``bearer()`` for a token of any client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from q2c.api.app import create_app
from q2c.bootstrap import bootstrap
from q2c.config import DEMO_CONFIG_YAML, Q2CConfig, parse_config
from q2c.connectors.memory import InMemoryCrm, InMemoryErp
from q2c.connectors.registry import Connections

SECRETS = {
    "Q2C_TEST_SIGNING_KEY": "signing-key-for-tests-0123456789abcdef",
    "Q2C_TEST_ADMIN_SECRET": "admin-secret-0123456789",
    "Q2C_TEST_OPS_SECRET": "ops-secret-0123456789",
    "Q2C_TEST_READER_SECRET": "reader-secret-0123456789",
    "Q2C_TEST_SENDER_SECRET": "sender-secret-0123456789",
    "Q2C_TEST_SLOW_SECRET": "slow-secret-0123456789",
    "Q2C_TEST_HOOK_SECRET": "hook-secret-0123456789",
    "Q2C_TEST_KANTATA_SECRET": "kantata-relay-secret-0123456789",
}
_GENEROUS = {"requests_per_minute": 100_000, "burst": 10_000}


def api_section(**overrides: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "token": {"key_env": "Q2C_TEST_SIGNING_KEY", "ttl_seconds": 300},
        "clients": [
            {"id": "admin", "secret_env": "Q2C_TEST_ADMIN_SECRET", "scopes": ["admin"],
             "rate_limit": _GENEROUS},
            {"id": "ops", "secret_env": "Q2C_TEST_OPS_SECRET", "scopes": ["operate"],
             "rate_limit": _GENEROUS},
            {"id": "reader", "secret_env": "Q2C_TEST_READER_SECRET", "scopes": ["read"],
             "rate_limit": _GENEROUS},
            {"id": "sender", "secret_env": "Q2C_TEST_SENDER_SECRET", "scopes": ["ingest"],
             "rate_limit": _GENEROUS},
            {"id": "slow", "secret_env": "Q2C_TEST_SLOW_SECRET", "scopes": ["read"],
             "rate_limit": {"requests_per_minute": 1, "burst": 2}},
        ],
        "webhooks": {"acme": {"kind": "hmac", "secret_env": "Q2C_TEST_HOOK_SECRET",
                              "tolerance_seconds": 300}},
    }
    section.update(overrides)
    return section


def api_config(api: dict[str, Any] | None = None, systems: dict[str, Any] | None = None,
               env: dict[str, str] | None = None) -> Q2CConfig:
    data = yaml.safe_load(DEMO_CONFIG_YAML)
    data["api"] = api_section() if api is None else api
    data["systems"].update(systems or {})
    return parse_config(data, env={**SECRETS, **(env or {})})


def bearer(app: FastAPI, client_id: str, scopes: list[str] | None = None) -> dict[str, str]:
    """Headers with a fresh token of ``client_id`` (all its scopes unless narrowed)."""
    token = app.state.auth.issue(client_id, scopes).access_token
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def hub(db, clock):
    connections = Connections()
    crm, erp = InMemoryCrm(system="salesforce"), InMemoryErp(system="netsuite")
    connections.add("salesforce", ["crm"], crm)
    connections.add("netsuite", ["erp"], erp)
    hub = bootstrap(api_config(), db=db, clock=clock, connections=connections,
                    worker_id="api-test")
    hub.extras.update(crm=crm, erp=erp)
    yield hub
    hub.close()


@pytest.fixture
def app(hub) -> FastAPI:
    return create_app(hub, max_body_bytes=64 * 1024)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    """Calls as the admin client."""
    with TestClient(app, headers=bearer(app, "admin")) as test_client:
        yield test_client


@pytest.fixture
def anonymous(app) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client
