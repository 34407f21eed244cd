"""``q2c demo --only opportunity-to-project``: opportunity-to-project end to end on the
embedded default.

A services firm with two legal entities (US01 in USD, UK01 in GBP) closes a few dozen deals
in Salesforce. q2c polls them, and each becomes a NetSuite customer, project and sales order,
with the ERP ids written back to the opportunity. On the way, the real world happens:

- every deal is delivered twice (a re-poll and a webhook retry): nothing is processed twice;
- one deal uses a department with no NetSuite mapping: parked with a business message;
- NetSuite throttles a burst of requests (429 storm): retried after Retry-After;
- NetSuite is down for one deal longer than its retry budget: parked, replayed once back.

Then the operator adds the missing mapping and replays the parked deals; the demo checks in
the vendor sandboxes themselves that every deal landed exactly once.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select

from q2c.bootstrap import Hub, bootstrap
from q2c.canonical.events import new_event
from q2c.canonical.money import Money
from q2c.config import parse_config
from q2c.connectors.netsuite.sandbox import NetSuiteSandbox
from q2c.connectors.registry import connect_systems
from q2c.connectors.salesforce.emulator import SalesforceSandbox
from q2c.connectors.salesforce.seed import seed_closed_won_deal
from q2c.connectors.sandbox import Fault
from q2c.runtime.exception_queue import ExceptionFilter
from q2c.runtime.poller import ClosedWonPoller
from q2c.runtime.worker import run_until_idle
from q2c.store.schema import outbox, transactions, watermarks

__all__ = ["run_demo", "seed_deals"]

FLOW = "opportunity_to_project"
ENTITIES = {
    "US01": {
        "name": "Acme Consulting Inc.",
        "currency": "USD",
        "country": "US",
        "department": "Consulting-US",
    },
    "UK01": {
        "name": "Acme Consulting Ltd",
        "currency": "GBP",
        "country": "GB",
        "department": "Consulting-UK",
    },
}
UNMAPPED_DEPARTMENT = "Consulting-EMEA"
CUSTOMERS = [
    "Northwind Traders",
    "Contoso Pharma",
    "Fabrikam Energy",
    "Tailspin Logistics",
    "Wide World Importers",
    "Litware Insurance",
    "Adatum Health",
    "Proseware Retail",
    "Lucerne Publishing",
    "Margie's Travel",
    "Coho Vineyard",
    "Alpine Ski House",
    "Blue Yonder Airlines",
    "Fourth Coffee",
    "Graphic Design Institute",
    "Humongous Media",
    "Relecloud Bank",
    "Trey Research",
    "Woodgrove Capital",
    "Southridge Video",
]
ITEMS = {
    "CONSULT-SR": ("Senior consultant", "Senior", Decimal("225.00")),
    "CONSULT-JR": ("Consultant", "Consultant", Decimal("145.00")),
    "PM": ("Engagement management", "Manager", Decimal("190.00")),
}
MODELS = [
    ("time_and_materials", "as_invoiced"),
    ("fixed_fee", "straight_line"),
    ("milestone", "milestone"),
    ("retainer", "straight_line"),
    ("usage", "as_invoiced"),
]


def run_demo(
    *,
    workdir: Path = Path(".q2c"),
    opportunities: int = 36,
    seed: int = 7,
    console: Console | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    rng = random.Random(seed)
    salesforce, netsuite = SalesforceSandbox(), NetSuiteSandbox()
    reference = netsuite.seed_reference_data(
        subsidiaries={code: e["name"] for code, e in ENTITIES.items()},
        departments=[*(e["department"] for e in ENTITIES.values()), UNMAPPED_DEPARTMENT],
        currencies=["USD", "GBP"],
        items=list(ITEMS),
    )
    deals = seed_deals(salesforce, rng, opportunities)
    hub = _hub(workdir, reference, salesforce, netsuite)
    say = console.print if console else (lambda *a, **k: None)
    say(
        f"[bold]q2c demo[/] — {len(deals)} closed-won deals in Salesforce, "
        f"store {hub.db.url.render_as_string(hide_password=True)}"
    )

    storm, outage = _inject_faults(netsuite, deals)
    receipts = _deliver(hub, deals)
    with progress_bar(console) as progress:
        task = progress.add_task("opportunity → project", total=len(deals))
        run_until_idle(
            hub, on_progress=lambda n: progress.advance(task, n), progress_statuses=("completed",)
        )
        first_pass = _statuses(hub)
        parked = hub.engine.exception_queue.list(ExceptionFilter(flow=FLOW))
        say(
            f"first pass: {dict(first_pass)}; NetSuite 429s served: {storm.hits}, "
            f"503s served: {outage.hits}"
        )
        for item in parked:
            say(f"  [yellow]parked[/] {item.business_key} at {item.step}: {item.message}")
            say(f"         fix: {item.suggested_fix}")

        # The operator's fixes: the outage is over, and the missing mapping is added.
        netsuite.faults.clear()
        emea = reference["departments"][UNMAPPED_DEPARTMENT]
        hub.add_mapping("department", UNMAPPED_DEPARTMENT, "UK01", "netsuite", emea)
        preview = [hub.engine.replay(p.transaction_id, by="demo", dry_run=True) for p in parked]
        replays = hub.engine.replay_many(
            ExceptionFilter(flow=FLOW),
            by="finance-ops@acme.example",
            reason="outage over; Consulting-EMEA mapped",
        )
        run_until_idle(
            hub, on_progress=lambda n: progress.advance(task, n), progress_statuses=("completed",)
        )
    summary = _summary(
        hub,
        salesforce,
        netsuite,
        deals,
        receipts,
        first_pass,
        parked,
        preview,
        replays,
        storm.hits,
        outage.hits,
        time.perf_counter() - started,
        reference["currencies"],
    )
    if console:
        _print(console, summary)
    hub.close()
    return summary


def _hub(
    workdir: Path,
    reference: dict[str, dict[str, str]],
    salesforce: SalesforceSandbox,
    netsuite: NetSuiteSandbox,
) -> Hub:
    workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / "demo.db"
    for stale in workdir.glob("demo.db*"):
        stale.unlink()
    config = parse_config(
        {
            "version": 1,
            "store": {"url": f"sqlite:///{database}"},
            "legal_entities": [
                {
                    "code": code,
                    "name": e["name"],
                    "country": e["country"],
                    "base_currency": e["currency"],
                }
                for code, e in ENTITIES.items()
            ],
            "systems": {
                "salesforce": {"vendor": "salesforce", "roles": ["crm", "cpq"], "sandbox": True},
                "netsuite": {
                    "vendor": "netsuite",
                    "roles": ["erp"],
                    "sandbox": True,
                    "account_id": netsuite.account_id,
                    "timeout_seconds": 2,
                },
            },
            "ownership": {
                "customer": {"create": ["netsuite"]},
                "project": {"create": ["netsuite"]},
                "proposal": {"create": ["salesforce"]},
            },
            "mappings": {
                "subsidiary": {c: {"netsuite": i} for c, i in reference["subsidiaries"].items()},
                "department": {
                    e["department"]: {code: {"netsuite": reference["departments"][e["department"]]}}
                    for code, e in ENTITIES.items()
                },
                "item": {code: {"*": {"netsuite": i}} for code, i in reference["items"].items()},
            },
            "approval": {
                "require_tax_id": True,
                "max_new_customer_credit_limit": {"amount": "500000", "currency": "USD"},
            },
            "flows": {
                FLOW: {
                    "enabled_for": list(ENTITIES),
                    "retry": {
                        "attempts": 4,
                        "initial_seconds": 0.2,
                        "max_seconds": 5,
                        "multiplier": 2.0,
                        "jitter": 0.1,
                    },
                }
            },
        },
        env={},
        source="demo config",
    )
    hub = bootstrap(config, worker_id="demo")
    connections = connect_systems(
        config,
        recorder=hub.payloads.record_exchange,
        sandboxes={"salesforce": salesforce, "netsuite": netsuite},
    )
    hub.connections.close()
    hub.connections = connections
    return hub


def seed_deals(
    salesforce: SalesforceSandbox,
    rng: random.Random,
    count: int,
    *,
    unmapped_at: int | None = 4,
) -> list[dict[str, Any]]:
    """Closed-won deals across both legal entities and all five billing models; the deal at
    ``unmapped_at`` is booked to a department q2c has no mapping for."""
    deals = []
    for n in range(count):
        entity = "US01" if n % 3 else "UK01"
        settings = ENTITIES[entity]
        customer = CUSTOMERS[n % len(CUSTOMERS)]
        billing_model, revenue_method = MODELS[n % len(MODELS)]
        start = date(2027, 1, 1) + timedelta(days=7 * rng.randrange(0, 8))
        end = start + timedelta(days=30 * rng.randrange(2, 10))
        lines = []
        for code in rng.sample(sorted(ITEMS), k=rng.randrange(1, 4)):
            description, role, rate = ITEMS[code]
            lines.append((code, description, role, Decimal(rng.randrange(10, 400)), rate))
        department = settings["department"]
        if n == unmapped_at:  # booked to a department NetSuite knows but q2c has no mapping
            entity, settings, department = "UK01", ENTITIES["UK01"], UNMAPPED_DEPARTMENT
        ids = seed_closed_won_deal(
            salesforce.state,
            account_name=f"{customer} {'Ltd' if entity == 'UK01' else 'Inc'}",
            tax_id=f"{settings['country']}-{1000 + n % len(CUSTOMERS):04d}-{entity}",
            country=settings["country"],
            currency=settings["currency"],
            legal_entity=entity,
            department=department,
            billing_model=billing_model,
            revenue_method=revenue_method,
            lines=lines,
            start=start,
            end=end,
            opportunity_name=f"{customer} — {billing_model.replace('_', ' ')} #{n + 1}",
        )
        total = sum((q * p for _, _, _, q, p in lines), Decimal(0))
        deals.append(
            {
                **ids,
                "entity": entity,
                "currency": settings["currency"],
                "total": total,
                "customer": customer,
            }
        )
    return deals


def _inject_faults(netsuite: NetSuiteSandbox, deals: list[dict[str, Any]]) -> tuple[Fault, Fault]:
    storm = netsuite.faults.inject(
        Fault("rate_limit", path="/services/rest/record/v1/job/*", times=12, every=2, retry_after=1)
    )
    victim = deals[7]["opportunity_id"]
    outage = netsuite.faults.inject(
        Fault(
            "server_error",
            status=503,
            path=f"/services/rest/record/v1/salesOrder/eid:*{victim}*",
            times=None,
        )
    )
    return storm, outage


def _deliver(hub: Hub, deals: list[dict[str, Any]]) -> Counter[str]:
    """Poll Salesforce twice (at-least-once delivery) and replay some deals as webhooks."""
    poller = ClosedWonPoller(hub.db, hub.inbox, hub.connections.port("crm"), now=hub.clock)
    receipts: Counter[str] = Counter()
    for _ in range(2):
        with hub.db.begin() as connection:  # forget the watermark: the CRM sends it all again
            connection.execute(watermarks.delete())
        receipts.update(r.status for r in poller.poll())
    webhook = [
        new_event(
            "opportunity.closed_won",
            {"opportunity_id": d["opportunity_id"], "legal_entity": d["entity"]},
            source="urn:q2c:salesforce:webhook",
            subject=d["opportunity_id"],
        )
        for d in deals[::5]
    ]
    receipts.update(r.status for r in hub.inbox.accept(webhook))
    return receipts


def _statuses(hub: Hub) -> Counter[str]:
    with hub.db.connect() as connection:
        rows = connection.execute(
            select(transactions.c.status, func.count()).group_by(transactions.c.status)
        ).all()
    return Counter({status: count for status, count in rows})


def _summary(
    hub: Hub,
    salesforce: SalesforceSandbox,
    netsuite: NetSuiteSandbox,
    deals: list[dict[str, Any]],
    receipts: Counter[str],
    first_pass: Counter[str],
    parked: list[Any],
    preview: list[Any],
    replays: list[Any],
    storm_hits: int,
    outage_hits: int,
    seconds: float,
    currencies: dict[str, str],
) -> dict[str, Any]:
    final = _statuses(hub)
    orders = netsuite.state.records("salesOrder")
    customers = netsuite.state.records("customer")
    projects = netsuite.state.records("job")
    external_ids = Counter(r.get("externalId") for r in orders + customers + projects)
    duplicates = sum(1 for n in external_ids.values() if n > 1)
    opportunity_ids = {d["opportunity_id"] for d in deals}
    written_back = [
        o
        for o in salesforce.state.records("Opportunity")
        if o["Id"] in opportunity_ids and o.get("ERP_Sales_Order_Id__c")
    ]
    expected: dict[str, Money] = {}
    for deal in deals:
        amount = Money.of(deal["total"], deal["currency"])
        expected[deal["currency"]] = (
            expected.get(deal["currency"], Money.zero(deal["currency"])) + amount
        )
    booked = _booked_totals(orders, currencies)
    with hub.db.connect() as connection:
        events: dict[str, int] = dict(
            connection.execute(select(outbox.c.type, func.count()).group_by(outbox.c.type)).all()
        )
    distinct_accounts = len({d["account_id"] for d in deals})
    ok = (
        final.get("completed", 0) == len(deals)
        and len(final) == 1
        and len(orders) == len(deals)
        and len(projects) == len(deals)
        and len(customers) == distinct_accounts
        and duplicates == 0
        and len(written_back) == len(deals)
        and {k: v.rounded().amount for k, v in expected.items()} == booked
    )
    return {
        "ok": ok,
        "seconds": round(seconds, 2),
        "opportunities": len(deals),
        "events": dict(receipts),
        "flows": {FLOW: dict(final)},
        "first_pass": dict(first_pass),
        "exceptions": [
            {
                "business_key": p.business_key,
                "step": p.step,
                "kind": p.kind,
                "message": p.message,
                "suggested_fix": p.suggested_fix,
            }
            for p in parked
        ],
        "replay_preview": [
            {
                "transaction_id": p.transaction_id,
                "would": p.message,
                "writes": [w["operation"] for w in p.intended_writes],
            }
            for p in preview
        ],
        "replayed": sum(r.accepted for r in replays),
        "faults": {"netsuite_429_served": storm_hits, "netsuite_503_served": outage_hits},
        "netsuite": {
            "customers": len(customers),
            "projects": len(projects),
            "sales_orders": len(orders),
            "duplicate_external_ids": duplicates,
        },
        "salesforce": {"opportunities_written_back": len(written_back)},
        "contract_value": {
            currency: {
                "proposed": str(expected[currency].rounded().amount),
                "booked_in_erp": str(booked.get(currency, Decimal(0))),
            }
            for currency in sorted(expected)
        },
        "outbox": events,
    }


def _booked_totals(orders: list[dict[str, Any]], currencies: dict[str, str]) -> dict[str, Decimal]:
    """Sales-order line amounts summed per currency, as NetSuite holds them."""
    code_of = {internal_id: code for code, internal_id in currencies.items()}
    totals: dict[str, Decimal] = {}
    for order in orders:
        currency = code_of.get(str((order.get("currency") or {}).get("id")), "?")
        sublist = order.get("item") or {}
        lines = sublist.get("items", []) if isinstance(sublist, dict) else sublist
        amount = sum((Decimal(str(line.get("amount", 0))) for line in lines), Decimal(0))
        totals[currency] = totals.get(currency, Decimal(0)) + amount
    return totals


class NoProgress:
    def __enter__(self) -> NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def advance(self, task: int, amount: float = 1) -> None:
        return None


def progress_bar(console: Console | None) -> Any:
    """Rich progress bars on a console; a silent stand-in for ``--json`` and tests."""
    if console is None:
        return NoProgress()
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _print(console: Console, summary: dict[str, Any]) -> None:
    table = Table(title="q2c demo summary", show_header=False)
    table.add_row("opportunities", str(summary["opportunities"]))
    table.add_row("events received", ", ".join(f"{k} {v}" for k, v in summary["events"].items()))
    table.add_row("first pass", ", ".join(f"{k} {v}" for k, v in summary["first_pass"].items()))
    table.add_row("replayed", str(summary["replayed"]))
    table.add_row("final", ", ".join(f"{k} {v}" for k, v in summary["flows"][FLOW].items()))
    ns = summary["netsuite"]
    table.add_row(
        "NetSuite",
        f"{ns['customers']} customers, {ns['projects']} projects, "
        f"{ns['sales_orders']} sales orders, {ns['duplicate_external_ids']} duplicates",
    )
    table.add_row(
        "Salesforce write-back",
        f"{summary['salesforce']['opportunities_written_back']} opportunities",
    )
    for currency, values in summary["contract_value"].items():
        table.add_row(
            f"contract value {currency}",
            f"proposed {values['proposed']} / booked {values['booked_in_erp']}",
        )
    table.add_row("outbox", ", ".join(f"{k} {v}" for k, v in summary["outbox"].items()))
    table.add_row(
        "result",
        "[green]all deals provisioned exactly once[/]"
        if summary["ok"]
        else "[red]differences found[/]",
    )
    table.add_row("time", f"{summary['seconds']} s")
    console.print(table)
