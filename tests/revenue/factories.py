"""Contracts for revenue tests: only what revenue reads is worth varying."""

from __future__ import annotations

from datetime import date

from q2c.canonical.models import BillingModel, Contract, RevenueMethod
from q2c.canonical.money import Money


def money(amount: str, currency: str = "USD") -> Money:
    return Money.of(amount, currency)


def contract(
    value: str | Money = "120000.00",
    *,
    start: date = date(2026, 1, 1),
    end: date = date(2026, 12, 31),
    method: RevenueMethod = RevenueMethod.STRAIGHT_LINE,
    billing: BillingModel = BillingModel.FIXED_FEE,
    currency: str = "USD",
    not_to_exceed: Money | None = None,
) -> Contract:
    total = value if isinstance(value, Money) else money(value, currency)
    line_amount = {"amount": format(total.amount, "f"), "currency": total.currency}
    return Contract(
        id="ctr-1",
        number="C-0001",
        customer_id="cust-1",
        legal_entity="US01",
        currency=total.currency,
        billing_model=billing,
        revenue_method=method,
        start_date=start,
        end_date=end,
        total_value=total,
        not_to_exceed=not_to_exceed,
        lines=[
            {
                "line_no": 1,
                "service_item": "CONSULT",
                "quantity": "1",
                "unit_price": line_amount,
                "amount": line_amount,
            }
        ],
    )
