"""The shared connector conformance suite, run against the Kantata adapter and its emulator."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date

import pytest

from q2c.canonical.models import Project
from q2c.connectors.kantata.adapter import KantataPsa
from q2c.connectors.kantata.sandbox import KantataSandbox
from q2c.connectors.sandbox import FaultPlan
from tests.connectors.conformance import ConformanceHarness, ConnectorConformance
from tests.connectors.kantata.conftest import START

CLIENT_TIMEOUT = 0.5  # short, so the timeout cases finish fast


def project(external_id: str, name: str | None = None) -> Project:
    return Project(
        id=external_id,
        code=f"PRJ-{external_id}",
        name=f"Conformance {external_id}" if name is None else name,
        customer_id="CUST-CONF",
        legal_entity="US01",
        start_date=date(2025, 3, 1),
    )


@dataclasses.dataclass
class KantataHarness:
    """Projects upserted by external reference; listing = approved time, paged by 4."""

    sandbox: KantataSandbox
    psa: KantataPsa
    page_size: int = 4

    @property
    def faults(self) -> FaultPlan:
        return self.sandbox.faults

    def create(self, external_id: str) -> str:
        ref = self.psa.upsert_project(
            project(external_id), external_id=external_id, customer_name="Conformance Ltd"
        )
        return ref.erp_id

    def stored_count(self, external_id: str) -> int:
        return len(self.sandbox.workspaces_linked_to(external_id))

    def seed(self, count: int) -> None:
        workspace = self.sandbox.add_workspace("Seeded", require_time_approvals=False)
        for n in range(count):
            self.sandbox.add_time_entry(workspace, date_performed=date(2025, 3, 3), minutes=n + 1)

    def list_all(self) -> list[str]:
        return [r.system_id for r in self.psa.approved_delivery_since(None).records]

    def read_call(self) -> None:
        self.psa.current_user()

    def invalid_write(self) -> None:
        self.psa.upsert_project(project("bad", name=""), external_id="bad", customer_name="X")

    def expire_tokens(self) -> None:
        self.sandbox.expire_tokens()

    def token_requests(self) -> int:
        return self.sandbox.token_requests

    def with_bad_credentials(self) -> ConformanceHarness:
        psa = self.sandbox.psa(
            timeout=CLIENT_TIMEOUT, access_token="not-a-kantata-token", renewable=False
        )
        return dataclasses.replace(self, psa=psa)


class TestKantataConformance(ConnectorConformance):
    @pytest.fixture
    def harness(self) -> Iterator[KantataHarness]:
        sandbox = KantataSandbox(start=START)
        psa = sandbox.psa(timeout=CLIENT_TIMEOUT, page_size=KantataHarness.page_size)
        harness = KantataHarness(sandbox, psa)
        harness.read_call()
        yield harness
        sandbox.close()
