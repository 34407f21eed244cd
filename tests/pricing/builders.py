"""Small builders of canonical objects for pricing tests (values, not fixtures)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from q2c.canonical.models import (
    BillingEvent,
    BillingEventKind,
    BillingModel,
    BillingScheduleLine,
    Contract,
    ContractLine,
    RateCard,
    RateCardLine,
    RevenueMethod,
)
from q2c.canonical.money import Money
from q2c.pricing.rate_cards import RateCardBook


def usd(amount: str | int) -> Money:
    return Money.of(amount, "USD")


def card(
    version: int = 1,
    start: date = date(2027, 1, 1),
    end: date | None = None,
    *,
    card_id: str = "STD-2027",
    rates: dict[str | None, str] | None = None,
    currency: str = "USD",
    service_item: str = "CONSULT",
) -> RateCard:
    rates = rates or {"Senior": "200.00", "Analyst": "120.00"}
    return RateCard(
        id=card_id,
        name="Standard",
        version=version,
        currency=currency,
        effective_from=start,
        effective_to=end,
        lines=[
            RateCardLine(role=role, service_item=service_item, rate=Money.of(rate, currency))
            for role, rate in rates.items()
        ],
    )


def book(*cards: RateCard) -> RateCardBook:
    result = RateCardBook()
    for item in cards or (card(),):
        result.add_version(item)
    return result


def contract(
    *,
    model: BillingModel = BillingModel.TIME_AND_MATERIALS,
    nte: str | None = None,
    value: str = "100000.00",
    currency: str = "USD",
    schedule: list[BillingScheduleLine] | None = None,
) -> Contract:
    price = Money.of(value, currency)
    return Contract(
        id="contract-100",
        number="C-100",
        customer_id="cust-1",
        legal_entity="US01",
        currency=currency,
        billing_model=model,
        revenue_method=RevenueMethod.AS_INVOICED,
        start_date=date(2027, 1, 1),
        end_date=date(2027, 12, 31),
        total_value=price,
        not_to_exceed=Money.of(nte, currency) if nte is not None else None,
        lines=[
            ContractLine(
                line_no=1,
                service_item="CONSULT",
                quantity=Decimal(1),
                unit_price=price,
                amount=price,
            )
        ],
        billing_schedule=schedule or [],
        rate_card_id="STD-2027",
    )


def time_entry(
    event_id: str = "te-1",
    on: date = date(2027, 3, 14),
    hours: str = "8",
    role: str | None = "Senior",
    service_item: str | None = "CONSULT",
) -> BillingEvent:
    return BillingEvent(
        id=event_id,
        kind=BillingEventKind.TIME,
        project_id="prj-1",
        contract_id="contract-100",
        work_date=on,
        quantity=Decimal(hours),
        role=role,
        service_item=service_item,
    )


def expense(
    event_id: str = "ex-1",
    amount: Money | None = None,
    category: str | None = "travel",
    *,
    billable: bool = True,
    on: date = date(2027, 3, 14),
) -> BillingEvent:
    return BillingEvent(
        id=event_id,
        kind=BillingEventKind.EXPENSE,
        project_id="prj-1",
        contract_id="contract-100",
        work_date=on,
        unit="each",
        amount=amount if amount is not None else usd("100.00"),
        expense_category=category,
        billable=billable,
    )


def usage_event(event_id: str, quantity: str, on: date = date(2027, 3, 1)) -> BillingEvent:
    return BillingEvent(
        id=event_id,
        kind=BillingEventKind.USAGE,
        project_id="prj-1",
        work_date=on,
        quantity=Decimal(quantity),
        unit="unit",
    )
