"""Console fixtures: a hub on in-memory CRM/ERP (both store backends), the app with the
console mounted, and browsers-by-TestClient signed in as an operator or a reader."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from q2c.api.app import create_app
from q2c.bootstrap import Hub, bootstrap
from q2c.connectors.memory import InMemoryCrm, InMemoryErp
from q2c.connectors.registry import Connections
from q2c.runtime.exception_queue import ExceptionFilter, ParkedException
from tests.api.conftest import SECRETS, api_config
from tests.flows.helpers import approved_event, proposal

OPS_SECRET = SECRETS["Q2C_TEST_OPS_SECRET"]
READER_SECRET = SECRETS["Q2C_TEST_READER_SECRET"]


def build_hub(db: Any, clock: Any) -> Hub:
    connections = Connections()
    crm, erp = InMemoryCrm(system="salesforce"), InMemoryErp(system="netsuite")
    connections.add("salesforce", ["crm"], crm)
    connections.add("netsuite", ["erp"], erp)
    hub = bootstrap(api_config(), db=db, clock=clock, connections=connections,
                    worker_id="console-test")
    hub.extras.update(crm=crm, erp=erp)
    return hub


def deal(hub: Hub, opportunity: str, department: str = "Consulting-US") -> str:
    """Deliver one approved proposal and run it; returns its transaction id."""
    [receipt] = hub.inbox.accept([approved_event(proposal(opportunity, department=department))])
    hub.engine.run_due()
    assert receipt.transaction_id
    return receipt.transaction_id


def parked(hub: Hub, transaction_id: str) -> ParkedException:
    """The transaction's latest exception, whatever its status."""
    found = hub.engine.exception_queue.list(
        ExceptionFilter(status=None, transaction_id=transaction_id))
    return found[-1]


@pytest.fixture
def hub(db, clock) -> Iterator[Hub]:
    hub = build_hub(db, clock)
    yield hub
    hub.close()


@pytest.fixture
def app(hub) -> FastAPI:
    return create_app(hub)


def sign_in(client: TestClient, client_id: str, secret: str, name: str = "ada") -> TestClient:
    page = client.get("/console/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert token is not None
    response = client.post(
        "/console/login",
        data={"login_token": token.group(1), "client_id": client_id, "client_secret": secret,
              "name": name, "next": "/console/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


def csrf_of(client: TestClient) -> str:
    page = client.get("/console/exceptions")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


@pytest.fixture
def operator(app) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield sign_in(client, "ops", OPS_SECRET)


@pytest.fixture
def reader(app) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield sign_in(client, "reader", READER_SECRET, name="rita")


@pytest.fixture
def anonymous(app) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client
