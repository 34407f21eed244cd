"""``q2c bench --cash``: the delivery-to-cash money path, next to baselines in the same run.

- rating: pure time & materials rating (rate card version on the work date, NTE cap,
  per-entry rounding) against a baseline of the bare arithmetic on the same entries — a
  ``Decimal`` multiply and quantize per entry with the rate already known;
- intake: approved entries in ``delivery.batch_received`` batches through the inbox and the
  batched intake saga (checked against master data, recorded once) into the billable-events
  ledger, against a raw ``sqlite3`` insert of the same rows;
- billing runs: one run per contract for a month end — collect, rate, customer, draft invoice,
  lines, finalize, record inclusion — against the bundled Stripe emulator in process;
- end to end: entries rated and routed to invoices per second, intake plus billing runs.

Everything is checked after it is timed: every run completed, every entry billed once, the
invoices in the emulator add up to what the hub billed. A benchmark that measured failures
would be worse than none.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from q2c.bench import BenchResult
from q2c.bootstrap import Hub, bootstrap
from q2c.canonical.events import BillingRunRequested, DeliveryBatch, new_event
from q2c.canonical.models import (
    BillingEvent,
    BillingEventKind,
    BillingModel,
    BillingTerms,
    Contract,
    ContractLine,
    Customer,
    Project,
    RateCard,
    RateCardLine,
    RevenueMethod,
    TaxCode,
)
from q2c.canonical.money import Money
from q2c.config import parse_config
from q2c.connectors.registry import connect_systems
from q2c.connectors.stripe.sandbox import StripeSandbox
from q2c.flows import delivery_to_billing
from q2c.pricing.bench import bench_rating, rating_fixture
from q2c.runtime.worker import run_until_idle

__all__ = ["CashBenchSizes", "bench_cash", "bench_rating_against_arithmetic"]

MONTH_START, MONTH_END = date(2026, 11, 1), date(2026, 11, 30)
RATE_CHANGE = date(2026, 11, 16)  # a new rate card version mid-month, as in real life
ROLES = {"Senior": ("CONSULT-SR", "200.00", "210.00"), "Junior": ("CONSULT-JR", "120.00", "125.00")}
BATCH = 1000


@dataclass(frozen=True)
class CashBenchSizes:
    entries: int = 100_000
    contracts: int = 100  # the end-to-end month: entries spread over these contracts
    month_end_contracts: int = 1_000  # the month-end run: this many contracts, few entries each
    month_end_entries_per_contract: int = 10
    rating_entries: int = 100_000


def bench_rating_against_arithmetic(count: int) -> tuple[BenchResult, BenchResult]:
    """Pure rating, and the bare arithmetic it cannot beat, on the same entries."""
    book, contract, events = rating_fixture(count)
    rates = {
        (e.role, e.work_date): book.rate_for(
            contract.rate_card_id or "", role=e.role, service_item=e.service_item, on=e.work_date
        )[0].rate.amount
        for e in events
    }
    cent = Decimal("0.01")
    started = time.perf_counter()
    total = Decimal(0)
    for event in events:
        total += (event.quantity * rates[(event.role, event.work_date)]).quantize(
            cent, ROUND_HALF_UP
        )
    seconds = time.perf_counter() - started
    baseline = BenchResult("baseline: Decimal multiply + quantize", count, seconds, count / seconds)
    rated, seconds = bench_rating(count)
    rating = BenchResult("rating: time & materials, pure", rated, seconds, rated / seconds)
    rating.ratio_to_baseline = rating.per_second / baseline.per_second
    return baseline, rating


def bench_cash(
    workdir: Path,
    sizes: CashBenchSizes = CashBenchSizes(),
    *,
    progress: Callable[[str], None] = lambda _: None,
) -> list[BenchResult]:
    results: list[BenchResult] = []
    progress("rating")
    results += bench_rating_against_arithmetic(sizes.rating_entries)

    progress("baseline: raw insert of billable rows")
    entries = make_entries(sizes.entries, sizes.contracts)
    baseline = _raw_insert_baseline(workdir / "baseline.db", entries)
    results.append(baseline)

    progress(f"end to end: {sizes.entries:,} entries over {sizes.contracts} contracts")
    with _cash_hub(workdir / "end_to_end", sizes.contracts) as bench:
        intake = bench.intake(entries)
        intake.ratio_to_baseline = intake.per_second / baseline.per_second
        runs = bench.month_end()
        bench.check(len(entries))
    end_to_end = BenchResult(
        "end to end: rated + routed to invoices",
        len(entries),
        intake.seconds + runs.seconds,
        len(entries) / (intake.seconds + runs.seconds),
    )
    end_to_end.ratio_to_baseline = end_to_end.per_second / baseline.per_second
    results += [intake, runs, end_to_end]

    count = sizes.month_end_contracts
    progress(f"month-end invoice run: {count:,} contracts")
    with _cash_hub(workdir / "month_end", count) as bench:
        small = make_entries(count * sizes.month_end_entries_per_contract, count)
        bench.intake(small)
        month_end = bench.month_end()
        bench.check(len(small))
    month_end.name = f"month-end invoice run: {count:,} contracts"
    results.append(month_end)
    return results


# --- the synthetic firm -------------------------------------------------------------------


def make_entries(count: int, contracts: int) -> list[BillingEvent]:
    """Approved time spread evenly over the contracts and the month's working days."""
    days = [MONTH_START + timedelta(days=d) for d in range(30)]
    workdays = [d for d in days if d.weekday() < 5]
    roles = list(ROLES)
    entries = []
    for n in range(count):
        role = roles[n % 3 == 0]  # a third junior
        entries.append(
            BillingEvent(
                id=f"psa:te-{n}",
                kind=BillingEventKind.TIME,
                project_id=f"prj-{n % contracts}",
                work_date=workdays[(n // contracts) % len(workdays)],
                quantity=Decimal(1 + n % 8) / 2,
                role=role,
                service_item=ROLES[role][0],
                source_system="psa",
            )
        )
    return entries


def _raw_insert_baseline(path: Path, entries: list[BillingEvent]) -> BenchResult:
    """The same rows the ledger keeps, inserted with plain sqlite3 in batches of BATCH."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(
        "CREATE TABLE raw (id TEXT PRIMARY KEY, kind TEXT, contract_id TEXT, project_id TEXT, "
        "legal_entity TEXT, work_date TEXT, status TEXT, data TEXT)"
    )
    started = time.perf_counter()
    for offset in range(0, len(entries), BATCH):
        rows = [
            (
                e.id,
                e.kind.value,
                e.project_id.replace("prj", "ctr"),
                e.project_id,
                "US01",
                e.work_date.isoformat(),
                "ready",
                e.model_dump_json(),
            )
            for e in entries[offset : offset + BATCH]
        ]
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany("INSERT OR IGNORE INTO raw VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        connection.execute("COMMIT")
    seconds = time.perf_counter() - started
    connection.close()
    return BenchResult(
        "baseline: raw sqlite insert of billable rows",
        len(entries),
        seconds,
        len(entries) / seconds,
    )


class _CashBench:
    def __init__(self, hub: Hub, stripe: StripeSandbox, contracts: int) -> None:
        self.hub = hub
        self.stripe = stripe
        self.contracts = contracts

    def intake(self, entries: list[BillingEvent]) -> BenchResult:
        events = [
            new_event(
                "delivery.batch_received",
                DeliveryBatch(batch_id=f"bench:{offset}", events=entries[offset : offset + BATCH]),
                source="urn:q2c:bench:psa",
                event_id=f"bench-batch-{offset}",
            )
            for offset in range(0, len(entries), BATCH)
        ]
        started = time.perf_counter()
        for offset in range(0, len(events), 20):
            self.hub.inbox.accept(events[offset : offset + 20])
            run_until_idle(self.hub, batch=20)
        seconds = time.perf_counter() - started
        return BenchResult(
            "intake: batches checked + recorded once",
            len(entries),
            seconds,
            len(entries) / seconds,
        )

    def month_end(self) -> BenchResult:
        requests = [
            delivery_to_billing.billing_run_event(
                BillingRunRequested(
                    contract_id=f"ctr-{n}",
                    period_start=MONTH_START,
                    period_end=MONTH_END,
                    document_date=MONTH_END,
                )
            )
            for n in range(self.contracts)
        ]
        started = time.perf_counter()
        self.hub.inbox.accept(requests)
        run_until_idle(self.hub, batch=50)
        seconds = time.perf_counter() - started
        return BenchResult(
            "billing runs: rate, invoice in Stripe, record inclusion",
            self.contracts,
            seconds,
            self.contracts / seconds,
        )

    def check(self, entries: int) -> None:
        """Refuse to report figures for work that did not happen."""
        counts = self.hub.ledgers.billable.status_counts()
        if counts != {"billed": entries}:
            raise RuntimeError(f"benchmark billed {counts}, expected {entries} entries billed")
        invoices = self.stripe.state.all_of("invoice")
        finalized = [i for i in invoices if i["status"] == "open"]
        if len(finalized) != self.contracts:
            raise RuntimeError(
                f"{len(finalized)} finalized invoices in Stripe, expected {self.contracts}"
            )
        billed = sum(Decimal(i["total"]) for i in finalized) / 100
        hub_total = sum(
            (
                self.hub.ledgers.billable.billed_total(f"ctr-{n}", "USD")
                for n in range(self.contracts)
            ),
            Money.zero("USD"),
        )
        if billed != hub_total.amount:
            raise RuntimeError(f"Stripe invoiced {billed}, the hub billed {hub_total}")


@contextmanager
def _cash_hub(workdir: Path, contracts: int) -> Iterator[_CashBench]:
    workdir.mkdir(parents=True, exist_ok=True)
    stripe = StripeSandbox()
    config = parse_config(
        {
            "version": 1,
            "store": {"url": f"sqlite:///{workdir / 'bench.db'}"},
            "legal_entities": [
                {"code": "US01", "name": "Bench US", "country": "US", "base_currency": "USD"}
            ],
            "systems": {
                "salesforce": {"vendor": "salesforce", "roles": ["crm"], "sandbox": True},
                "netsuite": {"vendor": "netsuite", "roles": ["erp"], "sandbox": True},
                "stripe": {"vendor": "stripe", "roles": ["billing"], "sandbox": True},
            },
            # only the money path to billing is measured: posting is switched off
            "flows": {"delivery_to_billing": {"enabled_for": ["US01"]}},
        },
        env={},
        source="bench config",
    )
    hub = bootstrap(config, worker_id="bench")
    hub.connections.close()
    hub.connections = connect_systems(
        config, recorder=hub.payloads.record_exchange, sandboxes={"stripe": stripe}
    )
    try:
        _seed(hub, contracts)
        yield _CashBench(hub, stripe, contracts)
    finally:
        hub.close()


def _seed(hub: Hub, contracts: int) -> None:
    records = hub.ledgers.records
    usd = "USD"
    with hub.db.begin() as connection:
        records.save_in(
            connection,
            "tax_code",
            TaxCode(
                code="US-EXEMPT",
                name="Services exempt",
                rate=Decimal(0),
                jurisdiction="US",
                legal_entity="US01",
            ),
            canonical_id="US01:US-EXEMPT",
        )
        for version, (start, end) in enumerate(
            ((date(2026, 1, 1), RATE_CHANGE - timedelta(days=1)), (RATE_CHANGE, None)), start=1
        ):
            card = RateCard(
                id="RC-BENCH",
                name="Bench standard rates",
                version=version,
                currency=usd,
                effective_from=start,
                effective_to=end,
                lines=[
                    RateCardLine(
                        role=role, service_item=item, rate=Money.of(rates[version - 1], usd)
                    )
                    for role, (item, *rates) in ROLES.items()
                ],
            )
            records.save_in(connection, "rate_card", card, canonical_id=card.id, version=version)
        value = Money.of("10000000.00", usd)
        for n in range(contracts):
            customer = Customer(
                id=f"cust-{n}",
                legal_name=f"Bench Customer {n} Inc.",
                country="US",
                currency=usd,
                legal_entity="US01",
                tax_id=f"BT{n:05d}",
            )
            contract = Contract(
                id=f"ctr-{n}",
                number=f"C-{n:05d}",
                customer_id=customer.id,
                legal_entity="US01",
                currency=usd,
                billing_model=BillingModel.TIME_AND_MATERIALS,
                revenue_method=RevenueMethod.AS_INVOICED,
                start_date=MONTH_START,
                end_date=date(2027, 10, 31),
                total_value=value,
                lines=[
                    ContractLine(
                        line_no=1,
                        service_item="CONSULT-SR",
                        quantity=Decimal(1),
                        unit_price=value,
                        amount=value,
                    )
                ],
                rate_card_id="RC-BENCH",
                billing_terms=BillingTerms(tax_code="US-EXEMPT"),
            )
            project = Project(
                id=f"prj-{n}",
                code=f"P-{n:05d}",
                name=f"Bench project {n}",
                customer_id=customer.id,
                contract_id=contract.id,
                legal_entity="US01",
                start_date=MONTH_START,
                status="active",
            )
            for kind, record in (
                ("customer", customer),
                ("contract", contract),
                ("project", project),
            ):
                extra: dict[str, Any] = {"status": "active"} if kind != "customer" else {}
                records.save_in(
                    connection, kind, record, canonical_id=record.id, legal_entity="US01", **extra
                )


def _utcnow() -> datetime:
    return datetime.now(UTC)
