"""The shared connector conformance suite, run against the real Tryton server.

Tryton is a real process, so faults are injected on the client side (``FaultyTransport``)
from the same ``FaultPlan`` the emulators use. "Tokens" are Tryton sessions: expiring one is a
server-side logout, and a refresh is a new ``common.db.login``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest

from q2c.canonical.models import Customer
from q2c.connectors.sandbox import FaultPlan
from q2c.connectors.tryton.adapter import TrytonErp, connect_tryton
from q2c.connectors.tryton.rpc import TrytonRpc
from q2c.connectors.tryton.server import TrytonServer
from tests.connectors.conformance import ConformanceHarness, ConnectorConformance
from tests.connectors.tryton.faults import FaultyTransport

pytestmark = pytest.mark.integration
CLIENT_TIMEOUT = 10.0


@dataclasses.dataclass
class TrytonHarness:
    server: TrytonServer
    erp: TrytonErp
    admin: TrytonRpc
    faults: FaultPlan
    run: str
    page_size: int = 4

    def create(self, external_id: str) -> str:
        customer = Customer(
            id=external_id,
            legal_name=f"Conformance {self.run} {external_id}",
            country="US",
            currency="USD",
            legal_entity="US01",
        )
        key = f"{self.run}-{external_id}"
        return self.erp.upsert_customer(customer, external_id=key, subsidiary="").erp_id

    def stored_count(self, external_id: str) -> int:
        key = f"{self.run}-{external_id}"
        return self.admin.search_count("party.identifier", [["code", "=", key]])

    def seed(self, count: int) -> None:
        self.admin.create(
            "party.party", [{"name": f"Seeded {self.run} {n:03d}"} for n in range(count)]
        )

    def list_all(self) -> list[str]:
        rows = self.erp.rpc.iter_search_read(
            "party.party",
            [["name", "like", f"Seeded {self.run} %"]],
            ["name"],
            page_size=self.page_size,
        )
        return [str(row["id"]) for row in rows]

    def read_call(self) -> None:
        self.erp.find_customer(external_id="nobody", tax_id=None, legal_name=None)

    def invalid_write(self) -> None:
        customer = Customer(
            id="bad",
            legal_name="Bad VAT GmbH",
            country="DE",
            currency="EUR",
            legal_entity="DE01",
            tax_id="DE000000000",
        )
        self.erp.upsert_customer(customer, external_id=f"{self.run}-bad", subsidiary="")

    def expire_tokens(self) -> None:
        self.erp.rpc.call("common.db.logout", [])

    def token_requests(self) -> int:
        return self.erp.rpc.auth.logins

    def with_bad_credentials(self) -> ConformanceHarness:
        erp = connect_tryton(
            httpx.Client(timeout=CLIENT_TIMEOUT),
            base_url=self.server.base_url,
            database=self.server.database,
            username="conformance-stranger",
            password="wrong",
        )
        return dataclasses.replace(self, erp=erp)


class TestTrytonConformance(ConnectorConformance):
    @pytest.fixture
    def harness(
        self, tryton_server: TrytonServer, admin: TrytonRpc, uid: str
    ) -> Iterator[TrytonHarness]:
        plan = FaultPlan()
        client = httpx.Client(timeout=CLIENT_TIMEOUT, transport=FaultyTransport(plan))
        erp = tryton_server.erp(client)
        harness = TrytonHarness(tryton_server, erp, admin, plan, uid)
        harness.read_call()  # sign in first, so injected faults hit the call under test
        yield harness
        client.close()
