"""The demo firm: two legal entities, their customers, contracts, rate cards and a month of
delivery — plain data, built from a seed, with no I/O.

The demo pushes it into the vendor sandboxes (Salesforce, Kantata, the usage feed) and lets
q2c carry it to Stripe and NetSuite; the tests recompute every invoice from this same data
without q2c's pricing code. Everything the recomputation needs is here: rates per version,
hours per entry, expense amounts, markups, tiers, taxes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from q2c.canonical.models import (
    BillingTerms,
    ExpenseTerms,
    RateCard,
    RateCardLine,
    RetainerBillingTerms,
    UsagePricing,
    UsageTier,
)
from q2c.canonical.money import Money

__all__ = [
    "BILLING_MONTH",
    "ENTITIES",
    "DealPlan",
    "ExpensePlan",
    "MilestonePlan",
    "Scenario",
    "TimePlan",
    "UsagePlan",
    "build_scenario",
]

BILLING_MONTH = (date(2026, 11, 1), date(2026, 11, 30))
RATE_CHANGE = date(2026, 11, 16)  # new rate card versions mid-month

ENTITIES = {
    "US01": {
        "name": "Meridian Advisory Inc.",
        "country": "US",
        "currency": "USD",
        "department": "Consulting-US",
        "tax_code": "US-EXEMPT",
        "rate_card": "RC-US",
    },
    "DE01": {
        "name": "Meridian Advisory GmbH",
        "country": "DE",
        "currency": "EUR",
        "department": "Consulting-DE",
        "tax_code": "DE-VAT-19",
        "rate_card": "RC-EU",
    },
}

ROLES = {  # role -> (service item, description, v1 USD, v2 USD, v1 EUR, v2 EUR)
    "Manager": ("PM", "Engagement management", "240.00", "250.00", "210.00", "220.00"),
    "Senior": ("CONSULT-SR", "Senior consultant", "210.00", "225.00", "185.00", "195.00"),
    "Consultant": ("CONSULT-JR", "Consultant", "150.00", "160.00", "130.00", "140.00"),
}

CUSTOMERS = {
    "US01": [
        "Northwind Traders",
        "Contoso Pharma",
        "Fabrikam Energy",
        "Tailspin Logistics",
        "Wide World Importers",
        "Litware Insurance",
        "Adatum Health",
        "Proseware Retail",
        "Lucerne Publishing",
        "Coho Vineyard",
        "Alpine Ski House",
        "Relecloud Bank",
    ],
    "DE01": [
        "Nordwind Logistik GmbH",
        "Rheinwerk Maschinenbau AG",
        "Elbe Kliniken GmbH",
        "Isar Versicherung AG",
        "Spree Medien GmbH",
        "Main Finanz AG",
        "Weser Energie GmbH",
        "Donau Handel KG",
    ],
}

# (billing model, revenue method, how many per entity)
MIX = {
    "US01": [
        ("time_and_materials", "as_invoiced", 7),
        ("fixed_fee", "straight_line", 3),
        ("milestone", "milestone", 3),
        ("retainer", "straight_line", 3),
        ("usage", "as_invoiced", 2),
    ],
    "DE01": [
        ("time_and_materials", "as_invoiced", 5),
        ("fixed_fee", "percent_complete", 2),
        ("milestone", "milestone", 2),
        ("retainer", "straight_line", 1),
        ("usage", "as_invoiced", 2),
    ],
}


@dataclass(frozen=True)
class DealPlan:
    key: str
    entity: str
    customer: str
    tax_id: str
    country: str
    currency: str
    billing_model: str
    revenue_method: str
    department: str
    lines: tuple[tuple[str, str, str | None, Decimal, Decimal], ...]
    start: date
    end: date
    rate_card: str | None
    not_to_exceed: Decimal | None
    terms: BillingTerms

    @property
    def total(self) -> Decimal:
        return sum((q * p for *_, q, p in self.lines), Decimal(0))


@dataclass(frozen=True)
class TimePlan:
    key: str
    deal: str
    person: str
    role: str
    work_date: date
    minutes: int


@dataclass(frozen=True)
class ExpensePlan:
    key: str
    deal: str
    work_date: date
    amount: Money
    category: str


@dataclass(frozen=True)
class MilestonePlan:
    key: str
    deal: str
    name: str
    completed_on: date
    percent: Decimal


@dataclass(frozen=True)
class UsagePlan:
    key: str
    deal: str
    work_date: date
    quantity: Decimal


@dataclass
class Scenario:
    deals: list[DealPlan]
    rate_cards: list[RateCard]
    time: list[TimePlan] = field(default_factory=list)
    expenses: list[ExpensePlan] = field(default_factory=list)
    milestones: list[MilestonePlan] = field(default_factory=list)
    usage: list[UsagePlan] = field(default_factory=list)

    def deal(self, key: str) -> DealPlan:
        return next(d for d in self.deals if d.key == key)


def rate_cards() -> list[RateCard]:
    cards = []
    for card_id, currency, columns in (("RC-US", "USD", (2, 3)), ("RC-EU", "EUR", (4, 5))):
        for version, (start, end, column) in enumerate(
            (
                (BILLING_MONTH[0], RATE_CHANGE - timedelta(days=1), columns[0]),
                (RATE_CHANGE, None, columns[1]),
            ),
            start=1,
        ):
            cards.append(
                RateCard(
                    id=card_id,
                    name=f"Standard rates {currency}",
                    version=version,
                    currency=currency,
                    effective_from=start,
                    effective_to=end,
                    lines=[
                        RateCardLine(
                            role=role, service_item=spec[0], rate=Money.of(spec[column], currency)
                        )
                        for role, spec in ROLES.items()
                    ],
                )
            )
    return cards


def _weekdays(start: date, end: date) -> list[date]:
    days, day = [], start
    while day <= end:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def _terms(model: str, entity: str, currency: str, rng: random.Random) -> BillingTerms:
    tax_code = ENTITIES[entity]["tax_code"]
    expenses = ExpenseTerms(
        markup_percent=Decimal(rng.choice([0, 5, 10])), non_billable_categories=["meals"]
    )
    if model == "retainer":
        fee = Decimal(rng.choice([12000, 15000, 20000]))
        return BillingTerms(
            tax_code=tax_code,
            expenses=expenses,
            retainer=RetainerBillingTerms(
                period_fee=Money(fee, currency),
                hours_allowance=Decimal(80),
                overage_rate=Money.of("195.00", currency),
                rollover_cap_hours=Decimal(16),
            ),
        )
    if model == "usage":
        return BillingTerms(
            tax_code=tax_code,
            expenses=expenses,
            usage=UsagePricing(
                mode="graduated",
                service_item="USAGE",
                tiers=[
                    UsageTier(up_to=Decimal(10000), unit_price=Money.of("0.0500", currency)),
                    UsageTier(up_to=Decimal(50000), unit_price=Money.of("0.0400", currency)),
                    UsageTier(up_to=None, unit_price=Money.of("0.0300", currency)),
                ],
            ),
        )
    return BillingTerms(tax_code=tax_code, expenses=expenses)


def build_scenario(seed: int = 7, time_entries: int = 10_000) -> Scenario:
    rng = random.Random(seed)
    deals: list[DealPlan] = []
    for entity, mix in MIX.items():
        spec = ENTITIES[entity]
        customers = CUSTOMERS[entity]
        number = 0
        for model, revenue, count in mix:
            for _ in range(count):
                customer = customers[number % len(customers)]
                number += 1
                currency = str(spec["currency"])
                hours = Decimal(rng.choice([160, 240, 320, 480]))
                lines: list[tuple[str, str, str | None, Decimal, Decimal]] = []
                column = 2 if currency == "USD" else 4
                for role in ("Manager", "Senior", "Consultant"):
                    item, description, *prices = ROLES[role]
                    share = {
                        "Manager": Decimal("0.15"),
                        "Senior": Decimal("0.45"),
                        "Consultant": Decimal("0.40"),
                    }[role]
                    lines.append(
                        (
                            item,
                            description,
                            role,
                            (hours * share).quantize(Decimal(1)),
                            Decimal(prices[column - 2]),
                        )
                    )
                start = date(2026, 11, 1)
                months = 3 if model in ("fixed_fee", "milestone") else 6
                end = date(2027, 1, 31) if months == 3 else date(2027, 4, 30)
                nte = None
                if model == "time_and_materials" and number % 4 == 1:
                    nte = (
                        sum((q * p for *_, q, p in lines), Decimal(0)) * Decimal("0.12")
                    ).quantize(Decimal(1))
                deals.append(
                    DealPlan(
                        key=f"{entity}-{number:02d}",
                        entity=entity,
                        customer=customer,
                        tax_id=f"{spec['country']}{1000 + customers.index(customer)}",
                        country=str(spec["country"]),
                        currency=currency,
                        billing_model=model,
                        revenue_method=revenue,
                        department=str(spec["department"]),
                        lines=tuple(lines),
                        start=start,
                        end=end,
                        rate_card=str(spec["rate_card"]) if model == "time_and_materials" else None,
                        not_to_exceed=nte,
                        terms=_terms(model, entity, currency, rng),
                    )
                )
    scenario = Scenario(deals=deals, rate_cards=rate_cards())
    _delivery(scenario, rng, time_entries)
    return scenario


def _delivery(scenario: Scenario, rng: random.Random, time_entries: int) -> None:
    days = _weekdays(date(2026, 11, 2), date(2026, 11, 27))
    timed = [
        d
        for d in scenario.deals
        if d.billing_model in ("time_and_materials", "retainer", "fixed_fee")
    ]
    weights = [3 if d.billing_model == "time_and_materials" else 1 for d in timed]
    people = {role: [f"{role.lower()}-{n}" for n in range(1, 9)] for role in ROLES}
    for n in range(time_entries):
        deal = rng.choices(timed, weights)[0]
        role = rng.choices(list(ROLES), [1, 3, 3])[0]
        scenario.time.append(
            TimePlan(
                key=f"T{n + 1:05d}",
                deal=deal.key,
                person=rng.choice(people[role]),
                role=role,
                work_date=rng.choice(days),
                minutes=rng.choice([30, 45, 60, 90, 120, 150, 240]),
            )
        )
    number = 0
    for deal in scenario.deals:
        if deal.billing_model in ("time_and_materials", "retainer"):
            for _ in range(rng.randint(3, 8)):
                number += 1
                category = rng.choice(["travel", "hotel", "meals", "travel"])
                foreign = deal.currency == "USD" and number % 7 == 0
                currency = "EUR" if foreign else deal.currency
                amount = Money(Decimal(rng.randint(4000, 90000)) / 100, currency)
                scenario.expenses.append(
                    ExpensePlan(
                        key=f"E{number:04d}",
                        deal=deal.key,
                        work_date=rng.choice(days),
                        amount=amount,
                        category=category,
                    )
                )
        if deal.billing_model == "milestone":
            scenario.milestones.append(
                MilestonePlan(
                    key=f"M-{deal.key}-1",
                    deal=deal.key,
                    name="Discovery signed off",
                    completed_on=date(2026, 11, 18),
                    percent=Decimal(25),
                )
            )
        if deal.billing_model == "usage":
            for day in _weekdays(date(2026, 11, 2), date(2026, 11, 27)):
                scenario.usage.append(
                    UsagePlan(
                        key=f"U-{deal.key}-{day:%m%d}",
                        deal=deal.key,
                        work_date=day,
                        quantity=Decimal(rng.randint(800, 4200)),
                    )
                )
