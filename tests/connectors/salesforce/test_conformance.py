"""The shared connector conformance suite, run against the Salesforce adapter and emulator."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from q2c.connectors.salesforce import SalesforceCrm, SalesforceSandbox, connect_salesforce
from q2c.connectors.sandbox import FaultPlan
from tests.connectors.conformance import ConnectorConformance

CLIENT_TIMEOUT = 0.5  # short, so the timeout cases finish fast


class SalesforceHarness:
    """The adapter wired to its emulator; Accounts upserted by Q2C_External_Id__c."""

    def __init__(self, sandbox: SalesforceSandbox, *, client_secret: str | None = None) -> None:
        self.sandbox = sandbox
        self.faults: FaultPlan = sandbox.faults
        self.page_size = sandbox.api.page_size
        self.clients: list[httpx.Client] = [sandbox.client(timeout=CLIENT_TIMEOUT)]
        self.crm: SalesforceCrm = connect_salesforce(
            self.clients[0],
            login_url=sandbox.login_url,
            client_id=sandbox.client_id,
            client_secret=client_secret or sandbox.client_secret,
        )
        self.children: list[SalesforceHarness] = []

    def create(self, external_id: str) -> str:
        return self.crm.upsert(
            "Account", "Q2C_External_Id__c", external_id, {"Name": f"Conformance {external_id}"}
        ).id

    def stored_count(self, external_id: str) -> int:
        return len(self.sandbox.state.find("Account", "Q2C_External_Id__c", external_id))

    def seed(self, count: int) -> None:
        for i in range(count):
            self.sandbox.state.insert(
                "Product2", {"Name": f"Seed {i}", "ProductCode": f"SEED-{i:04d}"}
            )

    def list_all(self) -> list[str]:
        rows = self.crm.query_all("SELECT Id FROM Product2 WHERE ProductCode LIKE 'SEED-%'")
        return [row["Id"] for row in rows]

    def read_call(self) -> None:
        self.crm.query_all("SELECT Id FROM User LIMIT 1")

    def invalid_write(self) -> None:
        self.crm.upsert("Account", "Q2C_External_Id__c", "conf-invalid", {"Name": "x" * 256})

    def expire_tokens(self) -> None:
        self.sandbox.expire_tokens()

    def token_requests(self) -> int:
        return self.sandbox.tokens_issued(self.sandbox.client_id)

    def with_bad_credentials(self) -> SalesforceHarness:
        child = SalesforceHarness(self.sandbox, client_secret="not-the-secret")
        self.children.append(child)
        return child

    def close(self) -> None:
        for child in self.children:
            child.close()
        for http in self.clients:
            http.close()


class TestSalesforceConformance(ConnectorConformance):
    @pytest.fixture
    def harness(self) -> Iterator[SalesforceHarness]:
        sandbox = SalesforceSandbox(page_size=5, min_batch_size=2)
        harness = SalesforceHarness(sandbox)
        harness.read_call()  # log in first, so injected faults hit the calls under test
        yield harness
        harness.close()
