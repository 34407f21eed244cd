"""One conformance suite every connector passes (meltano-sdk style).

A connector's test module subclasses ``ConnectorConformance`` and provides a ``harness``
fixture returning an object that satisfies ``ConformanceHarness``: the adapter wired to its
emulator (in process), plus a few hooks to look inside the emulator.
"""

from __future__ import annotations

from typing import Protocol

import pytest

from q2c.connectors.sandbox import Fault, FaultPlan
from q2c.errors import AuthError, BusinessFixError, RateLimitedError, RetriableError


class ConformanceHarness(Protocol):
    faults: FaultPlan
    page_size: int

    def create(self, external_id: str) -> str:
        """Idempotent create through the adapter; returns the vendor's record id."""
        ...

    def stored_count(self, external_id: str) -> int:
        """How many records the emulator holds for this external id."""
        ...

    def seed(self, count: int) -> None:
        """Put ``count`` listable records straight into the emulator."""
        ...

    def list_all(self) -> list[str]:
        """List every seeded record through the adapter, following the vendor's pagination."""
        ...

    def read_call(self) -> None:
        """Any cheap authenticated call through the adapter."""
        ...

    def invalid_write(self) -> None:
        """A write the vendor rejects as invalid data (raises through the adapter)."""
        ...

    def expire_tokens(self) -> None:
        """Make the emulator forget every issued access token."""
        ...

    def token_requests(self) -> int:
        """How many times the adapter obtained a token from the emulator."""
        ...

    def with_bad_credentials(self) -> ConformanceHarness:
        """A harness whose adapter holds credentials the emulator refuses."""
        ...


class ConnectorConformance:
    """Subclass and provide a ``harness`` fixture."""

    def test_create_is_idempotent(self, harness: ConformanceHarness) -> None:
        first = harness.create("conf-001")
        second = harness.create("conf-001")
        assert first == second
        assert harness.stored_count("conf-001") == 1

    def test_create_after_timeout_does_not_duplicate(self, harness: ConformanceHarness) -> None:
        harness.faults.inject(Fault("timeout", delay=5.0, method="*", times=1))
        with pytest.raises(RetriableError):
            harness.create("conf-002")
        # the vendor applied the write; the retry must land on the same record
        harness.create("conf-002")
        assert harness.stored_count("conf-002") == 1

    def test_pagination_returns_every_record_once(self, harness: ConformanceHarness) -> None:
        total = harness.page_size * 2 + 3
        harness.seed(total)
        listed = harness.list_all()
        assert len(listed) >= total
        assert len(listed) == len(set(listed))

    def test_server_error_is_retriable(self, harness: ConformanceHarness) -> None:
        harness.faults.inject(Fault("server_error", status=503))
        with pytest.raises(RetriableError) as info:
            harness.read_call()
        assert not isinstance(info.value, RateLimitedError)
        harness.read_call()  # the fault was one-off

    def test_rate_limit_carries_retry_after(self, harness: ConformanceHarness) -> None:
        harness.faults.inject(Fault("rate_limit", retry_after=7))
        with pytest.raises(RateLimitedError) as info:
            harness.read_call()
        assert info.value.retry_after == pytest.approx(7)
        assert info.value.message

    def test_timeout_is_retriable(self, harness: ConformanceHarness) -> None:
        harness.faults.inject(Fault("timeout", delay=5.0))
        with pytest.raises(RetriableError):
            harness.read_call()

    def test_invalid_data_needs_business_fix(self, harness: ConformanceHarness) -> None:
        with pytest.raises(BusinessFixError) as info:
            harness.invalid_write()
        assert info.value.message
        assert info.value.detail

    def test_expired_token_is_refreshed(self, harness: ConformanceHarness) -> None:
        harness.read_call()
        before = harness.token_requests()
        harness.expire_tokens()
        harness.read_call()
        assert harness.token_requests() == before + 1

    def test_bad_credentials_are_fatal(self, harness: ConformanceHarness) -> None:
        with pytest.raises(AuthError):
            harness.with_bad_credentials().read_call()
