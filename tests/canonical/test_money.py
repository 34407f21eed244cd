"""Money: exact decimals, explicit rounding, allocation that never loses a cent."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from q2c.canonical.base import CurrencyCode, ExactDecimal, NonNegativeDecimal
from q2c.canonical.money import MINOR_UNITS, Money, minor_units, parse_decimal

CURRENCIES = sorted(MINOR_UNITS)
SCHEMA_AMOUNT = re.compile(r"^-?\d+(\.\d+)?$")  # the pattern published in contracts/v1

currencies = st.sampled_from(CURRENCIES)
amounts = st.decimals(
    min_value=Decimal("-1e12"),
    max_value=Decimal("1e12"),
    places=6,
    allow_nan=False,
    allow_infinity=False,
)
weights = st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=12).filter(
    lambda ws: sum(ws) > 0
)


def unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


class Priced(BaseModel):
    price: Money


class Quantities(BaseModel):
    exact: ExactDecimal
    count: NonNegativeDecimal
    currency: CurrencyCode


# --- minor units ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "units", "amount", "minor"),
    [
        ("USD", 2, "1250.10", 125010),
        ("JPY", 0, "1250", 1250),
        ("KWD", 3, "1250.125", 1250125),
        ("CLF", 4, "1.2345", 12345),
    ],
)
def test_minor_units_follow_iso_4217(currency, units, amount, minor):
    assert minor_units(currency) == units
    assert Money.of(amount, currency).to_minor() == minor
    assert Money.from_minor(minor, currency) == Money.of(amount, currency)
    assert Money.from_minor(minor, currency).amount.as_tuple().exponent == -units


def test_unknown_currency_error_names_the_code():
    with pytest.raises(ValueError, match="unknown currency 'XYZ'"):
        minor_units("XYZ")
    with pytest.raises(ValueError, match="'XYZ'"):
        Money.of("1.00", "XYZ")
    with pytest.raises(ValueError, match="'usd'"):
        Money.of("1.00", "usd")


def test_unknown_currency_in_a_model_names_the_code():
    with pytest.raises(PydanticValidationError) as caught:
        Priced.model_validate({"price": {"amount": "1.00", "currency": "XYZ"}})
    [error] = caught.value.errors()
    assert error["loc"] == ("price",)
    assert error["msg"] == "unknown currency 'XYZ': use an active ISO-4217 code such as USD or EUR"

    with pytest.raises(PydanticValidationError) as caught:
        Quantities.model_validate({"exact": "1", "count": "1", "currency": "ABC"})
    [error] = caught.value.errors()
    assert error["loc"] == ("currency",)
    assert "'ABC'" in error["msg"]


# --- rounding --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "half_up", "half_even"),
    [
        ("2.345", "USD", "2.35", "2.34"),
        ("2.355", "USD", "2.36", "2.36"),
        ("-2.345", "USD", "-2.35", "-2.34"),
        ("2.344", "USD", "2.34", "2.34"),
        ("2.5", "JPY", "3", "2"),
        ("3.5", "JPY", "4", "4"),
        ("1.0005", "KWD", "1.001", "1.000"),
    ],
)
def test_rounding_modes(amount, currency, half_up, half_even):
    money = Money.of(amount, currency)
    assert money.rounded("half_up").amount == Decimal(half_up)
    assert money.rounded("half_even").amount == Decimal(half_even)
    assert money.rounded().amount == Decimal(half_up)  # half_up is the default


@given(currencies, st.integers(min_value=-(10**9), max_value=10**9))
def test_ties_round_away_from_zero_or_to_even(currency, minor):
    tie = Money(Decimal(minor) * unit(currency) + unit(currency) / 2, currency)
    up = tie.rounded("half_up").to_minor()
    even = tie.rounded("half_even").to_minor()
    assert up == (minor + 1 if tie.amount > 0 else minor)
    assert even % 2 == 0
    assert abs(up - even) <= 1


@given(currencies, amounts)
def test_rounding_modes_agree_except_on_ties_and_land_on_the_minor_unit(currency, amount):
    money = Money(amount, currency)
    up, even = money.rounded("half_up"), money.rounded("half_even")
    assert up.is_rounded() and even.is_rounded()
    assert abs(up.amount - money.amount) <= unit(currency) / 2
    assert abs(up.amount - even.amount) <= unit(currency)
    scaled = money.amount.scaleb(minor_units(currency))
    if scaled - scaled.to_integral_value(rounding="ROUND_FLOOR") != Decimal("0.5"):
        assert up == even


# --- round trips -----------------------------------------------------------------------------


@given(currencies, st.integers(min_value=-(10**15), max_value=10**15))
def test_from_minor_to_minor_round_trip(currency, minor):
    money = Money.from_minor(minor, currency)
    assert money.is_rounded()
    assert money.to_minor() == minor
    assert money.to_minor("half_even") == minor


@given(currencies, amounts)
def test_json_is_fixed_point_and_round_trips(currency, amount):
    money = Money(amount, currency)
    as_json = money.as_json()
    assert SCHEMA_AMOUNT.match(as_json["amount"]), as_json
    assert Priced.model_validate_json(Priced(price=money).model_dump_json()).price == money


def test_tiny_and_huge_amounts_never_use_exponent_notation():
    assert Money.of("1E-7", "USD").as_json() == {"amount": "0.0000001", "currency": "USD"}
    assert Money.of("1E+3", "USD").as_json() == {"amount": "1000", "currency": "USD"}
    assert Quantities(exact="1E-7", count="2E+2", currency="USD").model_dump(mode="json") == {
        "exact": "0.0000001",
        "count": "200",
        "currency": "USD",
    }
    assert str(Money.of("1E+6", "USD")) == "1,000,000 USD"


# --- allocation ------------------------------------------------------------------------------


@given(currencies, amounts, weights)
def test_allocate_sums_exactly_to_the_rounded_total(currency, amount, ws):
    money = Money(amount, currency)
    parts = money.allocate(ws)
    assert len(parts) == len(ws)
    assert all(part.is_rounded() and part.currency == currency for part in parts)
    assert Money.total(parts, currency) == money.rounded()


@given(currencies, amounts, weights)
def test_each_part_is_within_one_minor_unit_of_its_exact_share(currency, amount, ws):
    money = Money(amount, currency).rounded()
    total_weight = sum(ws)
    for part, weight in zip(money.allocate(ws), ws, strict=True):
        exact = money.amount * weight / total_weight
        assert abs(part.amount - exact) < unit(currency)


@given(currencies, amounts, st.integers(min_value=1, max_value=50))
def test_equal_weights_give_parts_that_differ_by_at_most_one_minor_unit(currency, amount, n):
    parts = Money(amount, currency).allocate([1] * n)
    minors = [part.to_minor() for part in parts]
    assert max(minors) - min(minors) <= 1
    assert sum(minors) == Money(amount, currency).to_minor()


def test_allocation_examples():
    assert Money.of("100.00", "USD").allocate([1, 1, 1]) == [
        Money.of("33.34", "USD"),
        Money.of("33.33", "USD"),
        Money.of("33.33", "USD"),
    ]
    assert Money.of("-0.05", "USD").allocate([1, 1]) == [
        Money.of("-0.03", "USD"),
        Money.of("-0.02", "USD"),
    ]
    assert Money.of("1000", "JPY").allocate([Decimal("0.3"), Decimal("0.7")]) == [
        Money.of("300", "JPY"),
        Money.of("700", "JPY"),
    ]


@pytest.mark.parametrize("ws", [[], [0, 0], [-1, 2]])
def test_allocate_refuses_weights_without_a_positive_sum(ws):
    with pytest.raises(ValueError, match="non-negative weights with a positive sum"):
        Money.of("10.00", "USD").allocate(ws)


# --- currencies never mix --------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
        lambda a, b: Money.total([a, b], "USD"),
    ],
)
def test_cross_currency_arithmetic_is_refused(operation):
    with pytest.raises(ValueError, match="cannot combine USD with EUR"):
        operation(Money.of("1.00", "USD"), Money.of("1.00", "EUR"))


def test_money_does_not_combine_with_plain_numbers():
    with pytest.raises(TypeError, match="cannot combine Money with int"):
        Money.of("1.00", "USD") + 1  # type: ignore[operator]
    assert Money.of("1.00", "USD") != Money.of("1.00", "EUR")
    assert Money.of("1.0", "USD") == Money.of("1.00", "USD")
    assert Money.of("2.50", "USD") * 3 == Money.of("7.50", "USD")
    assert Decimal("0.5") * Money.of("2.50", "USD") == Money.of("1.25", "USD")


# --- floats are refused everywhere ----------------------------------------------------------


def test_money_of_a_float_is_refused_and_says_why():
    with pytest.raises(ValueError, match=r"floating-point number 0\.1; floats cannot"):
        Money.of(0.1, "USD")
    with pytest.raises(ValueError, match="floating-point"):
        Money(0.1, "USD")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="floating-point"):
        parse_decimal(1.5)


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m * 0.5,
        lambda m: 0.5 * m,
        lambda m: m.allocate([0.5, 0.5]),
    ],
)
def test_float_factors_and_weights_are_refused(call):
    with pytest.raises(TypeError, match=r"never (a )?float"):
        call(Money.of("10.00", "USD"))


@pytest.mark.parametrize(
    ("payload", "loc", "message"),
    [
        ({"price": {"amount": 0.1, "currency": "USD"}}, ("price",), "floating-point number 0.1"),
        ({"price": {"amount": True, "currency": "USD"}}, ("price",), "got a boolean"),
        ({"price": {"amount": "NaN", "currency": "USD"}}, ("price",), "not a finite number"),
        ({"price": {"amount": "ten", "currency": "USD"}}, ("price",), "is not a decimal number"),
        ({"price": "10.00 USD"}, ("price",), "money must be an object like"),
        ({"price": {"amount": "1"}}, ("price",), "money needs both amount and currency"),
        ({"price": {"amount": "1", "currency": "USD", "fx": "1"}}, ("price",), "['fx']"),
    ],
)
def test_money_fields_refuse_floats_and_junk_precisely(payload, loc, message):
    with pytest.raises(PydanticValidationError) as caught:
        Priced.model_validate(payload)
    [error] = caught.value.errors()
    assert error["loc"] == loc
    assert message in error["msg"]


def test_json_numbers_are_refused_for_money_and_decimals():
    with pytest.raises(PydanticValidationError, match=r"floating-point number 0\.1"):
        Priced.model_validate_json('{"price": {"amount": 0.1, "currency": "USD"}}')
    with pytest.raises(PydanticValidationError) as caught:
        Quantities.model_validate_json('{"exact": 1.5, "count": 2.25, "currency": "USD"}')
    errors = caught.value.errors()
    assert [e["loc"] for e in errors] == [("exact",), ("count",)]
    assert all("floating-point" in e["msg"] for e in errors)
    # integers are exact, so they are welcome
    assert Priced.model_validate_json('{"price": {"amount": 12, "currency": "JPY"}}').price == (
        Money.of("12", "JPY")
    )


def test_non_negative_decimal_names_the_value():
    with pytest.raises(PydanticValidationError) as caught:
        Quantities(exact="-1", count="-2", currency="USD")
    [error] = caught.value.errors()
    assert error["loc"] == ("count",)
    assert error["msg"] == "Value error, must not be negative, got -2"


def test_presentation():
    assert str(Money.of("1250", "USD")) == "1,250 USD"
    assert str(Money.of("1250.50", "USD")) == "1,250.50 USD"
    assert Money.of("1250.5", "USD").rounded().as_json() == {"amount": "1250.50", "currency": "USD"}
    assert Money.zero("KWD").rounded().as_json() == {"amount": "0.000", "currency": "KWD"}
