from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from q2c.canonical.models import BillingEventKind, ExchangeRate
from q2c.canonical.money import Money
from q2c.errors import BusinessFixError, ValidationError
from q2c.pricing.fx import ExchangeRateTable
from q2c.pricing.rating import HeldItem, RatedLine
from q2c.pricing.time_materials import (
    ExpensePolicy,
    rate_expense,
    rate_time,
    rate_time_and_materials,
)
from tests.pricing.builders import book, card, contract, expense, time_entry, usd


def test_time_is_hours_times_rate_stamped_with_the_version() -> None:
    line = rate_time(time_entry(hours="7.5"), contract=contract(), book=book())
    assert line.amount == usd("1500.00")
    assert (line.rate_card_id, line.rate_card_version) == ("STD-2027", 1)
    assert line.billing_event_id == "te-1"
    assert line.kind is BillingEventKind.TIME


def test_time_amount_is_rounded_half_up_unless_configured() -> None:
    rates = book(card(1, rates={"Senior": "100.005"}))
    entry = time_entry(hours="1")
    assert rate_time(entry, contract=contract(), book=rates).amount == usd("100.01")
    half_even = rate_time(entry, contract=contract(), book=rates, rounding="half_even")
    assert half_even.amount == usd("100.00")
    assert half_even.unit_price.amount == Decimal("100.005")


def test_unit_mismatch_is_refused() -> None:
    entry = time_entry().model_copy(update={"unit": "day"})
    with pytest.raises(BusinessFixError, match="in days but rate card"):
        rate_time(entry, contract=contract(), book=book())


def test_rate_card_in_another_currency_is_converted_on_the_document_date() -> None:
    rates = book(card(1, currency="EUR", rates={"Senior": "100.00"}))
    fx = ExchangeRateTable(
        [
            ExchangeRate(
                base="EUR", quote="USD", rate=Decimal("1.1"), effective_date=date(2027, 1, 1)
            )
        ]
    )
    line = rate_time(
        time_entry(hours="3"),
        contract=contract(),
        book=rates,
        fx=fx,
        document_date=date(2027, 3, 31),
    )
    assert line.unit_price == Money(Decimal("110.0"), "USD")
    assert line.amount == usd("330.00")
    with pytest.raises(BusinessFixError, match="no exchange rates"):
        rate_time(time_entry(), contract=contract(), book=rates)


def test_nte_cap_bills_partially_and_holds_the_rest() -> None:
    events = [time_entry("te-1", date(2027, 3, 13)), time_entry("te-2", date(2027, 3, 14))]
    outcome = rate_time_and_materials(
        events, contract=contract(nte="50000.00"), book=book(), already_billed=usd("48350.00")
    )
    assert [line.amount for line in outcome.lines] == [usd("1600.00"), usd("50.00")]
    assert outcome.lines[1].quantity == Decimal("0.25")
    assert "partial" in outcome.lines[1].description
    [held] = outcome.held
    assert held.amount == usd("1550.00")
    assert held.reason == "not_to_exceed_cap"
    assert held.message == (
        "Contract C-100 reached its not-to-exceed cap of 50,000.00 USD; "
        "1,550.00 USD of time on 2027-03-14 was not billed"
    )
    with pytest.raises(BusinessFixError, match="reached its not-to-exceed cap"):
        outcome.raise_for_held()


def test_cap_already_reached_holds_everything() -> None:
    outcome = rate_time_and_materials(
        [time_entry()], contract=contract(nte="1000"), book=book(), already_billed=usd("1000.00")
    )
    assert outcome.lines == ()
    assert outcome.held[0].amount == usd("1600.00")


def test_without_cap_everything_is_billed() -> None:
    outcome = rate_time_and_materials([time_entry(), expense()], contract=contract(), book=book())
    assert outcome.total("USD") == usd("1700.00")
    assert outcome.held == ()
    outcome.raise_for_held()


def test_expense_markup_and_non_billable_categories() -> None:
    policy = ExpensePolicy(
        markup_percent=Decimal("10"), non_billable_categories=frozenset({"meals"})
    )
    line = rate_expense(expense(amount=usd("123.45")), contract=contract(), policy=policy)
    assert isinstance(line, RatedLine)
    assert line.amount == usd("135.80")  # 135.795 half-up
    assert (line.quantity, line.unit_price) == (Decimal(1), line.amount)
    meals = rate_expense(expense("ex-2", category="meals"), contract=contract(), policy=policy)
    assert isinstance(meals, HeldItem)
    assert meals.reason == "non_billable"
    assert "not billable (category 'meals')" in meals.message
    flagged = rate_expense(expense("ex-3", billable=False), contract=contract(), policy=policy)
    assert isinstance(flagged, HeldItem)
    assert "marked not billable" in flagged.message


def test_expense_without_amount_is_refused() -> None:
    bare = expense().model_copy(update={"amount": None})
    with pytest.raises(ValidationError, match="has no amount"):
        rate_expense(bare, contract=contract(), policy=ExpensePolicy())


def test_foreign_expense_converted_on_document_date() -> None:
    fx = ExchangeRateTable(
        [
            ExchangeRate(
                base="EUR", quote="USD", rate=Decimal("1.05"), effective_date=date(2027, 3, 1)
            ),
            ExchangeRate(
                base="EUR", quote="USD", rate=Decimal("1.10"), effective_date=date(2027, 4, 1)
            ),
        ]
    )
    outcome = rate_time_and_materials(
        [expense(amount=Money.of("200.00", "EUR"))],
        contract=contract(),
        book=book(),
        fx=fx,
        document_date=date(2027, 4, 2),
        expense_policy=ExpensePolicy(markup_percent=Decimal("5")),
    )
    assert outcome.lines[0].amount == usd("231.00")  # 200 * 1.05 * 1.10


def test_expenses_may_stay_outside_the_cap() -> None:
    outcome = rate_time_and_materials(
        [time_entry(), expense()],
        contract=contract(nte="1000"),
        book=book(),
        expenses_count_toward_cap=False,
    )
    assert outcome.total("USD") == usd("1100.00")
    assert outcome.held_total("USD") == usd("600.00")


def test_other_event_kinds_are_refused_on_t_and_m() -> None:
    milestone = time_entry().model_copy(update={"kind": BillingEventKind.MILESTONE})
    with pytest.raises(ValidationError, match="time and expenses only"):
        rate_time_and_materials([milestone], contract=contract(), book=book())


def test_contract_without_rate_card() -> None:
    bare = contract().model_copy(update={"rate_card_id": None})
    with pytest.raises(BusinessFixError, match="has no rate card"):
        rate_time(time_entry(), contract=bare, book=book())


def test_non_billable_time_and_foreign_contract_events() -> None:
    free = time_entry().model_copy(update={"billable": False})
    outcome = rate_time_and_materials([free], contract=contract(), book=book())
    assert outcome.lines == ()
    assert outcome.held[0].message == (
        "Time entry te-1 on 2027-03-14 is marked not billable; no invoice line was created"
    )
    other = time_entry().model_copy(update={"contract_id": "contract-999"})
    with pytest.raises(ValidationError, match="belongs to contract contract-999"):
        rate_time_and_materials([other], contract=contract(), book=book())
