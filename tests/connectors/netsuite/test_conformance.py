"""The shared connector conformance suite, run against the NetSuite adapter and its emulator."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from q2c.canonical.models import Customer
from q2c.connectors.netsuite.adapter import NetSuiteErp, connect_netsuite_m2m
from q2c.connectors.netsuite.sandbox import NetSuiteSandbox
from q2c.connectors.sandbox import FaultPlan
from tests.connectors.conformance import ConformanceHarness, ConnectorConformance
from tests.connectors.netsuite.conftest import REFERENCE

CLIENT_TIMEOUT = 0.5


@dataclasses.dataclass
class NetSuiteHarness:
    sandbox: NetSuiteSandbox
    erp: NetSuiteErp
    subsidiary: str
    stranger_key: bytes
    page_size: int = 4

    @property
    def faults(self) -> FaultPlan:
        return self.sandbox.faults

    def create(self, external_id: str) -> str:
        customer = Customer(
            id=external_id,
            legal_name=f"Conformance {external_id}",
            country="US",
            currency="USD",
            legal_entity="US01",
        )
        upserted = self.erp.upsert_customer(
            customer, external_id=external_id, subsidiary=self.subsidiary
        )
        return upserted.erp_id

    def stored_count(self, external_id: str) -> int:
        return self.sandbox.state.count("customer", external_id=external_id)

    def seed(self, count: int) -> None:
        for n in range(count):
            self.sandbox.state.insert(
                "customer", {"companyName": f"Seeded {n}", "subsidiary": {"id": self.subsidiary}}
            )

    def list_all(self) -> list[str]:
        return [row["id"] for row in self.erp.query("SELECT id FROM customer ORDER BY id")]

    def read_call(self) -> None:
        self.erp.find_customer(external_id="nobody", tax_id=None, legal_name=None)

    def invalid_write(self) -> None:
        customer = Customer(
            id="bad",
            legal_name="No Such Subsidiary Ltd",
            country="US",
            currency="USD",
            legal_entity="XX99",
        )
        self.erp.upsert_customer(customer, external_id="bad", subsidiary="999999")

    def expire_tokens(self) -> None:
        self.sandbox.expire_tokens()

    def token_requests(self) -> int:
        return self.sandbox.token_requests

    def with_bad_credentials(self) -> ConformanceHarness:
        erp = connect_netsuite_m2m(
            self.sandbox.client(CLIENT_TIMEOUT),
            account_id=self.sandbox.account_id,
            client_id=self.sandbox.m2m.client_id,
            certificate_id=self.sandbox.m2m.certificate_id,
            private_key_pem=self.stranger_key,
            base_url=self.sandbox.base_url,
        )
        return dataclasses.replace(self, erp=erp)


class TestNetSuiteConformance(ConnectorConformance):
    @pytest.fixture
    def harness(self, stranger_key: bytes) -> Iterator[NetSuiteHarness]:
        sandbox = NetSuiteSandbox()
        ids = sandbox.seed_reference_data(**REFERENCE)
        erp = sandbox.erp_m2m(timeout=CLIENT_TIMEOUT, page_size=NetSuiteHarness.page_size)
        harness = NetSuiteHarness(sandbox, erp, ids["subsidiaries"]["US01"], stranger_key)
        harness.read_call()  # sign in first, so injected faults hit the call under test
        yield harness
        sandbox.close()
