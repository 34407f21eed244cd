"""Property-based tests: rounding, caps, effective dating, allocation, tiers, FX round trips."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from q2c.canonical.models import ExchangeRate, TaxCode
from q2c.canonical.money import MINOR_UNITS, Money
from q2c.errors import NotFoundError
from q2c.pricing.fx import ExchangeRateTable
from q2c.pricing.installments import percent_amounts
from q2c.pricing.rating import RatedLine, apply_cap, line_amount
from q2c.pricing.tax import TaxTable, apply_tax
from q2c.pricing.time_materials import rate_time, rate_time_and_materials
from q2c.pricing.usage import Tier, TierTable, price_usage, tier_bands
from tests.pricing.builders import book, card, contract, time_entry

BASE = date(2027, 1, 1)
cents = st.integers(min_value=0, max_value=10**9)
hours = st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False, allow_infinity=False)
rates = st.decimals(min_value=0, max_value=5000, places=4, allow_nan=False, allow_infinity=False)
tax_rates = st.decimals(min_value=0, max_value=Decimal("0.3"), places=5)

_TEMPLATE = rate_time(time_entry(), contract=contract(), book=book())


def rated(amounts: list[int], *, first_day: int = 0) -> list[RatedLine]:
    return [
        replace(
            _TEMPLATE,
            billing_event_ids=(f"te-{i:04d}",),
            work_date=BASE + timedelta(days=first_day + i),
            quantity=Decimal(1),
            unit_price=Money.from_minor(a, "USD"),
            amount=Money.from_minor(a, "USD"),
        )
        for i, a in enumerate(amounts)
    ]


# --- rounding --------------------------------------------------------------------------------


@given(hours, rates)
def test_line_amount_is_within_half_a_minor_unit(quantity: Decimal, rate: Decimal) -> None:
    amount = line_amount(quantity, Money(rate, "USD"))
    assert amount.is_rounded()
    assert abs(amount.amount - quantity * rate) <= Decimal("0.005")


@given(st.lists(cents, min_size=1, max_size=30), tax_rates)
def test_line_and_document_tax_differ_by_at_most_half_a_unit_per_line(
    amounts: list[int], rate: Decimal
) -> None:
    table = TaxTable([TaxCode(code="T", name="T", rate=rate, jurisdiction="X")])
    by_line = apply_tax(rated(amounts), table=table, legal_entity="US01", nexus="X")
    by_doc = apply_tax(
        rated(amounts), table=table, legal_entity="US01", nexus="X", rounding="document"
    )
    gap = abs(by_line.tax_total.to_minor() - by_doc.tax_total.to_minor())
    assert gap <= Decimal(len(amounts)) / 2
    for result in (by_line, by_doc):
        assert result.subtotal == Money.from_minor(sum(amounts), "USD")
        assert result.total.amount == result.subtotal.amount + result.tax_total.amount
        assert result.tax_total.is_rounded()
        assert result.tax_total == Money.total((t.amount for t in result.tax_lines), "USD")


# --- caps ------------------------------------------------------------------------------------


@given(st.lists(cents, max_size=20), cents, cents)
def test_cap_is_never_exceeded_and_nothing_is_lost(
    amounts: list[int], cap: int, billed: int
) -> None:
    lines = rated(amounts)
    outcome = apply_cap(
        lines,
        contract_label="C-1",
        cap=Money.from_minor(cap, "USD"),
        already_billed=Money.from_minor(billed, "USD"),
    )
    billed_now = outcome.total("USD")
    assert billed_now + outcome.held_total("USD") == Money.from_minor(sum(amounts), "USD")
    assert billed_now.amount <= max(Decimal(0), Money.from_minor(cap - billed, "USD").amount)
    if billed + sum(amounts) <= cap:
        assert outcome.held == ()
    assert sum(1 for line in outcome.lines if "partial" in line.description) <= 1


# --- effective dating ------------------------------------------------------------------------

version_layouts = st.lists(
    st.tuples(st.integers(1, 60), st.one_of(st.none(), st.integers(0, 80))),
    min_size=1,
    max_size=6,
)


@given(version_layouts, st.integers(-10, 500), st.randoms(use_true_random=False))
def test_version_chosen_is_the_one_whose_range_contains_the_date(
    layout: list[tuple[int, int | None]], day: int, shuffle: object
) -> None:
    # starts strictly increase; an explicit end lies before the next start (inclusive bounds)
    starts, ends, offset = [], [], 0
    for gap, _ in layout:
        offset += gap
        starts.append(offset)
    for i, (_, length) in enumerate(layout):
        limit = starts[i + 1] - 1 if i + 1 < len(starts) else None
        end = None if length is None else starts[i] + length
        if end is not None and limit is not None:
            end = min(end, limit)
        ends.append(end)
    numbers = list(range(1, len(starts) + 1))
    shuffle.shuffle(numbers)  # type: ignore[attr-defined]
    cards = [
        card(n, BASE + timedelta(days=s), None if e is None else BASE + timedelta(days=e))
        for n, s, e in zip(numbers, starts, ends, strict=True)
    ]
    rates_book = book(*cards)
    # an open-ended version is cut the day before the next one starts
    expected = None
    for i, (n, s, e) in enumerate(zip(numbers, starts, ends, strict=True)):
        end = e if e is not None else (starts[i + 1] - 1 if i + 1 < len(starts) else None)
        if s <= day and (end is None or day <= end):
            expected = n
    on = BASE + timedelta(days=day)
    if expected is None:
        with pytest.raises(NotFoundError):
            rates_book.effective_on("STD-2027", on)
    else:
        assert rates_book.effective_on("STD-2027", on).version == expected
        _, version = rates_book.rate_for("STD-2027", role="Senior", service_item="CONSULT", on=on)
        assert version == expected


# --- allocation and percent milestones -------------------------------------------------------


@given(cents, st.lists(st.decimals(min_value=0, max_value=100, places=3), min_size=1, max_size=12))
def test_percent_milestones_never_exceed_the_contract_value(value: int, raw: list[Decimal]) -> None:
    total = sum(raw, Decimal(0))
    assume(total > 0)
    percents = [(p * 100 / total).quantize(Decimal("0.001")) for p in raw]
    assume(sum(percents, Decimal(0)) <= 100)
    contract_value = Money.from_minor(value, "USD")
    parts = percent_amounts(contract_value, percents)
    assert all(p.is_rounded() and p.amount >= 0 for p in parts)
    assert Money.total(parts, "USD") <= contract_value


@given(cents, st.integers(1, 36))
def test_installments_sum_to_the_contract_value(value: int, count: int) -> None:
    parts = Money.from_minor(value, "USD").allocate([1] * count)
    assert Money.total(parts, "USD") == Money.from_minor(value, "USD")
    assert max(p.to_minor() for p in parts) - min(p.to_minor() for p in parts) <= 1


# --- tiers -----------------------------------------------------------------------------------

tier_tables = st.lists(
    st.tuples(st.integers(1, 1000), st.decimals(min_value=0, max_value=10, places=4)),
    min_size=1,
    max_size=5,
)


def table_from(spec: list[tuple[int, Decimal]], mode: str) -> TierTable:
    bound, tiers = 0, []
    for width, price in spec[:-1]:
        bound += width
        tiers.append(Tier(Decimal(bound), Money(price, "USD")))
    tiers.append(Tier(None, Money(spec[-1][1], "USD")))
    return TierTable(tuple(tiers), mode)  # type: ignore[arg-type]


quantities = st.decimals(min_value=0, max_value=10000, places=2)


@given(tier_tables, quantities, quantities)
def test_graduated_price_never_decreases_with_quantity(
    spec: list[tuple[int, Decimal]], a: Decimal, b: Decimal
) -> None:
    table = table_from(spec, "graduated")
    low, high = sorted((a, b))
    assert price_usage(low, table) <= price_usage(high, table)
    assert sum(band.quantity for band in tier_bands(high, table)) == high


@given(tier_tables, quantities, quantities)
def test_volume_price_never_decreases_within_a_tier(
    spec: list[tuple[int, Decimal]], a: Decimal, b: Decimal
) -> None:
    table = table_from(spec, "volume")
    low, high = sorted((a, b))
    [band_low] = tier_bands(low, table)
    [band_high] = tier_bands(high, table)
    if band_low.upper == band_high.upper:
        assert price_usage(low, table) <= price_usage(high, table)


# --- FX --------------------------------------------------------------------------------------

pairs = st.sampled_from([("EUR", "USD"), ("USD", "JPY"), ("GBP", "KWD"), ("USD", "CLF")])
fx_rates = st.decimals(min_value=Decimal("0.001"), max_value=1000, places=6)


@given(pairs, fx_rates, cents, st.booleans())
def test_fx_round_trip_stays_within_the_rounding_bound(
    pair: tuple[str, str], rate: Decimal, minor: int, inverse_only: bool
) -> None:
    assume(rate > 0)
    base, quote = pair
    table = ExchangeRateTable(
        [ExchangeRate(base=base, quote=quote, rate=rate, effective_date=BASE)]
    )
    start = (base, quote) if not inverse_only else (quote, base)
    money = Money.from_minor(minor, start[0])
    there = table.convert(money, start[1], BASE)
    back = table.convert(there, start[0], BASE)
    forward = table.rate(start[0], start[1], BASE)
    unit = {c: Decimal(1).scaleb(-MINOR_UNITS[c]) for c in pair}
    bound = unit[start[1]] / 2 / forward + unit[start[0]] / 2 + Decimal("1e-18") * minor
    assert abs(back.amount - money.amount) <= bound


@given(st.lists(hours, max_size=15), cents, cents)
def test_time_and_materials_cap_end_to_end(entries: list[Decimal], nte: int, billed: int) -> None:
    events = [
        time_entry(f"te-{i:03d}", BASE + timedelta(days=i), str(h)) for i, h in enumerate(entries)
    ]
    deal = contract(nte=str(Money.from_minor(nte, "USD").amount))
    already = Money.from_minor(billed, "USD")
    outcome = rate_time_and_materials(events, contract=deal, book=book(), already_billed=already)
    rated_total = Money.total(
        (rate_time(e, contract=deal, book=book()).amount for e in events), "USD"
    )
    assert outcome.total("USD") + outcome.held_total("USD") == rated_total
    assert already + outcome.total("USD") <= max(already, Money.from_minor(nte, "USD"))
    assert all(line.rate_card_version == 1 for line in outcome.lines)
