"""Micro-benchmark of time & materials rating, for ``q2c bench`` (no printing here).

Only the rating is timed: the synthetic events, contract and rate card book are built first.
The clock lives here, not in the pricing rules, which stay pure.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal

from q2c.canonical.models import (
    BillingEvent,
    BillingEventKind,
    BillingModel,
    Contract,
    ContractLine,
    RateCard,
    RateCardLine,
    RevenueMethod,
)
from q2c.canonical.money import Money
from q2c.pricing.rate_cards import RateCardBook
from q2c.pricing.time_materials import rate_time_and_materials

__all__ = ["bench_rating", "rating_fixture"]

_ROLES = ("Analyst", "Consultant", "Senior", "Architect")


def rating_fixture(count: int) -> tuple[RateCardBook, Contract, list[BillingEvent]]:
    book = RateCardBook()
    for version, (start, end, bump) in enumerate(
        ((date(2027, 1, 1), date(2027, 6, 30), 0), (date(2027, 7, 1), None, 10)), start=1
    ):
        book.add_version(
            RateCard(
                id="BENCH",
                name="Bench rates",
                version=version,
                currency="USD",
                effective_from=start,
                effective_to=end,
                lines=[
                    RateCardLine(
                        role=role, service_item="CONSULT", rate=Money.of(150 + 25 * i + bump, "USD")
                    )
                    for i, role in enumerate(_ROLES)
                ],
            )
        )
    usd = Money.of("100.00", "USD")
    contract = Contract(
        id="C-BENCH",
        number="C-BENCH",
        customer_id="cust",
        legal_entity="US01",
        currency="USD",
        billing_model=BillingModel.TIME_AND_MATERIALS,
        revenue_method=RevenueMethod.AS_INVOICED,
        start_date=date(2027, 1, 1),
        end_date=date(2027, 12, 31),
        total_value=Money.of("1000000000", "USD"),
        not_to_exceed=Money.of("1000000000", "USD"),
        lines=[
            ContractLine(
                line_no=1, service_item="CONSULT", quantity=Decimal(1), unit_price=usd, amount=usd
            )
        ],
        rate_card_id="BENCH",
    )
    events = [
        BillingEvent(
            id=f"te-{i}",
            kind=BillingEventKind.TIME,
            project_id="prj",
            contract_id=contract.id,
            work_date=date(2027, 1, 1) + timedelta(days=i % 365),
            quantity=Decimal(1 + i % 8) + Decimal("0.25") * (i % 4),
            role=_ROLES[i % len(_ROLES)],
            service_item="CONSULT",
        )
        for i in range(count)
    ]
    return book, contract, events


def bench_rating(count: int) -> tuple[int, float]:
    """Rate ``count`` synthetic time entries (with an NTE cap); return (count, seconds)."""
    book, contract, events = rating_fixture(count)
    started = time.perf_counter()
    outcome = rate_time_and_materials(events, contract=contract, book=book)
    seconds = time.perf_counter() - started
    return len(outcome.lines), seconds
