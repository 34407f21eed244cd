from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from q2c.canonical.models import ExchangeRate
from q2c.canonical.money import Money
from q2c.errors import BusinessFixError, ValidationError
from q2c.pricing.fx import ExchangeRateTable


def rate(base: str, quote: str, value: str, on: date) -> ExchangeRate:
    return ExchangeRate(base=base, quote=quote, rate=Decimal(value), effective_date=on)


TABLE = ExchangeRateTable(
    [
        rate("EUR", "USD", "1.0834", date(2027, 3, 1)),
        rate("EUR", "USD", "1.1000", date(2027, 3, 15)),
        rate("USD", "JPY", "150.25", date(2027, 1, 1)),
    ]
)


def test_latest_rate_on_or_before_the_date() -> None:
    assert TABLE.rate("EUR", "USD", date(2027, 3, 14)) == Decimal("1.0834")
    assert TABLE.rate("EUR", "USD", date(2027, 3, 15)) == Decimal("1.1000")
    assert TABLE.convert(Money.of("100.00", "EUR"), "USD", date(2027, 3, 14)) == Money.of(
        "108.34", "USD"
    )


def test_inverse_rate_when_only_the_reverse_pair_exists() -> None:
    converted = TABLE.convert(Money.of("1000", "JPY"), "USD", date(2027, 2, 1))
    assert converted == Money.of("6.66", "USD")  # 1000 / 150.25 = 6.6555...
    assert TABLE.convert(Money.of("10.00", "USD"), "JPY", date(2027, 2, 1)) == Money.of(
        "1503", "JPY"
    )


def test_same_currency_needs_no_rate() -> None:
    assert TABLE.convert(Money.of("1.005", "USD"), "USD", date(2000, 1, 1)) == Money.of(
        "1.01", "USD"
    )


def test_missing_rate_names_the_pair_and_date() -> None:
    with pytest.raises(BusinessFixError) as caught:
        TABLE.convert(Money.of("1", "USD"), "EUR", date(2027, 2, 28))
    assert caught.value.message == "No USD→EUR exchange rate effective on 2027-02-28"
    with pytest.raises(BusinessFixError, match="No GBP→USD"):
        TABLE.rate("GBP", "USD", date(2027, 3, 14))


def test_bad_rows_are_refused() -> None:
    with pytest.raises(ValidationError, match="must be positive"):
        ExchangeRateTable([rate("EUR", "USD", "0", date(2027, 1, 1))])
    with pytest.raises(ValidationError, match="Two EUR→USD"):
        ExchangeRateTable(
            [
                rate("EUR", "USD", "1.1", date(2027, 1, 1)),
                rate("EUR", "USD", "1.2", date(2027, 1, 1)),
            ]
        )
    with pytest.raises(ValidationError, match="to itself"):
        ExchangeRateTable([rate("EUR", "EUR", "1", date(2027, 1, 1))])
