from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from q2c.errors import BusinessFixError, MappingMissingError, NotFoundError, ValidationError
from q2c.pricing.rate_cards import RateCardBook, effective_ranges
from tests.pricing.builders import book, card


def test_rate_on_work_date_comes_from_the_effective_version() -> None:
    rates = book(
        card(1, date(2027, 1, 1), date(2027, 6, 30)),
        card(2, date(2027, 7, 1), rates={"Senior": "220.00"}),
    )
    line, version = rates.rate_for(
        "STD-2027", role="Senior", service_item="CONSULT", on=date(2027, 6, 30)
    )
    assert (line.rate.amount, version) == (Decimal(200), 1)
    line, version = rates.rate_for(
        "STD-2027", role="Senior", service_item="CONSULT", on=date(2027, 7, 1)
    )
    assert (line.rate.amount, version) == (Decimal(220), 2)


def test_open_ended_version_ends_the_day_before_the_next_starts() -> None:
    ranges = effective_ranges([card(2, date(2027, 7, 1)), card(1, date(2027, 1, 1))])
    assert [(r.version, r.start, r.end) for r in ranges] == [
        (1, date(2027, 1, 1), date(2027, 6, 30)),
        (2, date(2027, 7, 1), None),
    ]


def test_overlapping_explicit_ranges_are_refused() -> None:
    rates = book(card(1, date(2027, 1, 1), date(2027, 6, 30)))
    with pytest.raises(BusinessFixError, match="versions overlap"):
        rates.add_version(card(2, date(2027, 6, 1)))


def test_two_versions_starting_the_same_day_are_refused() -> None:
    rates = book(card(1, date(2027, 1, 1)))
    with pytest.raises(BusinessFixError, match="versions overlap"):
        rates.add_version(card(2, date(2027, 1, 1)))


def test_readding_an_identical_version_is_a_no_op() -> None:
    rates = book(card(1))
    rates.mark_used("STD-2027", 1)
    rates.add_version(card(1))
    assert len(rates.versions("STD-2027")) == 1


def test_unused_version_may_be_corrected() -> None:
    rates = book(card(1))
    rates.add_version(card(1, rates={"Senior": "210.00"}))
    line, _ = rates.rate_for("STD-2027", role="Senior", service_item="CONSULT", on=date(2027, 2, 1))
    assert line.rate.amount == 210


def test_used_version_cannot_change() -> None:
    rates = book(card(1, date(2027, 1, 1), date(2027, 1, 31)), card(2, date(2027, 2, 1)))
    rates.mark_used("STD-2027", 2)
    with pytest.raises(BusinessFixError) as caught:
        rates.add_version(card(2, date(2027, 2, 1), rates={"Senior": "999.00"}))
    assert caught.value.message == (
        "Rate card STD-2027 v2 has billed lines; create version 3 instead"
    )


def test_new_version_may_not_cut_off_billed_dates_of_a_used_version() -> None:
    rates = book(card(1, date(2027, 1, 1)))
    rates.mark_used("STD-2027", 1, on=date(2027, 3, 14))
    with pytest.raises(BusinessFixError, match="billed lines on 2027-03-14"):
        rates.add_version(card(2, date(2027, 3, 1)))
    rates.add_version(card(2, date(2027, 3, 15)))
    assert rates.effective_on("STD-2027", date(2027, 3, 14)).version == 1


def test_no_rate_for_role_message() -> None:
    rates = book(card(1))
    with pytest.raises(MappingMissingError) as caught:
        rates.rate_for("STD-2027", role="Architect", service_item="CONSULT", on=date(2027, 3, 14))
    assert (
        caught.value.message
        == "Rate card 'STD-2027' has no rate for role 'Architect' on 2027-03-14"
    )


def test_role_known_but_not_for_that_service_item() -> None:
    rates = book(card(1))
    with pytest.raises(MappingMissingError, match="role 'Senior' and service item 'AUDIT'"):
        rates.rate_for("STD-2027", role="Senior", service_item="AUDIT", on=date(2027, 3, 14))


def test_role_less_line_is_the_service_item_default() -> None:
    rates = book(card(1, rates={None: "150.00", "Senior": "200.00"}))
    line, _ = rates.rate_for("STD-2027", role="Intern", service_item="CONSULT", on=date(2027, 3, 1))
    assert line.rate.amount == 150


def test_no_version_effective_on_date() -> None:
    rates = book(card(1, date(2027, 1, 1), date(2027, 6, 30)))
    with pytest.raises(NotFoundError, match="no version effective on 2027-07-01"):
        rates.rate_for("STD-2027", role="Senior", service_item="CONSULT", on=date(2027, 7, 1))
    with pytest.raises(NotFoundError, match="no version effective on 2026-12-31"):
        rates.effective_on("STD-2027", date(2026, 12, 31))


def test_unknown_rate_card_and_version() -> None:
    with pytest.raises(NotFoundError, match="'NOPE' does not exist"):
        RateCardBook().rate_for("NOPE", role="Senior", service_item=None, on=date(2027, 1, 1))
    with pytest.raises(NotFoundError, match="no version 7"):
        book().mark_used("STD-2027", 7)


def test_duplicate_role_lines_in_one_version_are_refused() -> None:
    bad = card(1).model_copy(update={"lines": [*card(1).lines, card(1).lines[0]]})
    with pytest.raises(ValidationError, match="two rates for role 'Senior'"):
        book(bad)
