"""Reference data sync: scheduled by crontab, versioned in the hub, idempotent."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from q2c.canonical.events import ReferenceSyncRequested
from q2c.canonical.models import ExchangeRate, Item, TaxCode
from q2c.flows import reference_data_sync
from q2c.runtime.schedule import FlowSchedule
from tests.flows.cash_world import CashWorld


@pytest.fixture
def world(db, clock) -> CashWorld:
    w = CashWorld(db, clock, extra_flows=(reference_data_sync.build_flow(),))
    w.ledger.rates = [ExchangeRate(base="EUR", quote="USD", rate=Decimal("1.0850"),
                                   effective_date=date(2026, 11, 26))]
    w.ledger.codes = [TaxCode(code="DE-VAT19", name="VAT", rate=Decimal("0.19"),
                              jurisdiction="DE", legal_entity="DE01")]
    w.ledger.catalogue = [Item(code="CONSULT-SR", name="Senior consulting")]
    return w


def schedule(world: CashWorld, clock) -> FlowSchedule:
    return FlowSchedule(world.db, world.inbox, name="reference_data_sync", crontab="0 2 * * *",
                        event_type="reference_data.sync_requested",
                        data=lambda fire: ReferenceSyncRequested(as_of=fire.date()), now=clock)


def test_the_schedule_fires_once_per_crontab_time_whoever_ticks(world, clock):
    clock.current = datetime(2026, 11, 26, 23, 0, tzinfo=UTC)
    first, second = schedule(world, clock), schedule(world, clock)  # two workers
    assert first.poll() == []  # the first start only remembers "now"
    clock.current = datetime(2026, 11, 27, 1, 59, tzinfo=UTC)
    assert first.poll() == []
    clock.current = datetime(2026, 11, 27, 2, 0, 5, tzinfo=UTC)
    assert [r.status for r in first.poll()] == ["accepted"]
    assert second.poll() == []  # the other worker sees the fire time already done
    clock.current = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # down for three nights
    [receipt] = second.poll()  # the missed runs coalesce into one
    assert receipt.status == "accepted"


def test_sync_stores_rates_tax_codes_and_items_and_versions_changes(world, clock):
    clock.current = datetime(2026, 11, 26, 23, 0, tzinfo=UTC)
    timer = schedule(world, clock)
    timer.poll()
    clock.current = datetime(2026, 11, 27, 2, 0, 1, tzinfo=UTC)
    timer.poll()
    world.run()
    assert world.statuses(reference_data_sync.NAME) == {"completed": 1}
    [rate] = world.records.all_current("exchange_rate", ExchangeRate)
    assert rate.rate == Decimal("1.0850")
    # the ERP changes the VAT rate: the next night keeps both versions
    world.ledger.codes = [world.ledger.codes[0].model_copy(update={"rate": Decimal("0.20")})]
    clock.current = datetime(2026, 11, 28, 2, 0, 1, tzinfo=UTC)
    timer.poll()
    world.run()
    versions = world.records.versions("tax_code", "DE01:DE-VAT19", TaxCode)
    assert [v.rate for v in versions] == [Decimal("0.19"), Decimal("0.20")]
    assert len(world.records.versions("item", "CONSULT-SR", Item)) == 1  # unchanged: no copy
