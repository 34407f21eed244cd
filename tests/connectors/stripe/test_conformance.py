"""The shared connector conformance suite, run against the Stripe adapter and its emulator.

Stripe has no token exchange: the "token" is the secret key, which the connection reads from
its key source. Expiring tokens is rolling the key in the emulator (the old key answers 401
``api_key_expired``); a refresh is the adapter asking the key source again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from q2c.connectors.sandbox import FaultPlan
from q2c.connectors.stripe.adapter import StripeBilling
from q2c.connectors.stripe.sandbox import StripeSandbox
from tests.connectors.conformance import ConformanceHarness, ConnectorConformance
from tests.connectors.stripe.conftest import CLIENT_TIMEOUT
from tests.connectors.stripe.helpers import customer


@dataclasses.dataclass
class KeySource:
    """Reads the current secret key (as a secret store would) and counts the reads."""

    sandbox: StripeSandbox
    reads: int = 0

    def __call__(self) -> str:
        self.reads += 1
        return self.sandbox.api_key


@dataclasses.dataclass
class StripeHarness:
    sandbox: StripeSandbox
    billing: StripeBilling
    source: KeySource
    customer_id: str
    page_size: int = 4

    @property
    def faults(self) -> FaultPlan:
        return self.sandbox.faults

    def create(self, external_id: str) -> str:
        ref = self.billing.upsert_customer(customer(external_id), external_id=external_id)
        return ref.billing_id

    def stored_count(self, external_id: str) -> int:
        return self.sandbox.count("customer", q2c_id=external_id)

    def seed(self, count: int) -> None:
        self.sandbox.seed_pending_items(self.customer_id, [1000 + n for n in range(count)])

    def list_all(self) -> list[str]:
        return [str(i["id"]) for i in self.billing.pending_invoice_items(self.customer_id)]

    def read_call(self) -> None:
        self.billing.tax_rates(refresh=True)

    def invalid_write(self) -> None:
        # Stripe refuses phone numbers over 20 characters (parameter 'phone')
        bad = customer("conf-invalid", phone="+1 555 0100 0100 0100 0100 ext 9")
        self.billing.upsert_customer(bad, external_id="conf-invalid")

    def expire_tokens(self) -> None:
        self.sandbox.roll_api_key()

    def token_requests(self) -> int:
        return self.source.reads

    def with_bad_credentials(self) -> ConformanceHarness:
        billing = self.sandbox.billing(timeout=CLIENT_TIMEOUT, api_key="sk_test_wrong_key")
        return dataclasses.replace(self, billing=billing)


class TestStripeConformance(ConnectorConformance):
    @pytest.fixture
    def harness(self) -> Iterator[StripeHarness]:
        sandbox = StripeSandbox(seed=3)
        source = KeySource(sandbox)
        billing = sandbox.billing(
            timeout=CLIENT_TIMEOUT,
            api_key=source(),
            api_key_source=source,
            page_size=StripeHarness.page_size,
        )
        harness = StripeHarness(sandbox, billing, source, sandbox.seed_customer("Paged"))
        harness.read_call()
        yield harness
        sandbox.close()
