"""Fixtures: an emulated Kantata OX account with a client, a project and a consultant."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest

from q2c.connectors.kantata.sandbox import KantataSandbox

START = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class World:
    """Ids of the seeded account: a client, its project, a consultant and their role."""

    customer: str
    workspace: str
    role: str
    user: str
    task: str


@pytest.fixture
def box() -> Iterator[KantataSandbox]:
    sandbox = KantataSandbox(start=START)
    yield sandbox
    sandbox.close()


@pytest.fixture
def world(box: KantataSandbox) -> World:
    role = box.add_role("Senior Consultant")
    user = box.add_user("Ada Lovelace", role_id=role)
    customer = box.add_customer("Acme Corp", external_id="CUST-1")
    workspace = box.add_workspace("Acme ERP rollout", customer_id=customer, currency="USD")
    task = box.add_story(workspace, "Design", custom_fields={"Service Item": "CONSULTING-HOUR"})
    return World(customer, workspace, role, user, task)


@pytest.fixture
def api(box: KantataSandbox) -> httpx.Client:
    """A raw HTTP client holding the account's bearer token, for wire-level tests."""
    client = box.client(timeout=2.0)
    client.headers["Authorization"] = f"Bearer {box.access_token}"
    return client
