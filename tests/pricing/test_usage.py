from __future__ import annotations

from decimal import Decimal

import pytest

from q2c.canonical.models import BillingModel
from q2c.errors import ValidationError
from q2c.pricing.usage import Tier, TierTable, price_usage, rate_usage, tier_bands
from tests.pricing.builders import contract, time_entry, usage_event, usd

TIERS = (
    Tier(Decimal(1000), usd("0.10")),
    Tier(Decimal(5000), usd("0.08")),
    Tier(None, usd("0.05")),
)


def test_graduated_prices_each_band() -> None:
    table = TierTable(TIERS, "graduated")
    assert [b.quantity for b in tier_bands(Decimal(6000), table)] == [1000, 4000, 1000]
    assert price_usage(Decimal(6000), table) == usd("470.00")
    assert price_usage(Decimal(1000), table) == usd("100.00")
    assert price_usage(Decimal(0), table) == usd("0")


def test_volume_prices_everything_at_the_reached_tier() -> None:
    table = TierTable(TIERS, "volume")
    assert price_usage(Decimal(1000), table) == usd("100.00")
    assert price_usage(Decimal(1001), table) == usd("80.08")
    assert price_usage(Decimal(6000), table) == usd("300.00")


def test_rate_usage_aggregates_the_period() -> None:
    outcome = rate_usage(
        [usage_event("u-1", "700"), usage_event("u-2", "800")],
        table=TierTable(TIERS),
        contract=contract(model=BillingModel.USAGE),
    )
    assert [line.amount for line in outcome.lines] == [usd("100.00"), usd("40.00")]
    assert outcome.lines[0].billing_event_ids == ("u-1", "u-2")
    assert rate_usage([], table=TierTable(TIERS), contract=contract()).lines == ()
    with pytest.raises(ValidationError, match="not usage"):
        rate_usage([time_entry()], table=TierTable(TIERS), contract=contract())


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ((), "at least one tier"),
        ((Tier(Decimal(10), usd("1")),), "last tier must be open"),
        (
            (Tier(Decimal(10), usd("1")), Tier(Decimal(5), usd("1")), Tier(None, usd("1"))),
            "increase",
        ),
        ((Tier(None, usd("-1")),), "negative"),
    ],
)
def test_tier_tables_are_validated(tiers: tuple[Tier, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TierTable(tiers)
