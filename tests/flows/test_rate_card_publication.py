"""Rate card publication: versions are kept, and a version billed lines used never changes."""

from __future__ import annotations

from datetime import date

import pytest

from q2c.canonical.events import new_event
from q2c.canonical.models import RateCard, RateCardLine
from q2c.flows import rate_card_publication
from tests.flows.cash_world import CashWorld, time_entry, usd


@pytest.fixture
def world(db, clock) -> CashWorld:
    w = CashWorld(db, clock, extra_flows=(rate_card_publication.build_flow(),))
    w.seed_reference()  # RC-US v1 (to Nov 15) and v2 (from Nov 16) already published
    return w


def card(version: int, start: date, senior: str, end: date | None = None) -> RateCard:
    return RateCard(id="RC-US", name="US standard", version=version, currency="USD",
                    effective_from=start, effective_to=end,
                    lines=[RateCardLine(role="Senior", service_item="CONSULT-SR",
                                        rate=usd(senior)),
                           RateCardLine(role="Junior", service_item="CONSULT-JR",
                                        rate=usd("125.00"))])


def publish(world: CashWorld, rate_card: RateCard, event_id: str) -> str:
    [receipt] = world.accept(new_event("rate_card.published", rate_card, source="urn:test:cpq",
                                       event_id=event_id))
    world.run()
    return receipt.status


def test_a_used_version_cannot_change_but_a_new_version_can_follow(world):
    contract = world.seed_contract("100")
    world.deliver(time_entry("te-1", "100", date(2026, 11, 20), "2"))  # billed on v2
    world.run()
    world.bill(contract, date(2026, 11, 30))
    world.run()
    assert publish(world, card(2, date(2026, 11, 16), "999.00"), "pub-1") == "accepted"
    [parked] = world.open_exceptions()
    assert parked.message == "Rate card RC-US v2 has billed lines; create version 3 instead"
    world.exceptions.dismiss(parked.id, by="pricing", reason="published v3 instead")
    # a version starting before a date v2 already billed is refused too
    publish(world, card(3, date(2026, 11, 18), "230.00"), "pub-2")
    [parked] = world.open_exceptions()
    assert "has billed lines on 2026-11-20" in parked.message
    world.exceptions.dismiss(parked.id, by="pricing", reason="wrong start")
    publish(world, card(3, date(2026, 12, 1), "230.00"), "pub-3")
    assert world.open_exceptions() == []
    versions = world.records.versions("rate_card", "RC-US", RateCard)
    assert [(v.version, v.lines[0].rate) for v in versions] == [
        (1, usd("200.00")), (2, usd("210.00")), (3, usd("230.00"))]


def test_republishing_the_same_version_is_a_no_op(world):
    same = world.records.versions("rate_card", "RC-US", RateCard)[1]
    assert publish(world, same, "pub-a") == "accepted"
    assert publish(world, same, "pub-b") == "duplicate_business_key"
    assert world.open_exceptions() == []
    assert len(world.records.versions("rate_card", "RC-US", RateCard)) == 2
