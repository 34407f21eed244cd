"""Delivery to billing: approved delivery becomes invoice lines exactly once, on both stores."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from q2c.canonical.models import (
    BillingEvent,
    BillingEventKind,
    BillingModel,
    BillingTerms,
    Contract,
    ExchangeRate,
)
from q2c.canonical.money import Money
from q2c.flows.delivery_to_billing import BATCH_INTAKE, INTAKE, RUN
from tests.flows.cash_world import CashWorld, expense, time_entry, usd

NOV = date(2026, 11, 30)


@pytest.fixture
def world(db, clock) -> CashWorld:
    w = CashWorld(db, clock)
    w.seed_reference()
    return w


def test_time_is_rated_on_the_work_date_and_each_entry_lands_on_one_line(world):
    contract = world.seed_contract("100")
    world.deliver(
        time_entry("te-1", "100", date(2026, 11, 10), "7.5"),  # v1: 200.00
        time_entry("te-2", "100", date(2026, 11, 16), "8"),  # v2: 210.00 (mid-month change)
        time_entry(
            "te-3", "100", date(2026, 11, 17), "2.25", role="Junior", service_item="CONSULT-JR"
        ),  # v2: 125.00
    )
    world.run()
    assert world.statuses(INTAKE) == {"completed": 3}
    world.bill(contract, NOV)
    world.run()
    assert world.statuses(RUN) == {"completed": 1}

    [invoice] = world.billing.invoices.values()
    amounts = sorted(line.amount.amount for line in invoice.lines)
    assert amounts == [Decimal("281.25"), Decimal("1500.00"), Decimal("1680.00")]
    assert invoice.total == usd("3461.25")
    assert invoice.status == "finalized"
    # inclusion: every event knows its invoice and line, and what it billed
    for event_id, amount in (("te-1", "1500.00"), ("te-2", "1680.00"), ("te-3", "281.25")):
        row = world.billable.inclusion(event_id)
        assert row is not None
        assert (row["status"], row["invoice_ref"], row["billed_amount"]) == (
            "billed",
            invoice.id,
            amount,
        )
    # both rate card versions billed lines, so neither can change any more
    assert world.records.used_versions("rate_card") == {("RC-US", 1), ("RC-US", 2)}
    doc = world.documents.get("invoice", invoice.id)
    assert doc is not None and (doc["amount"], doc["status"]) == ("3461.25", "finalized")


def test_entries_of_one_rate_share_a_line(world):
    contract = world.seed_contract("101")
    world.deliver(
        *[time_entry(f"te-{n}", "101", date(2026, 11, 2 + n % 10), "1.5") for n in range(40)]
    )
    world.run()
    world.bill(contract, date(2026, 11, 15))
    world.run()
    [invoice] = world.billing.invoices.values()
    [line] = invoice.lines
    assert line.quantity == Decimal("60.0")
    assert line.amount == usd("12000.00")


def test_two_contracts_of_one_customer_get_one_invoice_each(world):
    first = world.seed_contract("110", customer_key="shared")
    second = world.seed_contract("111", customer_key="shared")
    world.deliver(time_entry("te-a", "110", date(2026, 11, 10), "1"),
                  time_entry("te-b", "111", date(2026, 11, 10), "2"))
    world.run()
    world.bill(first, NOV)
    world.bill(second, NOV)
    world.run()
    invoices = {i.contract_id: i for i in world.billing.invoices.values()}
    assert invoices[first].total == usd("200.00")
    assert invoices[second].total == usd("400.00")
    assert len(world.billing.customers) == 1


def test_duplicate_delivery_and_a_repeated_billing_run_never_bill_twice(world):
    contract = world.seed_contract("102")
    entry = time_entry("te-1", "102", date(2026, 11, 10), "4")
    world.deliver(entry)
    world.deliver(entry)  # exact duplicate delivery: same source and id
    world.deliver(entry, event_ids=["psa-te-1-redelivered"])  # same entry, new event id
    world.run()
    assert world.statuses(INTAKE) == {"completed": 1}
    world.bill(contract, NOV)
    world.bill(contract, NOV)  # the same run requested twice
    world.run()
    world.bill(contract, date(2026, 12, 31))  # a later run finds nothing left to bill
    world.run()
    invoices = list(world.billing.invoices.values())
    assert len(invoices) == 1
    assert invoices[0].total == usd("800.00")
    assert world.billable.status_counts() == {"billed": 1}


def test_a_crash_between_sending_lines_and_recording_inclusion_resumes_without_rebilling(
    world, clock
):
    contract = world.seed_contract("103")
    world.deliver(time_entry("te-1", "103", date(2026, 11, 10), "3"))
    world.run()
    calls = {"n": 0}

    def finalize_fails_once(operation: str) -> None:
        if operation == "finalize_invoice" and calls["n"] == 0:
            calls["n"] += 1
            from q2c.errors import RetriableError

            raise RetriableError("billing platform timed out")

    world.billing.fault = finalize_fails_once
    world.bill(contract, NOV)
    world.run()
    clock.advance(30)
    world.run()
    assert world.statuses(RUN) == {"completed": 1}
    assert len(world.billing.items) == 1
    assert len(world.billing.invoices) == 1
    assert world.billing.item_calls == 1  # the finished step was not repeated


@pytest.mark.parametrize(
    ("event", "message", "field"),
    [
        (time_entry("te-c", "200", date(2026, 11, 10), "2"), "which is closed", "project_id"),
        (
            time_entry("te-r", "201", date(2026, 11, 10), "2", role="Architect", service_item=None),
            "no rate for role 'Architect'",
            None,
        ),
        (time_entry("te-n", "201", date(2026, 11, 10), "-2"), "negative quantity", "quantity"),
        (expense("ex-1", "201", date(2026, 11, 10), Money.of("80.00", "JPY")), "JPY", None),
    ],
    ids=["closed-project", "unknown-role", "negative-quantity", "currency-without-rate"],
)
def test_bad_delivery_is_parked_with_a_business_message_and_a_fix(world, event, message, field):
    world.seed_contract("200", project_status="closed")
    world.seed_contract("201")
    world.deliver(event)
    world.run()
    assert world.statuses(INTAKE) == {"parked": 1}
    [parked] = world.open_exceptions()
    assert message in parked.message
    assert parked.suggested_fix
    if field:
        assert parked.context["field"] == field
    assert world.billable.status_counts() == {}  # nothing half-applied


def test_not_to_exceed_bills_up_to_the_cap_and_parks_the_rest(world):
    contract = world.seed_contract("300", not_to_exceed="1000.00")
    world.deliver(
        time_entry("te-1", "300", date(2026, 11, 3), "3"),  # 600.00
        time_entry("te-2", "300", date(2026, 11, 4), "3"),  # 600.00: 400.00 fits
        time_entry("te-3", "300", date(2026, 11, 5), "1"),  # 200.00: held
    )
    world.run()
    world.bill(contract, NOV)
    world.run()
    [invoice] = world.billing.invoices.values()
    assert invoice.subtotal == usd("1000.00")
    [cap] = world.open_exceptions()
    assert "reached its not-to-exceed of 1,000.00 USD" in cap.message
    assert "change order" in cap.suggested_fix
    # the held entry stays ready: raising the cap lets the next run bill it
    assert world.billable.inclusion("te-3")["status"] == "ready"


def test_the_rest_of_an_entry_billed_in_part_is_billed_once_the_cap_is_raised(world):
    contract_id = world.seed_contract("301", not_to_exceed="1000.00")
    world.deliver(
        time_entry("te-1", "301", date(2026, 11, 3), "3"),  # 600.00
        time_entry("te-2", "301", date(2026, 11, 4), "3"),  # 600.00: 400.00 fits, 200.00 rest
        time_entry("te-3", "301", date(2026, 11, 5), "1"),  # 200.00: held whole
    )
    world.run()
    world.bill(contract_id, NOV)
    world.run()
    assert world.billable.inclusion("te-2")["billed_amount"] == "400.00"
    rest_id = "te-2:rest@ctr-301:2026-11-30"
    rest = world.billable.inclusion(rest_id)
    assert rest is not None and rest["status"] == "ready"
    world.bill(contract_id, date(2026, 12, 31))  # the cap still holds: nothing billed
    world.run()
    assert len(world.billing.invoices) == 1
    # a change order raises the cap (a new contract version)
    contract = world.records.current("contract", contract_id, Contract)
    assert contract is not None
    raised = contract.model_copy(update={"not_to_exceed": usd("5000.00")})
    with world.db.begin() as connection:
        world.records.save_in(connection, "contract", raised, canonical_id=contract_id,
                              version=2, legal_entity="US01", status="active")
    world.bill(contract_id, date(2027, 1, 31))
    world.run()
    second = [i for i in world.billing.invoices.values() if i.total != usd("1000.00")]
    assert [i.total for i in second] == [usd("400.00")]  # the 200.00 rest + te-3's 200.00
    assert world.billable.inclusion(rest_id)["billed_amount"] == "200.00"
    assert world.billable.billed_total(contract_id, "USD") == usd("1400.00")  # 600+600+200


def test_expenses_are_marked_up_converted_and_non_billable_categories_held(world):
    terms = BillingTerms(tax_code="US-EXEMPT")
    terms = terms.model_copy(
        update={
            "expenses": terms.expenses.model_copy(
                update={"markup_percent": Decimal(10), "non_billable_categories": ["entertainment"]}
            )
        }
    )
    contract = world.seed_contract("400", terms=terms)
    world.deliver(
        expense("ex-1", "400", date(2026, 11, 10), Money.of("100.00", "EUR")),
        expense("ex-2", "400", date(2026, 11, 11), usd("50.00"), category="entertainment"),
    )
    world.run()
    world.bill(contract, NOV)
    world.run()
    [invoice] = world.billing.invoices.values()
    # 100.00 EUR * 1.10 markup * 1.08 = 118.80 USD
    assert [line.amount for line in invoice.lines] == [usd("118.80")]
    assert world.billable.inclusion("ex-2")["status"] == "held"


def test_fixed_fee_installments_bill_once_each(world):
    schedule = [
        {
            "sequence": 1,
            "bill_date": date(2026, 11, 15),
            "description": "Kick-off",
            "amount": usd("4000.00"),
        },
        {
            "sequence": 2,
            "bill_date": date(2026, 12, 15),
            "description": "Delivery",
            "amount": usd("6000.00"),
        },
    ]
    contract = world.seed_contract(
        "500", model=BillingModel.FIXED_FEE, total="10000.00", schedule=schedule
    )
    world.deliver(time_entry("te-1", "500", date(2026, 11, 10), "5"))  # tracked, not billed
    world.run()
    world.bill(contract, NOV)
    world.run()
    world.bill(contract, date(2026, 12, 31))
    world.run()
    totals = sorted(i.total.amount for i in world.billing.invoices.values())
    assert totals == [Decimal("4000.00"), Decimal("6000.00")]
    assert world.billable.inclusion("te-1")["status"] == "held"


def test_milestones_bill_their_percent_of_the_contract(world):
    contract = world.seed_contract("600", model=BillingModel.MILESTONE, total="50000.00")
    world.deliver(
        BillingEvent(
            id="ms-1",
            kind=BillingEventKind.MILESTONE,
            project_id="prj-600",
            work_date=date(2026, 11, 20),
            unit="each",
            percent=Decimal(30),
            description="Design signed off",
        )
    )
    world.run()
    world.bill(contract, NOV)
    world.run()
    [invoice] = world.billing.invoices.values()
    assert invoice.total == usd("15000.00")


def test_usage_is_priced_on_graduated_tiers(world):
    from q2c.canonical.models import UsagePricing, UsageTier

    terms = BillingTerms(
        tax_code="US-EXEMPT",
        usage=UsagePricing(
            tiers=[
                UsageTier(up_to=Decimal(1000), unit_price=usd("0.50")),
                UsageTier(up_to=None, unit_price=usd("0.40")),
            ]
        ),
    )
    contract = world.seed_contract("700", model=BillingModel.USAGE, terms=terms)
    world.deliver(
        *[
            BillingEvent(
                id=f"u-{n}",
                kind=BillingEventKind.USAGE,
                project_id="prj-700",
                work_date=date(2026, 11, 1 + n),
                unit="unit",
                quantity=Decimal(600),
            )
            for n in range(3)
        ]
    )
    world.run()
    world.bill(contract, NOV)
    world.run()
    [invoice] = world.billing.invoices.values()
    # 1,000 at 0.50 + 800 at 0.40
    assert invoice.total == usd("820.00")


def test_retainer_bills_the_fee_and_carries_unused_hours(world):
    from q2c.canonical.models import RetainerBillingTerms

    terms = BillingTerms(
        tax_code="US-EXEMPT",
        retainer=RetainerBillingTerms(
            period_fee=usd("10000.00"),
            hours_allowance=Decimal(50),
            overage_rate=usd("220.00"),
            rollover_cap_hours=Decimal(10),
        ),
    )
    contract = world.seed_contract("800", model=BillingModel.RETAINER, terms=terms)
    world.deliver(time_entry("te-1", "800", date(2026, 11, 10), "44"))
    world.run()
    world.bill(contract, NOV, start=date(2026, 11, 1))
    world.run()
    world.deliver(time_entry("te-2", "800", date(2026, 12, 10), "58"))
    world.run()
    world.bill(contract, date(2026, 12, 31), start=date(2026, 12, 1))
    world.run()
    totals = sorted(i.total.amount for i in world.billing.invoices.values())
    # November: fee only, 6 h carried; December: 56 h available, 2 h overage at 220.00
    assert totals == [Decimal("10000.00"), Decimal("10440.00")]


# --- batched intake ----------------------------------------------------------------------------


def test_a_batch_records_its_good_entries_at_once_and_parks_each_bad_one_by_name(world):
    world.seed_contract("600", project_status="closed")
    contract = world.seed_contract("601")
    good = [time_entry(f"te-{n}", "601", date(2026, 11, 2 + n % 10), "2") for n in range(50)]
    bad = {
        "te-closed": (time_entry("te-closed", "600", date(2026, 11, 10), "2"), "which is closed"),
        "te-role": (
            time_entry("te-role", "601", date(2026, 11, 10), "2", role="Architect",
                       service_item=None),
            "no rate for role 'Architect'",
        ),
        "te-neg": (time_entry("te-neg", "601", date(2026, 11, 10), "-2"), "negative quantity"),
        "ex-jpy": (expense("ex-jpy", "601", date(2026, 11, 10), Money.of("80.00", "JPY")),
                   "JPY"),
    }
    entries = [*good[:25], *(event for event, _ in bad.values()), *good[25:]]
    [receipt] = world.deliver_batch("b1", *entries)
    assert receipt.status == "accepted"
    world.run()
    assert world.statuses(BATCH_INTAKE) == {"completed": 1}
    assert world.statuses(INTAKE) == {"parked": 4}  # each bad entry alone, under its own key
    parked = {e.business_key: e for e in world.open_exceptions()}
    assert set(parked) == set(bad)
    for key, (_event, words) in bad.items():
        assert words in parked[key].message
        assert parked[key].suggested_fix
        assert world.billable.inclusion(key) is None  # nothing half-applied
    assert world.billable.status_counts() == {"ready": 50}

    world.bill(contract, NOV)  # the good entries are not held up by the bad ones
    world.run()
    [invoice] = world.billing.invoices.values()
    assert invoice.total == usd(str(50 * 2 * 200) + ".00")
    assert world.billable.status_counts() == {"billed": 50}


def test_batches_that_repeat_entries_record_and_bill_each_entry_once(world):
    contract = world.seed_contract("602")
    first = [time_entry(f"te-{n}", "602", date(2026, 11, 3), "1") for n in range(10)]
    world.deliver_batch("b1", *first)
    assert [r.status for r in world.deliver_batch("b1", *first)] == ["duplicate"]
    # a later page overlaps the first, and repeats an entry inside itself
    world.deliver_batch("b2", *first[5:], first[9], time_entry("te-new", "602",
                                                                  date(2026, 11, 4), "1"))
    world.deliver(first[0])  # the same entry alone, too
    world.run()
    assert world.statuses(BATCH_INTAKE) == {"completed": 2}
    assert world.billable.status_counts() == {"ready": 11}
    world.bill(contract, NOV)
    world.run()
    [invoice] = world.billing.invoices.values()
    assert invoice.total == usd("2200.00")
    assert world.billable.status_counts() == {"billed": 11}


def test_a_parked_entry_from_a_batch_replays_alone_once_its_fix_is_in(world):
    contract = world.seed_contract("603")
    world.deliver_batch(
        "b1",
        time_entry("te-ok", "603", date(2026, 11, 5), "1"),
        expense("ex-jpy", "603", date(2026, 11, 5), Money.of("8000", "JPY")),
    )
    world.run()
    [parked] = world.open_exceptions()
    rate = ExchangeRate(base="JPY", quote="USD", rate=Decimal("0.0065"),
                        effective_date=date(2026, 11, 1))
    with world.db.begin() as connection:
        world.records.save_in(connection, "exchange_rate", rate, canonical_id="JPYUSD:2026-11-01")
    world.engine.replay(parked.transaction_id, by="ops", reason="JPY rate loaded")
    world.run()
    assert world.statuses(INTAKE) == {"completed": 1}
    world.bill(contract, NOV)
    world.run()
    [invoice] = world.billing.invoices.values()
    assert sorted(line.amount.amount for line in invoice.lines) == [Decimal("52.00"),
                                                                     Decimal("200.00")]


def test_past_the_platforms_line_limit_expenses_pool_into_one_line_per_kind(world):
    world.billing.max_invoice_lines = 5
    contract = world.seed_contract("700")
    expenses = [
        expense(f"ex-{n}", "700", date(2026, 11, 3 + n % 20), usd(f"{10 + n}.25"))
        for n in range(12)
    ]
    world.deliver(time_entry("te-1", "700", date(2026, 11, 3), "2"), *expenses)
    world.run()
    world.bill(contract, NOV)
    world.run()
    assert world.statuses(RUN) == {"completed": 1}
    [invoice] = world.billing.invoices.values()
    assert len(invoice.lines) == 2  # the time line, and one pooled expense line
    pooled = next(line for line in invoice.lines if "12 items" in line.description)
    expected = sum(Decimal(f"{10 + n}.25") for n in range(12))
    assert (pooled.quantity, pooled.amount) == (Decimal(1), usd(str(expected)))
    assert invoice.total == usd(str(expected + 400))
    # every expense still knows what it billed and on which line
    row = world.billable.inclusion("ex-3")
    assert (row["status"], row["billed_amount"]) == ("billed", "13.25")


def test_a_run_still_over_the_line_limit_is_parked_not_split(world):
    world.billing.max_invoice_lines = 1
    contract = world.seed_contract("701")
    world.deliver(
        time_entry("te-1", "701", date(2026, 11, 3), "2"),
        time_entry("te-2", "701", date(2026, 11, 3), "2", role="Junior",
                   service_item="CONSULT-JR"),
    )
    world.run()
    world.bill(contract, NOV)
    world.run()
    [parked] = world.open_exceptions()
    assert "has 2 invoice lines even after consolidation" in parked.message
    assert "at most 1 per invoice" in parked.message
    assert world.billing.invoices == {}
    assert world.billable.status_counts() == {"ready": 2}


def test_batch_rows_read_back_like_rows_written_one_at_a_time(world, clock):
    world.seed_contract("604")
    world.deliver(time_entry("te-single", "604", date(2026, 11, 5), "1"))
    world.deliver_batch("b1", time_entry("te-batch", "604", date(2026, 11, 5), "1"))
    world.run()
    single, batch = world.billable.inclusion("te-single"), world.billable.inclusion("te-batch")
    assert single is not None and batch is not None
    for key in ("kind", "contract_id", "project_id", "legal_entity", "work_date", "status"):
        assert single[key] == batch[key], key
    assert batch["recorded_at"] == clock() and batch["recorded_at"].tzinfo is not None
    assert world.billable.ready_for("ctr-604", through=NOV)[1].id == "te-single"
