"""Fixtures: an emulated Stripe account on a hand-moved clock, and clients wired to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from q2c.connectors.stripe.adapter import StripeBilling
from q2c.connectors.stripe.sandbox import StripeSandbox
from tests.connectors.stripe.helpers import Clock, Wire

CLIENT_TIMEOUT = 0.5  # short, so the timeout cases finish fast


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sandbox(clock: Clock) -> Iterator[StripeSandbox]:
    box = StripeSandbox(clock=clock, seed=7)
    yield box
    box.close()


@pytest.fixture
def wire(sandbox: StripeSandbox) -> Wire:
    return Wire(sandbox.client(timeout=2.0), sandbox.api_key)


@pytest.fixture
def billing(sandbox: StripeSandbox) -> StripeBilling:
    """The adapter, with small pages so pagination is exercised."""
    return sandbox.billing(timeout=CLIENT_TIMEOUT, page_size=3, default_legal_entity="US01")
