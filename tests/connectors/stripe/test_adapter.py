"""The Stripe billing adapter against its emulator: idempotency, money, mapping, polling."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from q2c.canonical.models import Address
from q2c.canonical.money import Money
from q2c.connectors.sandbox import Fault
from q2c.connectors.stripe.adapter import EventCursor, StripeBilling
from q2c.connectors.stripe.sandbox import StripeSandbox
from q2c.errors import (
    AuthError,
    MappingMissingError,
    NotFoundError,
    RateLimitedError,
    RetriableError,
    ValidationError,
)
from q2c.flows.ports import BillingPort
from q2c.pricing.rating import line_amount
from tests.connectors.stripe.helpers import DUE, Clock, Wire, customer, line, new_draft


@pytest.fixture
def cus(billing: StripeBilling) -> str:
    return billing.upsert_customer(customer("C-1"), external_id="q2c-C-1").billing_id


@pytest.fixture
def draft(billing: StripeBilling, cus: str) -> str:
    """The billing run's empty draft invoice for ``cus``, created before any line is sent."""
    return new_draft(billing, cus, "q2c-run-1")


def keys_on(sandbox: StripeSandbox, invoice_id: str) -> list[str]:
    """The q2c keys of an invoice's line items, as Stripe holds them (in line order)."""
    return [x["metadata"]["q2c_key"] for x in sandbox.state.invoice_lines[invoice_id]]


def test_adapter_implements_the_billing_port(billing: StripeBilling) -> None:
    assert isinstance(billing, BillingPort)
    assert billing.system == "stripe"


# --- customers ---------------------------------------------------------------------------


def test_upsert_customer_finds_then_updates(billing: StripeBilling, sandbox: StripeSandbox) -> None:
    first = billing.upsert_customer(customer("C-9"), external_id="q2c-C-9")
    renamed = customer("C-9", legal_name="Renamed Holdings Ltd")
    second = billing.upsert_customer(renamed, external_id="q2c-C-9")
    assert second.billing_id == first.billing_id
    assert sandbox.count("customer", q2c_id="q2c-C-9") == 1
    assert sandbox.state.objects[first.billing_id]["name"] == "Renamed Holdings Ltd"
    assert sandbox.state.objects[first.billing_id]["metadata"]["q2c_legal_entity"] == "US01"


def test_customer_details_are_sent(billing: StripeBilling, sandbox: StripeSandbox) -> None:
    address = Address(
        line1="1 Market St", city="San Francisco", region="CA", postal_code="94105", country="US"
    )
    ref = billing.upsert_customer(
        customer("C-5", billing_address=address, tax_id="US-12-3456789", phone="+1 415 555 0100"),
        external_id="q2c-C-5",
    )
    stored = sandbox.state.objects[ref.billing_id]
    assert stored["address"] == {
        "line1": "1 Market St",
        "line2": None,
        "city": "San Francisco",
        "state": "CA",
        "postal_code": "94105",
        "country": "US",
    }
    assert (stored["phone"], stored["email"]) == ("+1 415 555 0100", "ap+c-5@example.com")
    assert stored["metadata"] == {
        "q2c_id": "q2c-C-5",
        "q2c_legal_entity": "US01",
        "q2c_tax_id": "US-12-3456789",
    }


def test_customer_create_timing_out_is_not_duplicated(
    billing: StripeBilling, sandbox: StripeSandbox
) -> None:
    sandbox.faults.inject(Fault("timeout", path="/v1/customers", method="POST", delay=5.0))
    with pytest.raises(RetriableError):
        billing.upsert_customer(customer("C-7"), external_id="q2c-C-7")
    assert sandbox.count("customer", q2c_id="q2c-C-7") == 1  # Stripe applied it
    billing.upsert_customer(customer("C-7"), external_id="q2c-C-7")
    assert sandbox.count("customer", q2c_id="q2c-C-7") == 1


def test_customer_changed_between_attempts_is_found_not_duplicated(
    billing: StripeBilling, sandbox: StripeSandbox, clock: Clock
) -> None:
    sandbox.state.search_lag_seconds = 60  # Stripe's search trails writes
    sandbox.faults.inject(Fault("timeout", path="/v1/customers", method="POST", delay=5.0))
    with pytest.raises(RetriableError):
        billing.upsert_customer(customer("C-8"), external_id="q2c-C-8")
    # not searchable yet, and the data changed: Stripe refuses the key with other parameters
    with pytest.raises(RetriableError) as info:
        billing.upsert_customer(customer("C-8", legal_name="Other"), external_id="q2c-C-8")
    assert "not indexed" in info.value.message
    assert sandbox.count("customer", q2c_id="q2c-C-8") == 1
    clock.advance(61)
    ref = billing.upsert_customer(customer("C-8", legal_name="Other"), external_id="q2c-C-8")
    assert sandbox.count("customer", q2c_id="q2c-C-8") == 1
    assert sandbox.state.objects[ref.billing_id]["name"] == "Other"


def test_same_retry_is_covered_by_the_key_while_search_lags(
    billing: StripeBilling, sandbox: StripeSandbox
) -> None:
    sandbox.state.search_lag_seconds = 60
    first = billing.upsert_customer(customer("C-6"), external_id="q2c-C-6")
    again = billing.upsert_customer(customer("C-6"), external_id="q2c-C-6")  # search: nothing
    assert again.billing_id == first.billing_id
    assert sandbox.count("customer", q2c_id="q2c-C-6") == 1


# --- invoice items ---------------------------------------------------------------------------


def test_same_lines_twice_leave_one_item_each(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str, draft: str
) -> None:
    lines = [line(f"run1-L{n}", f"{100 * n}.00") for n in range(1, 6)]
    first = billing.add_invoice_items(cus, lines, invoice_id=draft)
    second = billing.add_invoice_items(cus, lines, invoice_id=draft)
    assert [i.billing_id for i in first] == [i.billing_id for i in second]
    assert len({i.billing_id for i in first}) == 5
    assert {i.invoice_id for i in first + second} == {draft}
    assert sandbox.count("invoiceitem") == 5
    for n in range(1, 6):
        assert sandbox.count("invoiceitem", q2c_key=f"run1-L{n}") == 1
    assert keys_on(sandbox, draft) == [f"run1-L{n}" for n in range(1, 6)]
    assert sandbox.state.objects[draft]["subtotal"] == 150000


def test_lines_stay_single_after_stripe_forgot_the_idempotency_keys(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str, draft: str
) -> None:
    lines = [line(f"run2-L{n}", "50.00") for n in range(1, 8)]  # more than one page (3)
    first = billing.add_invoice_items(cus, lines, invoice_id=draft)
    assert sandbox.forget_idempotency_keys() >= 8  # the draft's and the seven items' keys
    again = billing.add_invoice_items(cus, lines, invoice_id=draft)
    assert [i.billing_id for i in again] == [i.billing_id for i in first]
    assert sandbox.count("invoiceitem") == 7
    assert sorted(keys_on(sandbox, draft)) == sorted(x.external_id for x in lines)


def test_item_create_timing_out_is_not_duplicated(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str, draft: str
) -> None:
    sandbox.faults.inject(Fault("timeout", path="/v1/invoiceitems", method="POST", delay=5.0))
    lines = [line("run3-L1", "10.00"), line("run3-L2", "20.00")]
    with pytest.raises(RetriableError):
        billing.add_invoice_items(cus, lines, invoice_id=draft)
    assert keys_on(sandbox, draft) == ["run3-L1"]  # Stripe applied it before the timeout
    items = billing.add_invoice_items(cus, lines, invoice_id=draft)
    assert sandbox.count("invoiceitem") == 2
    assert [i.external_id for i in items] == ["run3-L1", "run3-L2"]
    assert keys_on(sandbox, draft) == ["run3-L1", "run3-L2"]
    assert sandbox.state.objects[draft]["subtotal"] == 3000


def test_line_details_travel_in_metadata(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str, draft: str
) -> None:
    ids = ",".join(f"evt-{n:03d}" for n in range(40))
    item = billing.add_invoice_items(
        cus,
        [
            line(
                "run4-L1",
                "1125.00",
                quantity="7.5",
                unit_price="150.00",
                metadata={"q2c_rate_card": "RC-7@v3", "q2c_event_ids": ids},
            )
        ],
        invoice_id=draft,
    )[0]
    stored = sandbox.state.objects[item.billing_id]
    assert stored["invoice"] == draft
    assert stored["amount"] == 112500
    assert stored["currency"] == "usd"
    assert stored["metadata"]["q2c_quantity"] == "7.5"
    assert stored["metadata"]["q2c_unit_price"] == "150.00"
    assert stored["metadata"]["q2c_service_item"] == "CONSULT-SR"
    assert stored["metadata"]["q2c_event_ids"].split(",") == ids.split(",")


def test_event_ids_beyond_metadata_limits_are_chunked_or_counted(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str, draft: str
) -> None:
    some = ",".join(f"evt-{n:05d}" for n in range(120))  # ~1,200 characters: 3 chunks
    many = ",".join(f"evt-{n:05d}" for n in range(5000))  # far beyond 50 x 500 characters
    items = billing.add_invoice_items(
        cus,
        [
            line("run5-L1", "1.00", metadata={"q2c_event_ids": some}),
            line("run5-L2", "1.00", metadata={"q2c_event_ids": many}),
        ],
        invoice_id=draft,
    )
    chunked = sandbox.state.objects[items[0].billing_id]["metadata"]
    joined = ",".join(chunked[k] for k in ("q2c_event_ids", "q2c_event_ids_2", "q2c_event_ids_3"))
    assert joined == some
    assert all(len(v) <= 500 for v in chunked.values())
    counted = sandbox.state.objects[items[1].billing_id]["metadata"]
    assert counted["q2c_event_ids_omitted"] == "5000"
    assert "q2c_event_ids" not in counted


def test_metadata_stripe_would_refuse_is_refused_before_sending(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str, draft: str
) -> None:
    crowded = {f"q2c_extra_{n}": "x" for n in range(48)}
    with pytest.raises(ValidationError) as too_many:
        billing.add_invoice_items(
            cus,
            [line("ok-1", "1.00"), line("bad-1", "1.00", metadata=crowded)],
            invoice_id=draft,
        )
    assert "metadata keys" in too_many.value.message
    with pytest.raises(ValidationError) as long_key:
        billing.add_invoice_items(
            cus, [line("bad-2", "1.00", metadata={"k" * 41: "v"})], invoice_id=draft
        )
    assert long_key.value.field == f"metadata[{'k' * 41}]"
    assert sandbox.count("invoiceitem") == 0  # nothing half-sent
    assert keys_on(sandbox, draft) == []


def test_invoice_metadata_stripe_would_refuse_is_refused_before_sending(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str
) -> None:
    with pytest.raises(ValidationError):
        billing.create_invoice(
            cus,
            external_id="q2c-run-meta",
            currency="USD",
            due_date=DUE,
            memo="Run",
            metadata={"q2c_contract_id": "K" * 501},
        )
    assert sandbox.state.all_of("invoice") == []


def test_two_lines_with_one_external_id_are_refused(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str, draft: str
) -> None:
    with pytest.raises(ValidationError) as info:
        billing.add_invoice_items(
            cus, [line("dup-1", "1.00"), line("dup-1", "2.00")], invoice_id=draft
        )
    assert info.value.field == "external_id"
    assert sandbox.count("invoiceitem") == 0


def test_amount_finer_than_the_currency_is_refused(
    billing: StripeBilling, cus: str, draft: str
) -> None:
    with pytest.raises(ValidationError) as info:
        billing.add_invoice_items(cus, [line("fine-1", "10.005")], invoice_id=draft)
    assert "smallest unit" in info.value.message


def test_one_tax_rate_per_tax_code_is_created_and_reused(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str, draft: str
) -> None:
    billing.add_invoice_items(
        cus, [line("tx-1", "100.00", tax_code="DE-VAT19", tax_rate="0.19")], invoice_id=draft
    )
    billing.add_invoice_items(
        cus, [line("tx-2", "100.00", tax_code="DE-VAT19", tax_rate="0.19")], invoice_id=draft
    )
    rates = sandbox.state.all_of("tax_rate")
    assert len(rates) == 1
    assert rates[0]["percentage"] == 19
    assert rates[0]["inclusive"] is False
    assert rates[0]["metadata"] == {"q2c_tax_code": "DE-VAT19"}
    items = sandbox.state.all_of("invoiceitem")
    assert len(items) == 2
    assert all(i["_tax_rates"] == [rates[0]["id"]] for i in items)


def test_changed_rate_creates_a_new_tax_rate_and_archives_the_old(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str
) -> None:
    january = new_draft(billing, cus, "q2c-run-jan")
    billing.add_invoice_items(
        cus, [line("r-1", "100.00", tax_code="UK-VAT", tax_rate="0.175")], invoice_id=january
    )
    billing.finalize_invoice(january)
    february = new_draft(billing, cus, "q2c-run-feb")
    billing.add_invoice_items(
        cus, [line("r-2", "100.00", tax_code="UK-VAT", tax_rate="0.20")], invoice_id=february
    )
    by_percentage = {r["percentage"]: r["active"] for r in sandbox.state.all_of("tax_rate")}
    assert by_percentage == {17.5: False, 20: True}
    assert billing.fetch_invoice(january).tax_total == Money.of("17.50", "USD")
    assert billing.finalize_invoice(february).tax_total == Money.of("20.00", "USD")


def test_one_code_with_two_rates_in_one_run_is_refused(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str, draft: str
) -> None:
    with pytest.raises(ValidationError) as info:
        billing.add_invoice_items(
            cus,
            [
                line("tw-1", "1.00", tax_code="VAT", tax_rate="0.2"),
                line("tw-2", "1.00", tax_code="VAT", tax_rate="0.19"),
            ],
            invoice_id=draft,
        )
    assert "two rates" in info.value.message
    assert sandbox.state.all_of("tax_rate") == []
    assert sandbox.count("invoiceitem") == 0


def test_tax_code_without_rate_needs_a_mapping(
    billing: StripeBilling, cus: str, draft: str
) -> None:
    with pytest.raises(MappingMissingError):
        billing.add_invoice_items(cus, [line("m-1", "1.00", tax_code="NOWHERE")], invoice_id=draft)


# --- draft first: a run's invoice holds its own lines only ------------------------------------


def test_draft_is_created_empty_even_when_the_customer_has_pending_items(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str
) -> None:
    sandbox.seed_pending_items(cus, [700, 800])
    draft = new_draft(billing, cus, "q2c-run-empty")
    stored = sandbox.state.objects[draft]
    assert (stored["status"], stored["subtotal"], stored["total"]) == ("draft", 0, 0)
    assert keys_on(sandbox, draft) == []
    assert billing.invoice_items(draft) == []


def test_two_runs_for_one_customer_each_invoice_only_their_own_lines(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str
) -> None:
    """Two contracts billed in parallel for one customer: two drafts, no mixing."""
    k1 = [line("K1-L1", "100.00"), line("K1-L2", "200.00"), line("K1-L3", "300.00")]
    k2 = [line("K2-L1", "40.00"), line("K2-L2", "2.00")]
    # interleaved, as two concurrent runs would send them
    first = new_draft(billing, cus, "q2c-run-K1", contract_id="K-1")
    billing.add_invoice_items(cus, k1[:2], invoice_id=first)
    second = new_draft(billing, cus, "q2c-run-K2", contract_id="K-2")
    second_items = billing.add_invoice_items(cus, k2, invoice_id=second)
    billing.add_invoice_items(cus, k1, invoice_id=first)  # the first run's retry
    assert keys_on(sandbox, first) == ["K1-L1", "K1-L2", "K1-L3"]
    assert keys_on(sandbox, second) == ["K2-L1", "K2-L2"]

    invoice = billing.finalize_invoice(first)
    assert invoice.contract_id == "K-1"
    assert [x.description for x in invoice.lines] == [x.description for x in k1]
    assert invoice.subtotal == Money.of("600.00", "USD")
    # the other run's draft and items are as they were: still a draft, still editable
    assert sandbox.state.objects[second]["status"] == "draft"
    assert sandbox.state.objects[second]["subtotal"] == 4200
    assert [sandbox.state.objects[i.billing_id]["invoice"] for i in second_items] == [
        second,
        second,
    ]
    assert billing.pending_invoice_items(cus) == []

    again = billing.add_invoice_items(cus, k2, invoice_id=second)  # the second run's retry
    assert [i.billing_id for i in again] == [i.billing_id for i in second_items]
    other = billing.finalize_invoice(second)
    assert other.contract_id == "K-2"
    assert [x.description for x in other.lines] == [x.description for x in k2]
    assert other.total == Money.of("42.00", "USD")
    assert other.number != invoice.number
    assert sandbox.count("invoiceitem") == 5


def test_pending_items_made_outside_q2c_are_not_swept_into_its_invoice(
    billing: StripeBilling, sandbox: StripeSandbox, wire: Wire, cus: str
) -> None:
    foreign = sandbox.seed_pending_items(cus, [700, 800], description="Set up by hand")
    draft = new_draft(billing, cus, "q2c-run-own")
    billing.add_invoice_items(cus, [line("own-1", "10.00")], invoice_id=draft)
    invoice = billing.finalize_invoice(draft)
    assert [x.description for x in invoice.lines] == ["Services own-1"]
    assert invoice.total == Money.of("10.00", "USD")
    assert sandbox.state.objects[draft]["total"] == 1000
    pending = billing.pending_invoice_items(cus)
    assert sorted(str(i["id"]) for i in pending) == sorted(foreign)
    # still there for whoever owns them: the next invoice that includes pending items
    theirs = wire.ok(
        wire.post(
            "/v1/invoices",
            {"customer": cus, "pending_invoice_items_behavior": "include"},
        )
    )
    assert theirs["subtotal"] == 1500


def test_lines_resent_to_the_draft_after_a_timeout_stay_single_beyond_24_hours(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str, draft: str
) -> None:
    """The timed-out run is replayed after Stripe forgot its keys: only the lines already on
    the draft (``GET /v1/invoiceitems?invoice=``) keep it from sending them twice."""
    lines = [line(f"late-{n}", f"{n}.00") for n in range(1, 6)]
    billing.add_invoice_items(cus, lines[:2], invoice_id=draft)  # a first attempt got this far
    sandbox.faults.inject(Fault("timeout", path="/v1/invoiceitems", method="POST", delay=5.0))
    with pytest.raises(RetriableError):
        billing.add_invoice_items(cus, lines, invoice_id=draft)
    assert keys_on(sandbox, draft) == ["late-1", "late-2", "late-3"]  # the third timed out
    sandbox.forget_idempotency_keys()
    items = billing.add_invoice_items(cus, lines, invoice_id=draft)
    assert [i.external_id for i in items] == [x.external_id for x in lines]
    assert keys_on(sandbox, draft) == [x.external_id for x in lines]
    assert sandbox.count("invoiceitem") == 5
    assert billing.finalize_invoice(draft).subtotal == Money.of("15.00", "USD")


def test_replaying_a_finished_run_sends_nothing_again(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str
) -> None:
    lines = [line("done-1", "10.00"), line("done-2", "20.00")]
    draft = new_draft(billing, cus, "q2c-run-done")
    billed = billing.add_invoice_items(cus, lines, invoice_id=draft)
    first = billing.finalize_invoice(draft)
    sandbox.forget_idempotency_keys()
    assert new_draft(billing, cus, "q2c-run-done") == draft
    assert billing.add_invoice_items(cus, lines, invoice_id=draft) == billed
    again = billing.finalize_invoice(draft)
    assert (again.number, again.total) == (first.number, first.total)
    assert sandbox.count("invoiceitem") == 2
    assert sandbox.count("invoice") == 1


def test_new_line_for_a_finalized_invoice_is_refused(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str, draft: str
) -> None:
    billing.add_invoice_items(cus, [line("fin-1", "10.00")], invoice_id=draft)
    billing.finalize_invoice(draft)
    with pytest.raises(ValidationError) as info:
        billing.add_invoice_items(
            cus, [line("fin-1", "10.00"), line("fin-2", "5.00")], invoice_id=draft
        )
    assert info.value.context["stripe_code"] == "invoice_not_editable"
    assert "draft" in info.value.message
    assert sandbox.count("invoiceitem") == 1
    assert sandbox.state.objects[draft]["total"] == 1000


def test_line_in_another_currency_than_the_draft_is_refused(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str, draft: str
) -> None:
    with pytest.raises(ValidationError) as info:
        billing.add_invoice_items(cus, [line("eur-1", "10.00", currency="EUR")], invoice_id=draft)
    assert info.value.field == "invoice"
    assert "currency" in info.value.message
    assert sandbox.count("invoiceitem") == 0


# --- invoices: totals, tax, mapping --------------------------------------------------------


def test_totals_follow_stripes_per_line_half_up_rounding(
    billing: StripeBilling, cus: str, draft: str
) -> None:
    """Stripe's own example: 0.43 and 4.84 at 15 % -> 0.0645 -> 0.06, 0.726 -> 0.73."""
    billing.add_invoice_items(
        cus,
        [
            line("st-1", "0.43", tax_code="T15", tax_rate="0.15"),
            line("st-2", "4.84", tax_code="T15", tax_rate="0.15"),
        ],
        invoice_id=draft,
    )
    invoice = billing.finalize_invoice(draft)
    assert invoice.subtotal == Money.of("5.27", "USD")
    assert invoice.tax_total == Money.of("0.79", "USD")
    assert invoice.total == Money.of("6.06", "USD")
    assert [x.tax_amount for x in invoice.lines] == [
        Money.of("0.06", "USD"),
        Money.of("0.73", "USD"),
    ]


def test_totals_match_q2c_rating_to_the_cent(billing: StripeBilling, cus: str, draft: str) -> None:
    amounts = ["1234.56", "0.05", "999.99", "17.35", "250.10"]
    rate = Decimal("0.0725")
    billing.add_invoice_items(
        cus,
        [line(f"q-{n}", a, tax_code="CA", tax_rate=str(rate)) for n, a in enumerate(amounts)],
        invoice_id=draft,
    )
    invoice = billing.finalize_invoice(draft)
    expected_tax = Money.total(
        (line_amount(rate, Money.of(a, "USD"), "half_up") for a in amounts), "USD"
    )
    assert invoice.tax_total == expected_tax
    assert invoice.subtotal == Money.total((Money.of(a, "USD") for a in amounts), "USD")
    assert invoice.total == invoice.subtotal + expected_tax


def test_zero_decimal_currency_is_sent_in_whole_units(
    billing: StripeBilling, sandbox: StripeSandbox
) -> None:
    jp = billing.upsert_customer(
        customer("JP-1", country="JP", currency="JPY"), external_id="q2c-JP-1"
    ).billing_id
    draft = new_draft(billing, jp, "q2c-run-jp", currency="JPY")
    assert sandbox.state.objects[draft]["currency"] == "jpy"
    items = billing.add_invoice_items(
        jp,
        [
            line("jp-1", "10000", currency="JPY", tax_code="JP-CT10", tax_rate="0.10"),
            line("jp-2", "3333", currency="JPY", tax_code="JP-CT10", tax_rate="0.10"),
        ],
        invoice_id=draft,
    )
    assert sandbox.state.objects[items[0].billing_id]["amount"] == 10000
    assert sandbox.state.objects[items[0].billing_id]["currency"] == "jpy"
    invoice = billing.finalize_invoice(draft)
    assert invoice.currency == "JPY"
    assert invoice.subtotal == Money.of("13333", "JPY")
    assert invoice.tax_total == Money.of("1333", "JPY")  # 1000 + 333.3 -> 333
    assert invoice.total == Money.of("14666", "JPY")
    assert invoice.tax_lines[0].base == Money.of("13333", "JPY")


def test_invoice_maps_to_the_canonical_invoice(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str, clock: Clock
) -> None:
    invoice_id = new_draft(billing, cus, "q2c-run-map")
    billing.add_invoice_items(
        cus,
        [
            line(
                "map-1",
                "1500.00",
                quantity="10",
                unit_price="150.00",
                tax_code="VAT20",
                tax_rate="0.20",
                metadata={"q2c_rate_card": "RC-1@v4", "q2c_event_ids": "be-1,be-2"},
            ),
            line("map-2", "80.00", service_item="EXPENSE", tax_code="EXEMPT", tax_rate="0"),
        ],
        invoice_id=invoice_id,
    )
    invoice = billing.finalize_invoice(invoice_id)
    stripe_invoice = sandbox.state.objects[invoice_id]
    prefix = sandbox.state.objects[cus]["invoice_prefix"]
    assert invoice.id == invoice_id
    assert invoice.xrefs == {"stripe": invoice_id}
    assert invoice.customer_id == cus
    assert invoice.number == f"{prefix}-0001"
    assert invoice.legal_entity == "US01"
    assert invoice.contract_id == "K-1"
    assert invoice.status == "finalized"
    assert invoice.issue_date == datetime.fromtimestamp(clock.now, UTC).date()
    assert invoice.due_date == DUE
    first, second = invoice.lines
    assert (first.service_item, first.quantity, first.unit_price) == (
        "CONSULT-SR",
        Decimal("10"),
        Money.of("150.00", "USD"),
    )
    assert first.billing_event_ids == ["be-1", "be-2"]
    assert (first.rate_card_id, first.rate_card_version) == ("RC-1", 4)
    assert first.tax_code == "VAT20" and first.tax_amount == Money.of("300.00", "USD")
    assert second.service_item == "EXPENSE" and second.tax_amount == Money.zero("USD")
    assert [(t.tax_code, t.rate, t.base, t.amount) for t in invoice.tax_lines] == [
        ("EXEMPT", Decimal(0), Money.of("80.00", "USD"), Money.zero("USD")),
        ("VAT20", Decimal("0.2"), Money.of("1500.00", "USD"), Money.of("300.00", "USD")),
    ]
    assert invoice.total == Money.from_minor(stripe_invoice["total"], "USD")
    sandbox.pay(invoice_id, out_of_band=True)
    assert billing.fetch_invoice(invoice_id).status == "paid"


def test_invoice_with_many_lines_is_read_across_line_pages(
    billing: StripeBilling, cus: str, draft: str
) -> None:
    lines = [line(f"many-{n:02d}", f"{n}.00") for n in range(1, 26)]
    billing.add_invoice_items(cus, lines, invoice_id=draft)
    invoice = billing.finalize_invoice(draft)
    assert [x.description for x in invoice.lines] == [x.description for x in lines]
    assert invoice.subtotal == Money.of(str(sum(range(1, 26))), "USD")


def test_create_invoice_is_idempotent_beyond_stripes_24_hours(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str
) -> None:
    first = new_draft(billing, cus, "q2c-run-ci")
    billing.add_invoice_items(cus, [line("ci-1", "10.00")], invoice_id=first)
    sandbox.forget_idempotency_keys()
    assert new_draft(billing, cus, "q2c-run-ci") == first
    billing.add_invoice_items(cus, [line("ci-1", "10.00")], invoice_id=first)
    assert sandbox.count("invoice", q2c_key="q2c-run-ci") == 1
    assert sandbox.count("invoiceitem") == 1
    assert sandbox.state.objects[first]["subtotal"] == 1000


def test_create_invoice_timing_out_is_not_duplicated(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str
) -> None:
    sandbox.state.search_lag_seconds = 60  # the retry cannot find it by search
    sandbox.faults.inject(Fault("timeout", path="/v1/invoices", method="POST", delay=5.0))
    with pytest.raises(RetriableError):
        new_draft(billing, cus, "q2c-run-to")
    invoice_id = new_draft(billing, cus, "q2c-run-to")
    assert sandbox.count("invoice", q2c_key="q2c-run-to") == 1
    billing.add_invoice_items(cus, [line("to-1", "10.00")], invoice_id=invoice_id)
    assert sandbox.state.objects[invoice_id]["subtotal"] == 1000


def test_finalize_is_repeatable(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str, draft: str
) -> None:
    billing.add_invoice_items(cus, [line("fz-1", "10.00")], invoice_id=draft)
    first = billing.finalize_invoice(draft)
    sandbox.forget_idempotency_keys()
    again = billing.finalize_invoice(draft)
    assert again.number == first.number
    assert len(sandbox.events("invoice.finalized")) == 1


def test_erp_reference_is_written_to_the_invoice(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str, draft: str
) -> None:
    billing.add_invoice_items(cus, [line("erp-1", "10.00")], invoice_id=draft)
    billing.finalize_invoice(draft)
    billing.record_erp_reference(draft, erp_system="netsuite", erp_number="INV-1042")
    metadata = sandbox.state.objects[draft]["metadata"]
    assert metadata["q2c_erp_netsuite"] == "INV-1042"
    assert metadata["q2c_key"] == "q2c-run-1"


# --- polling ---------------------------------------------------------------------------------


def _finalized(billing: StripeBilling, sandbox: StripeSandbox, n: int, tag: str) -> list[str]:
    ids = []
    for k in range(n):
        c = sandbox.seed_customer(f"{tag} {k}")
        invoice_id = new_draft(billing, c, f"q2c-{tag}-{k}")
        billing.add_invoice_items(c, [line(f"{tag}-{k}", f"{k + 1}.00")], invoice_id=invoice_id)
        billing.finalize_invoice(invoice_id)
        ids.append(invoice_id)
    return ids


def test_polling_finalized_invoices_pages_and_resumes(
    billing: StripeBilling, sandbox: StripeSandbox, clock: Clock
) -> None:
    first_batch = _finalized(billing, sandbox, 7, "poll-a")  # all in one second, 3 per page
    page = billing.finalized_invoices_since(None)
    assert [i.id for i in page.invoices] == first_batch
    assert billing.finalized_invoices_since(page.watermark).invoices == []
    later_same_second = _finalized(billing, sandbox, 2, "poll-b")
    clock.advance(5)
    next_second = _finalized(billing, sandbox, 1, "poll-c")
    resumed = billing.finalized_invoices_since(page.watermark)
    assert [i.id for i in resumed.invoices] == later_same_second + next_second
    cursor = EventCursor.parse(resumed.watermark)
    assert cursor is not None and cursor.created == int(clock.now)
    assert billing.finalized_invoices_since(resumed.watermark).invoices == []


def test_polling_payments_maps_methods_and_applications(
    billing: StripeBilling, sandbox: StripeSandbox, wire: Wire, cus: str
) -> None:
    card, wire_paid = _finalized(billing, sandbox, 2, "pay")
    sandbox.pay(card, payment_method="pm_card_visa")
    sandbox.pay(wire_paid, out_of_band=True)
    wire.ok(
        wire.post(
            "/v1/payment_intents",
            {
                "amount": 4200,
                "currency": "usd",
                "customer": cus,
                "confirm": True,
                "payment_method": "pm_usBankAccount_success",
            },
        )
    )
    page = billing.payments_since(None)
    by_method = {p.method: p for p in page.payments}
    assert set(by_method) == {"card", "other", "ach"}
    assert by_method["card"].applications[0].invoice_id == card
    assert by_method["card"].amount == by_method["card"].applications[0].amount
    assert by_method["card"].reference and by_method["card"].reference.startswith("ch_")
    assert by_method["other"].applications[0].invoice_id == wire_paid
    assert by_method["ach"].applications == []
    assert by_method["ach"].amount == Money.of("42.00", "USD")
    assert billing.payments_since(page.watermark).payments == []


def test_bad_watermark_is_a_validation_error(billing: StripeBilling) -> None:
    with pytest.raises(ValidationError):
        billing.finalized_invoices_since("yesterday")


# --- errors --------------------------------------------------------------------------------


def test_missing_customer_is_not_found(billing: StripeBilling, draft: str) -> None:
    with pytest.raises(NotFoundError) as on_invoice:
        new_draft(billing, "cus_nobody", "q2c-run-nf")
    assert "customer" in on_invoice.value.message
    assert on_invoice.value.field == "customer"
    with pytest.raises(NotFoundError) as on_item:
        billing.add_invoice_items("cus_nobody", [line("nf-1", "1.00")], invoice_id=draft)
    assert "customer" in on_item.value.message
    assert on_item.value.field == "customer"


def test_missing_draft_is_not_found(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str
) -> None:
    with pytest.raises(NotFoundError) as info:
        billing.add_invoice_items(cus, [line("nd-1", "1.00")], invoice_id="in_nobody")
    assert info.value.field == "invoice"
    assert sandbox.count("invoiceitem") == 0


def test_rate_limit_through_the_adapter(billing: StripeBilling, sandbox: StripeSandbox) -> None:
    sandbox.faults.inject(Fault("rate_limit", retry_after=3))
    with pytest.raises(RateLimitedError) as info:
        billing.tax_rates(refresh=True)
    assert info.value.retry_after == 3


def test_rolled_key_without_a_key_source_is_fatal(
    billing: StripeBilling, sandbox: StripeSandbox
) -> None:
    sandbox.roll_api_key()
    with pytest.raises(AuthError) as info:
        billing.tax_rates(refresh=True)
    assert "Expired API Key" in info.value.detail


# --- usage and retainers -------------------------------------------------------------------


def test_usage_is_reported_once_per_external_id(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str, clock: Clock
) -> None:
    when = datetime.fromtimestamp(clock.now - 3600, UTC)
    for _ in range(2):
        billing.report_usage(
            cus,
            event_name="api_calls",
            quantity=Decimal("12.5"),
            occurred_at=when,
            external_id="usage-2026-01-01-C1",
        )
    sandbox.forget_idempotency_keys()
    billing.report_usage(
        cus,
        event_name="api_calls",
        quantity=Decimal("12.5"),
        occurred_at=when,
        external_id="usage-2026-01-01-C1",
    )
    assert [e["payload"] for e in sandbox.state.meter_events] == [
        {"stripe_customer_id": cus, "value": "12.5"}
    ]
    assert sandbox.state.meter_events[0]["timestamp"] == int(when.timestamp())


def test_retainer_price_and_subscription_are_created_once(
    billing: StripeBilling, sandbox: StripeSandbox, cus: str
) -> None:
    fee = Money.of("5000.00", "USD")
    price = billing.ensure_recurring_price(external_id="ret-K1", name="Retainer K1", amount=fee)
    assert (
        billing.ensure_recurring_price(external_id="ret-K1", name="Retainer K1", amount=fee)
        == price
    )
    sub = billing.create_retainer_subscription(cus, external_id="ret-K1", price_id=price.price_id)
    assert (
        billing.create_retainer_subscription(cus, external_id="ret-K1", price_id=price.price_id)
        == sub
    )
    assert sandbox.count("subscription") == 1
    first_invoice = sandbox.state.objects[sandbox.state.objects[sub]["latest_invoice"]]
    assert (first_invoice["status"], first_invoice["total"]) == ("open", 500000)
    raised = billing.ensure_recurring_price(
        external_id="ret-K1", name="Retainer K1", amount=Money.of("5500.00", "USD")
    )
    assert raised.price_id != price.price_id and raised.product_id == price.product_id
    keyed = [p for p in sandbox.state.all_of("price") if p["lookup_key"] == "ret-K1"]
    assert [p["id"] for p in keyed] == [raised.price_id]
