from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from q2c.canonical.models import BillingEventKind, BillingModel, BillingScheduleLine
from q2c.errors import BusinessFixError, ValidationError
from q2c.pricing.installments import (
    Milestone,
    milestone_from_event,
    percent_amounts,
    rate_installments,
    rate_milestones,
)
from tests.pricing.builders import contract, expense, usd


def schedule(*amounts: str) -> list[BillingScheduleLine]:
    return [
        BillingScheduleLine(
            sequence=i, bill_date=date(2027, i, 1), description=f"Installment {i}", amount=usd(a)
        )
        for i, a in enumerate(amounts, start=1)
    ]


def test_installments_due_and_not_yet_billed() -> None:
    fixed = contract(
        model=BillingModel.FIXED_FEE, value="300.00", schedule=schedule("100", "100", "100")
    )
    outcome = rate_installments(fixed, through=date(2027, 2, 15), billed_sequences={1})
    [line] = outcome.lines
    assert line.amount == usd("100.00")
    assert line.billing_event_ids == ("contract-100:installment:2",)
    assert line.kind is BillingEventKind.FIXED_FEE_INSTALLMENT


def test_installments_never_exceed_contract_value() -> None:
    fixed = contract(
        model=BillingModel.FIXED_FEE, value="250.00", schedule=schedule("100", "100", "100")
    )
    outcome = rate_installments(fixed, through=date(2027, 12, 31))
    assert outcome.total("USD") == usd("250.00")
    assert outcome.held[0].reason == "contract_value_cap"
    assert outcome.held[0].message.startswith(
        "Contract C-100 reached its contract value of 250.00 USD"
    )


def test_percent_milestones_telescope_to_the_contract_value() -> None:
    parts = percent_amounts(usd("100.00"), [Decimal("33.333")] * 2 + [Decimal("33.334")])
    assert parts == [usd("33.33"), usd("33.34"), usd("33.33")]
    assert sum(p.amount for p in parts) == Decimal("100.00")


def test_percent_above_100_is_refused() -> None:
    with pytest.raises(BusinessFixError, match="would bill 110%"):
        percent_amounts(usd("100"), [Decimal("60")], billed_percent=Decimal("50"))


def test_milestones_by_amount_and_percent() -> None:
    deal = contract(model=BillingModel.MILESTONE, value="10000.00")
    outcome = rate_milestones(
        [
            Milestone("m2", "Go-live", date(2027, 6, 1), percent=Decimal("25")),
            Milestone("m1", "Kick-off", date(2027, 2, 1), amount=usd("1000.00")),
        ],
        contract=deal,
    )
    assert [(line.billing_event_ids, line.amount) for line in outcome.lines] == [
        (("m1",), usd("1000.00")),
        (("m2",), usd("2500.00")),
    ]
    assert "25% of contract value" in outcome.lines[1].description


def test_milestone_amounts_capped_at_contract_value() -> None:
    deal = contract(model=BillingModel.MILESTONE, value="1000.00")
    outcome = rate_milestones(
        [Milestone("m1", "Big", date(2027, 2, 1), amount=usd("800"))],
        contract=deal,
        already_billed=usd("500.00"),
    )
    assert outcome.total("USD") == usd("500.00")
    assert outcome.held_total("USD") == usd("300.00")


def test_milestone_from_event() -> None:
    event = expense(amount=usd("750.00")).model_copy(update={"kind": BillingEventKind.MILESTONE})
    assert milestone_from_event(event).amount == usd("750.00")
    by_percent = milestone_from_event(event, percent=Decimal("10"))
    assert (by_percent.amount, by_percent.percent) == (None, Decimal("10"))
    with pytest.raises(ValidationError, match="not a milestone"):
        milestone_from_event(expense())


def test_milestone_needs_exactly_one_price() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Milestone("m", "x", date(2027, 1, 1))
    with pytest.raises(TypeError, match="never a float"):
        Milestone("m", "x", date(2027, 1, 1), percent=0.5)  # type: ignore[arg-type]
