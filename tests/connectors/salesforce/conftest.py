"""Fixtures: an emulated org per test, raw authenticated access to it, and the adapter."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from q2c.connectors.salesforce import SalesforceCrm, SalesforceSandbox, connect_salesforce
from tests.connectors.salesforce.helpers import OrgApi


@pytest.fixture
def sandbox() -> Iterator[SalesforceSandbox]:
    yield SalesforceSandbox(page_size=5, min_batch_size=2)


@pytest.fixture
def client(sandbox: SalesforceSandbox) -> Iterator[httpx.Client]:
    with sandbox.client(timeout=2.0) as http:
        yield http


@pytest.fixture
def org(sandbox: SalesforceSandbox, client: httpx.Client) -> OrgApi:
    return OrgApi(sandbox, client)


@pytest.fixture
def crm(sandbox: SalesforceSandbox, client: httpx.Client) -> SalesforceCrm:
    return connect_salesforce(
        client,
        login_url=sandbox.login_url,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
    )
