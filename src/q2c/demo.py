"""``q2c demo``: the whole quote-to-cash of a services firm, on the embedded default.

Meridian Advisory (US01 in USD, DE01 in EUR) closes 30 deals in Salesforce across all five
billing models. q2c provisions each as a NetSuite customer, project and sales order and a
Kantata project; consultants log 10,000 hours' worth of time entries, expenses and milestones in
Kantata, the product reports usage; q2c rates it all (a rate card changes mid-month), bills it
in Stripe, posts every invoice to NetSuite and checks NetSuite's figures to the cent, applies
the payments Stripe collects, and recognises revenue at month end. The real world happens on
the way:

- every delivery arrives twice (re-polls, webhook retries): nothing is billed twice;
- Stripe throttles a burst of requests (429 storm): retried after Retry-After;
- NetSuite is down for a while during invoice posting (503s): retried, then replayed;
- the German VAT code has no NetSuite mapping yet: those postings park with a message, the
  operator adds the mapping, and a bulk replay finishes them;
- bad delivery — time on a closed project, an unknown role, a negative quantity, an expense in a
  currency without an exchange rate — is parked with a business message and a suggested fix;
- three T&M contracts reach their not-to-exceed: billed up to the cap, the rest parked.

The summary compares, per legal entity and currency, what Stripe billed, what NetSuite posted,
what was paid and applied, and what was recognised — read from the vendor sandboxes, not from
q2c's own ledgers.

``--erp tryton`` runs the same story with a real Tryton server as the ERP (``demo_tryton``):
US01 only (one company in the cached Tryton database), no injected ERP outage, and the mapping
the operator adds in step 5 is the USAGE item's instead of the German VAT code's.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from q2c.bootstrap import Hub, bootstrap
from q2c.canonical.events import (
    BillingRunRequested,
    PeriodClosed,
    ReferenceSyncRequested,
    new_event,
)
from q2c.canonical.models import BillingEvent, BillingEventKind, Project
from q2c.canonical.money import Money
from q2c.config import parse_config
from q2c.connectors.kantata.sandbox import KantataSandbox
from q2c.connectors.netsuite.sandbox import NetSuiteSandbox
from q2c.connectors.netsuite.seed import LedgerEntity
from q2c.connectors.registry import Connections, connect_systems
from q2c.connectors.salesforce.emulator import SalesforceSandbox
from q2c.connectors.salesforce.seed import seed_closed_won_deal
from q2c.connectors.sandbox import Fault
from q2c.connectors.stripe.sandbox import StripeSandbox
from q2c.demo_opportunities import progress_bar
from q2c.errors import ConfigError
from q2c.flows import delivery_to_billing
from q2c.runtime.exception_queue import ExceptionFilter
from q2c.runtime.poller import BillingPoller, ClosedWonPoller, DeliveryPoller
from q2c.runtime.worker import run_until_idle
from q2c.scenario import BILLING_MONTH, ENTITIES, ROLES, Scenario, build_scenario
from q2c.store.schema import transactions, watermarks

__all__ = ["DemoRun", "run_demo"]

SERVICE_ITEMS = [
    "PM",
    "CONSULT-SR",
    "CONSULT-JR",
    "EXPENSE",
    "MILESTONE",
    "FIXED-FEE",
    "RETAINER",
    "RETAINER-OVERAGE",
    "USAGE",
]
MISSING_TAX_MAPPING = "DE-VAT-19"
TRYTON_HELD_BACK_ITEM = "USAGE"  # Tryton demo: the usage product is mapped by the operator


@dataclass
class DemoErp:
    """The ERP the demo posts to, as q2c.yaml names it, and what the story does with it."""

    system: str  # the system's name in q2c.yaml (and in xrefs and mappings)
    label: str
    sandbox: Any  # NetSuiteSandbox, or TrytonServer (a managed process, stopped at the end)
    entities: tuple[str, ...]
    system_config: dict[str, Any]
    mappings: dict[str, Any]
    held_back: tuple[str, str, str]  # (dimension, value, ERP id) the operator maps in step 5
    outage: Callable[[], None] | None = None  # makes the ERP fail for a while during posting


@dataclass
class DemoRun:
    """What the demo did, for the summary and for tests that check it independently."""

    hub: Hub
    scenario: Scenario
    salesforce: SalesforceSandbox
    erp: DemoErp
    kantata: KantataSandbox
    stripe: StripeSandbox
    contracts: dict[str, str] = field(default_factory=dict)  # deal key -> contract id
    time_ids: dict[str, str] = field(default_factory=dict)  # plan key -> billing event id
    expense_ids: dict[str, str] = field(default_factory=dict)
    bad: dict[str, str] = field(default_factory=dict)  # what was wrong -> billing event id
    phases: dict[str, Any] = field(default_factory=dict)

    @property
    def netsuite(self) -> NetSuiteSandbox:
        if not isinstance(self.erp.sandbox, NetSuiteSandbox):
            raise TypeError(f"this demo run posts to {self.erp.label}, not NetSuite")
        return self.erp.sandbox


ERPS = ("netsuite", "tryton")


def run_demo(
    *,
    workdir: Path = Path(".q2c"),
    seed: int = 7,
    time_entries: int = 10_000,
    console: Console | None = None,
    keep: bool = False,
    erp: str = "netsuite",
) -> dict[str, Any]:
    run = build_run(workdir=workdir, seed=seed, time_entries=time_entries, erp=erp)
    say = console.print if console else (lambda *a, **k: None)
    started = time.perf_counter()
    try:
        with progress_bar(console) as progress:
            play(run, say, progress)
        summary = summarize(run, seconds=time.perf_counter() - started)
    finally:
        if not keep:
            run.hub.close()
    if console is not None:
        _print(console, summary)
    return summary


def build_run(
    *, workdir: Path, seed: int, time_entries: int, erp: str = "netsuite"
) -> DemoRun:
    if erp not in ERPS:
        raise ConfigError(f"--erp: no demo for '{erp}'", suggested_fix="Use netsuite or tryton.")
    salesforce, kantata, stripe = SalesforceSandbox(), KantataSandbox(), StripeSandbox()
    ledger = _tryton_erp() if erp == "tryton" else _netsuite_erp()
    try:
        scenario = _only(build_scenario(seed, time_entries), ledger.entities)
        if ledger.system == "tryton":
            scenario = _with_valid_tax_ids(scenario)
        sandboxes = {"salesforce": salesforce, "kantata": kantata, "stripe": stripe}
        hub = _hub(workdir, ledger, {**sandboxes, ledger.system: ledger.sandbox})
    except BaseException:
        stop = getattr(ledger.sandbox, "stop", None)
        if stop is not None:
            stop()
        raise
    return DemoRun(hub, scenario, salesforce, ledger, kantata, stripe)


def _only(scenario: Scenario, entities: tuple[str, ...]) -> Scenario:
    """The scenario restricted to the legal entities the ERP holds."""
    if set(entities) == set(ENTITIES):
        return scenario
    deals = {d.key for d in scenario.deals if d.entity in entities}
    return Scenario(
        deals=[d for d in scenario.deals if d.key in deals],
        rate_cards=scenario.rate_cards,
        time=[t for t in scenario.time if t.deal in deals],
        expenses=[e for e in scenario.expenses if e.deal in deals],
        milestones=[m for m in scenario.milestones if m.deal in deals],
        usage=[u for u in scenario.usage if u.deal in deals],
    )


def _with_valid_tax_ids(scenario: Scenario) -> Scenario:
    """Tryton validates tax ids (python-stdnum); the made-up ones become well-formed ones."""
    from dataclasses import replace

    from q2c.demo_tryton import tryton_tax_id

    deals = [replace(d, tax_id=tryton_tax_id(d.tax_id)) for d in scenario.deals]
    return replace(scenario, deals=deals)


def _netsuite_erp() -> DemoErp:
    netsuite = NetSuiteSandbox()
    netsuite.seed_reference_data(
        subsidiaries={code: str(e["name"]) for code, e in ENTITIES.items()},
        departments=[str(e["department"]) for e in ENTITIES.values()],
        currencies=["USD", "EUR"],
        items=SERVICE_ITEMS,
    )
    netsuite.seed_ledger_reference_data(
        entities=[
            LedgerEntity(code, str(e["name"]), str(e["country"]), str(e["currency"]))
            for code, e in ENTITIES.items()
        ],
        currencies=["USD", "EUR"],
    )
    reference = netsuite.reference
    tax_codes = {
        code: {"*": {"netsuite": erp_id}}
        for code, erp_id in reference["tax_codes"].items()
        if code != MISSING_TAX_MAPPING
    }

    def outage() -> None:
        netsuite.faults.inject(Fault("server_error", status=503, times=12, method="PUT"))

    return DemoErp(
        system="netsuite",
        label="NetSuite",
        sandbox=netsuite,
        entities=tuple(ENTITIES),
        system_config={
            "vendor": "netsuite",
            "roles": ["erp"],
            "sandbox": True,
            "account_id": netsuite.account_id,
            "timeout_seconds": 2,
        },
        mappings={
            "subsidiary": {c: {"netsuite": i} for c, i in reference["subsidiaries"].items()},
            "department": {
                str(e["department"]): {
                    code: {"netsuite": reference["departments"][str(e["department"])]}
                }
                for code, e in ENTITIES.items()
            },
            "item": {code: {"*": {"netsuite": reference["items"][code]}} for code in SERVICE_ITEMS},
            "tax_code": tax_codes,
            "gl_account": {
                "deferred_revenue": {"*": {"netsuite": reference["accounts"]["DEFERRED_REVENUE"]}},
                "revenue": {"*": {"netsuite": reference["accounts"]["REVENUE"]}},
            },
        },
        held_back=(
            "tax_code",
            MISSING_TAX_MAPPING,
            reference["tax_codes"][MISSING_TAX_MAPPING],
        ),
        outage=outage,
    )


def _tryton_erp() -> DemoErp:
    """A managed Tryton server (cached database), with the demo's items as products."""
    import httpx

    from q2c.demo_tryton import TRYTON_ENTITY, add_service_items, start_tryton, tryton_mappings

    server = start_tryton()
    try:
        with httpx.Client(timeout=60.0) as client:
            rpc = server.rpc(client)
            items = add_service_items(rpc, SERVICE_ITEMS)
            mappings = tryton_mappings(
                server,
                rpc,
                items,
                department=str(ENTITIES[TRYTON_ENTITY]["department"]),
                held_back_item=TRYTON_HELD_BACK_ITEM,
            )
    except BaseException:
        server.stop()
        raise
    return DemoErp(
        system="tryton",
        label="Tryton",
        sandbox=server,
        entities=(TRYTON_ENTITY,),
        system_config={
            "vendor": "tryton",
            "roles": ["erp"],
            "sandbox": True,
            "timeout_seconds": 60,
        },
        mappings=mappings,
        held_back=("item", TRYTON_HELD_BACK_ITEM, str(items[TRYTON_HELD_BACK_ITEM])),
    )


def _hub(workdir: Path, erp: DemoErp, sandboxes: dict[str, Any]) -> Hub:
    workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / "demo.db"
    for stale in workdir.glob("demo.db*"):
        stale.unlink()
    retry = {
        "attempts": 4,
        "initial_seconds": 0.2,
        "max_seconds": 2,
        "multiplier": 2.0,
        "jitter": 0.1,
    }
    live = {"enabled_for": list(erp.entities), "retry": retry}
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
                if code in erp.entities
            ],
            "systems": {
                "salesforce": {"vendor": "salesforce", "roles": ["crm", "cpq"], "sandbox": True},
                erp.system: erp.system_config,
                "kantata": {"vendor": "kantata", "roles": ["psa"], "sandbox": True},
                "stripe": {"vendor": "stripe", "roles": ["billing"], "sandbox": True},
            },
            "ownership": {
                "customer": {"create": [erp.system]},
                "project": {"create": [erp.system]},
                "proposal": {"create": ["salesforce"]},
            },
            "mappings": erp.mappings,
            "approval": {
                "require_tax_id": True,
                "max_new_customer_credit_limit": {"amount": "500000", "currency": "USD"},
            },
            "flows": {
                name: live
                for name in (
                    "opportunity_to_project",
                    "delivery_to_billing",
                    "invoice_to_ledger",
                    "payment_to_ledger",
                    "revenue_recognition",
                    "reference_data_sync",
                )
            },
        },
        env={},
        source="demo config",
    )
    # the adapters need the hub's payload recorder: bootstrap first, connect the sandboxes after
    hub = bootstrap(config, worker_id="demo", connections=Connections())
    hub.connections = connect_systems(
        config, recorder=hub.payloads.record_exchange, sandboxes=sandboxes
    )
    return hub


# --- the story -----------------------------------------------------------------------------


def play(run: DemoRun, say: Callable[..., None], progress: Any) -> None:
    hub, scenario = run.hub, run.scenario
    say(
        f"[bold]q2c demo[/] — {len(scenario.deals)} deals, {len(scenario.time):,} time entries,"
        f" store {hub.db.url.render_as_string(hide_password=True)}"
    )

    erp = run.erp.label
    say(f"1. Reference data from {erp} and rate cards from the CPQ")
    hub.inbox.accept(
        [
            new_event(
                "reference_data.sync_requested",
                ReferenceSyncRequested(as_of=BILLING_MONTH[1]),
                source="urn:q2c:demo",
                event_id="demo-reference-sync",
            ),
            *(
                new_event(
                    "rate_card.published",
                    card,
                    source="urn:q2c:demo:cpq",
                    event_id=f"{card.id}-v{card.version}",
                )
                for card in scenario.rate_cards
            ),
        ]
    )
    _work(hub)

    say(f"2. Closed-won deals: customer, project and sales order in {erp}, project in Kantata")
    _seed_deals(run)
    poller = ClosedWonPoller(hub.db, hub.inbox, hub.connections.port("crm"), now=hub.clock)
    for _ in range(2):  # at-least-once: the CRM feed is read twice
        _forget_watermarks(hub, "salesforce:")
        poller.poll()
    _work(hub, progress, "provisioning", len(scenario.deals))
    run.contracts = _contracts(run)

    say("3. Delivery in Kantata (and usage from the product) for November")
    _seed_delivery(run)
    delivery = DeliveryPoller(
        hub.db, hub.inbox, hub.connections.port("psa"), hub.xref, now=hub.clock
    )
    batches: Counter[str] = Counter(str(r.status) for r in delivery.poll())
    _forget_watermarks(hub, "kantata:")
    batches.update(r.status for r in delivery.poll())  # the whole feed again: duplicates
    received = Counter(delivery.entries_received)
    singles = _report_usage(run) + _bad_delivery(run)
    received.update(singles)
    run.phases["delivery_events"] = dict(received)
    _work(hub, progress, "delivery intake", batches["accepted"] + singles["accepted"])

    outage = " (an outage)" if run.erp.outage else ""
    say(f"4. Billing runs in Stripe (a 429 storm on the way), posting to {erp}{outage}")
    stripe_storm = Fault("rate_limit", retry_after=1, times=6, method="POST")
    run.stripe.faults.inject(stripe_storm)
    if run.erp.outage is not None:
        run.erp.outage()
    requests = [
        delivery_to_billing.billing_run_event(
            BillingRunRequested(
                contract_id=contract,
                period_start=BILLING_MONTH[0],
                period_end=BILLING_MONTH[1],
                document_date=BILLING_MONTH[1],
            )
        )
        for contract in run.contracts.values()
    ]
    hub.inbox.accept(requests)
    hub.inbox.accept(requests)  # a scheduler firing twice
    _work(hub, progress, "billing and posting", len(requests) * 2)
    first_pass = _open_exceptions(hub)
    run.phases["first_pass_exceptions"] = Counter(e.flow for e in first_pass)

    dimension, value, erp_id = run.erp.held_back
    say(f"5. Operator: map {value} in {erp} and replay what it blocked")
    hub.add_mapping(dimension, value, "*", run.erp.system, erp_id)
    replays = hub.engine.replay_many(
        ExceptionFilter(flow="invoice_to_ledger"),
        by="demo-ops",
        reason=f"{dimension.replace('_', ' ')} mapped; {erp} back",
    )
    run.phases["replayed"] = sum(1 for r in replays if r.accepted)
    _work(hub)

    say(f"6. Customers pay in Stripe; payments applied in {erp}")
    paid = _collect_payments(run)
    billing_poller = BillingPoller(
        hub.db, hub.inbox, hub.connections.port("billing"), now=hub.clock
    )
    billing_poller.poll()
    billing_poller.poll()
    _work(hub, progress, "payments", paid)

    say(f"7. Month end: revenue recognised in {erp}")
    hub.inbox.accept(
        [
            new_event(
                "period.closed",
                PeriodClosed(
                    legal_entity=code, period_start=BILLING_MONTH[0], period_end=BILLING_MONTH[1]
                ),
                source="urn:q2c:demo:erp",
                event_id=f"close-{code}-2026-11",
            )
            for code in run.erp.entities
        ]
    )
    _work(hub)


# --- seeding the vendors -------------------------------------------------------------------


def _seed_deals(run: DemoRun) -> None:
    for deal in run.scenario.deals:
        seed_closed_won_deal(
            run.salesforce.state,
            account_name=deal.customer,
            tax_id=deal.tax_id,
            country=deal.country,
            currency=deal.currency,
            legal_entity=deal.entity,
            department=deal.department,
            billing_model=deal.billing_model.replace("_", " ").title().replace("And", "and"),
            revenue_method=deal.revenue_method.replace("_", " ").title(),
            lines=list(deal.lines),
            start=deal.start,
            end=deal.end,
            opportunity_name=f"{deal.customer} — {deal.key}",
            rate_card=deal.rate_card,
            not_to_exceed=deal.not_to_exceed,
            billing_terms=deal.terms.model_dump_json(exclude_defaults=True),
        )


def _forget_watermarks(hub: Hub, prefix: str) -> None:
    with hub.db.begin() as connection:
        connection.execute(watermarks.delete().where(watermarks.c.name.startswith(prefix)))


def _contracts(run: DemoRun) -> dict[str, str]:
    """Deal key -> the contract q2c created for it (opportunity name carries the key)."""
    from q2c.canonical.models import Contract

    by_number = {}
    for contract in run.hub.ledgers.records.all_current("contract", Contract):
        by_number[contract.proposal_id or ""] = contract.id
    keys = {}
    for quote in run.salesforce.state.records("Quote"):
        key = str(quote.get("Name", "")).rsplit(" — ", 1)[-1]
        if quote["Id"] in by_number:
            keys[key] = by_number[quote["Id"]]
    return keys


def _workspace(run: DemoRun, deal_key: str) -> str:
    from q2c.canonical.models import Contract

    contract = run.hub.ledgers.records.current("contract", run.contracts[deal_key], Contract)
    assert contract is not None
    for project in run.hub.ledgers.records.all_current("project", Project):
        if project.contract_id == contract.id:
            return run.hub.xref.external_ids(project.id, "project")["kantata"]
    raise LookupError(f"no Kantata project for {deal_key}")


def _seed_delivery(run: DemoRun) -> None:
    kantata, scenario = run.kantata, run.scenario
    roles = {name: kantata.add_role(name) for name in [*ROLES, "Architect"]}
    users: dict[str, str] = {}
    workspaces = {d.key: _workspace(run, d.key) for d in scenario.deals}
    plan_of: dict[str, str] = {}
    for entry in scenario.time:
        person = users.get(entry.person) or users.setdefault(
            entry.person, kantata.add_user(entry.person.title(), role_id=roles[entry.role])
        )
        entry_id = kantata.add_time_entry(
            workspaces[entry.deal],
            date_performed=entry.work_date,
            minutes=entry.minutes,
            user_id=person,
            role_id=roles[entry.role],
            notes=f"{entry.role} work",
        )
        plan_of[entry_id] = entry.key
    expense_ids = {}
    for expense in scenario.expenses:
        minor = int(expense.amount.amount * 100)
        expense_ids[
            kantata.add_expense(
                workspaces[expense.deal],
                expense_date=expense.work_date,
                amount_in_cents=minor,
                currency=expense.amount.currency,
                category=expense.category.title(),
            )
        ] = expense.key
    kantata.approve(time_entries=list(plan_of), expenses=list(expense_ids))
    run.time_ids = {plan: f"kantata:time_entry:{entry_id}" for entry_id, plan in plan_of.items()}
    run.expense_ids = {
        plan: f"kantata:expense:{expense_id}" for expense_id, plan in expense_ids.items()
    }
    for milestone in scenario.milestones:
        story = kantata.add_milestone(
            workspaces[milestone.deal],
            milestone.name,
            billing_percent=str(milestone.percent),
            due_date=milestone.completed_on,
        )
        kantata.complete_milestone(story)
    # bad delivery that must be parked, never billed
    tm = next(d for d in scenario.deals if d.billing_model == "time_and_materials")
    architect = kantata.add_user("Ada Architect", role_id=roles["Architect"])
    unknown_role = kantata.add_time_entry(
        workspaces[tm.key],
        date_performed=date(2026, 11, 12),
        minutes=120,
        user_id=architect,
        role_id=roles["Architect"],
        notes="architecture review",
    )
    no_rate = kantata.add_expense(
        workspaces[tm.key],
        expense_date=date(2026, 11, 13),
        amount_in_cents=1200000,
        currency="JPY",
        category="Travel",
    )
    closed = kantata.add_workspace(
        f"Legacy support (closed in {run.erp.label})", currency=tm.currency
    )
    closed_entry = kantata.add_time_entry(
        closed,
        date_performed=date(2026, 11, 9),
        minutes=60,
        user_id=architect,
        role_id=roles["Senior"],
    )
    kantata.approve(time_entries=[unknown_role, closed_entry], expenses=[no_rate])
    _closed_project(run, tm.key, closed)
    run.bad.update(
        {
            "unknown role": f"kantata:time_entry:{unknown_role}",
            "currency without a rate": f"kantata:expense:{no_rate}",
            "closed project": f"kantata:time_entry:{closed_entry}",
        }
    )


def _closed_project(run: DemoRun, deal_key: str, workspace: str) -> None:
    """A project the ERP closed last month, still open for time in Kantata."""
    from q2c.runtime.flow import XrefLink

    contract_id = run.contracts[deal_key]
    project = Project(
        id=f"legacy-{deal_key}",
        code=f"LEG-{deal_key}",
        name="Legacy support",
        customer_id="legacy",
        contract_id=contract_id,
        legal_entity=deal_key[:4],
        start_date=date(2025, 1, 1),
        end_date=date(2026, 10, 31),
        status="closed",
    )
    run.hub.ledgers.records.save(
        "project",
        project,
        canonical_id=project.id,
        legal_entity=project.legal_entity,
        status="closed",
    )
    run.hub.xref.link(XrefLink(project.id, "project", "kantata", workspace))


def _report_usage(run: DemoRun) -> Counter[str]:
    """The product's metering posts usage as CloudEvents (``POST /v1/events``), twice."""
    from q2c.canonical.models import Contract

    events = []
    for usage in run.scenario.usage:
        contract = run.hub.ledgers.records.current("contract", run.contracts[usage.deal], Contract)
        assert contract is not None
        project = next(
            p
            for p in run.hub.ledgers.records.all_current("project", Project)
            if p.contract_id == contract.id
        )
        events.append(
            new_event(
                "usage.recorded",
                BillingEvent(
                    id=f"meter:{usage.key}",
                    kind=BillingEventKind.USAGE,
                    project_id=project.id,
                    contract_id=contract.id,
                    work_date=usage.work_date,
                    quantity=usage.quantity,
                    unit="unit",
                    description="API calls",
                    source_system="meter",
                ),
                source="urn:meridian:metering",
                event_id=usage.key,
            )
        )
    receipts: Counter[str] = Counter()
    for _ in range(2):
        receipts.update(r.status for r in run.hub.inbox.accept(events))
    return receipts


def _bad_delivery(run: DemoRun) -> Counter[str]:
    """A timesheet tool's correction sent as a negative entry, through the events API."""
    tm = next(d for d in run.scenario.deals if d.billing_model == "time_and_materials")
    project = next(
        p
        for p in run.hub.ledgers.records.all_current("project", Project)
        if p.contract_id == run.contracts[tm.key] and p.status == "active"
    )
    negative = BillingEvent(
        id="timesheets:corr-1",
        kind=BillingEventKind.TIME,
        project_id=project.id,
        work_date=date(2026, 11, 20),
        quantity=Decimal("-2"),
        role="Senior",
        description="correction",
    )
    run.bad["negative quantity"] = negative.id
    return Counter(
        r.status
        for r in run.hub.inbox.accept(
            [
                new_event(
                    "time.approved", negative, source="urn:meridian:timesheets", event_id="corr-1"
                )
            ]
        )
    )


def _collect_payments(run: DemoRun) -> int:
    """Most customers pay by card; a few invoices stay open at month end."""
    paid = 0
    for number, invoice in enumerate(
        sorted(run.stripe.state.all_of("invoice"), key=lambda i: str(i["id"]))
    ):
        if invoice.get("status") == "open" and number % 5:
            run.stripe.pay(str(invoice["id"]), payment_method="pm_card_visa")
            paid += 1
    return paid


def _work(hub: Hub, progress: Any = None, label: str = "", total: int = 0) -> None:
    task = progress.add_task(label, total=total or None) if progress and label else None

    def advance(count: int) -> None:
        if task is not None:
            progress.advance(task, count)

    run_until_idle(hub, batch=200, max_wait_seconds=30, on_progress=advance)


def _open_exceptions(hub: Hub) -> list[Any]:
    return hub.engine.exception_queue.list(ExceptionFilter(), limit=10_000)


# --- the summary: read from the vendors ----------------------------------------------------


def summarize(run: DemoRun, *, seconds: float) -> dict[str, Any]:
    hub = run.hub
    with hub.db.connect() as connection:
        rows = connection.execute(
            select(transactions.c.flow, transactions.c.status, func.count()).group_by(
                transactions.c.flow, transactions.c.status
            )
        ).all()
    flows: dict[str, dict[str, int]] = defaultdict(dict)
    for flow, status, count in rows:
        flows[flow][status] = int(count)
    money = _money_by_entity(run)
    exceptions = _open_exceptions(hub)
    explained = [
        {"flow": e.flow, "message": e.message, "suggested_fix": e.suggested_fix} for e in exceptions
    ]
    differences = sum(
        abs(Decimal(v["billed"]) - Decimal(v["posted"]))
        + abs(Decimal(v["paid"]) - Decimal(v["applied"]))
        + abs(Decimal(v["recognised"]) - Decimal(v["recognised_in_erp"]))
        for v in money.values()
    )
    stuck = sum(n for f in flows.values() for s, n in f.items() if s not in ("completed", "parked"))
    return {
        "ok": differences == 0 and stuck == 0 and run.phases.get("replayed", 0) > 0,
        "erp": run.erp.label,
        "seconds": round(seconds, 1),
        "deals": len(run.scenario.deals),
        "time_entries": len(run.scenario.time),
        "delivery_events": run.phases.get("delivery_events", {}),
        "billable_events": hub.ledgers.billable.status_counts(),
        "flows": {k: dict(v) for k, v in sorted(flows.items())},
        "first_pass_exceptions": dict(run.phases.get("first_pass_exceptions", {})),
        "replayed": run.phases.get("replayed", 0),
        "money": money,
        "unexplained_differences": str(differences),
        "parked": explained,
    }


def _money_by_entity(run: DemoRun) -> dict[str, dict[str, str]]:
    """Per legal entity and currency, from Stripe and the ERP themselves."""
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    invoices = [i for i in run.stripe.state.all_of("invoice") if i.get("status") != "draft"]
    for invoice in invoices:
        entity = invoice.get("metadata", {}).get("q2c_legal_entity", "?")
        currency = str(invoice["currency"]).upper()
        key = f"{entity} {currency}"
        totals[key]["billed"] += Money.from_minor(int(invoice["total"]), currency).amount
        totals[key]["invoices"] += 1
        totals[key]["paid"] += Money.from_minor(int(invoice["amount_paid"]), currency).amount
    if run.erp.system == "tryton":
        from q2c.demo_tryton import tryton_totals

        for key, figures in tryton_totals(run.erp.sandbox).items():
            for name, amount in figures.items():
                totals[key][name] += amount
    else:
        _netsuite_totals(run.netsuite, totals)
    for document in run.hub.ledgers.documents.documents("revenue"):
        totals[f"{document['legal_entity']} {document['currency']}"]["recognised"] += Decimal(
            document["amount"]
        )
    names = ("invoices", "billed", "posted", "paid", "applied", "recognised", "recognised_in_erp")
    return {
        key: {name: str(values[name]) for name in names} for key, values in sorted(totals.items())
    }


def _netsuite_totals(netsuite: NetSuiteSandbox, totals: dict[str, dict[str, Decimal]]) -> None:
    subsidiary_of = {v: k for k, v in netsuite.reference["subsidiaries"].items()}
    currency_of = {v: k for k, v in netsuite.reference["currencies"].items()}
    for record in netsuite.state.records("invoice"):
        entity = subsidiary_of.get(_ref_id(record.get("subsidiary")), "?")
        currency = currency_of.get(_ref_id(record.get("currency")), "?")
        totals[f"{entity} {currency}"]["posted"] += Decimal(str(record.get("total", 0)))
    for payment in netsuite.state.records("customerPayment"):
        entity = subsidiary_of.get(_ref_id(payment.get("subsidiary")), "?")
        currency = currency_of.get(_ref_id(payment.get("currency")), "?")
        totals[f"{entity} {currency}"]["applied"] += Decimal(str(payment.get("applied", 0)))
    for journal in netsuite.state.records("journalEntry"):
        entity = subsidiary_of.get(_ref_id(journal.get("subsidiary")), "?")
        currency = currency_of.get(_ref_id(journal.get("currency")), "?")
        lines = journal.get("line") or []
        lines = lines.get("items", []) if isinstance(lines, dict) else lines
        totals[f"{entity} {currency}"]["recognised_in_erp"] += sum(
            (Decimal(str(line.get("credit") or 0)) for line in lines), Decimal(0)
        )


def _ref_id(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("id", ""))
    return str(value or "")


# --- output --------------------------------------------------------------------------------


def _print(console: Console, summary: dict[str, Any]) -> None:
    flows = Table(title="Transactions by flow")
    for column in ("flow", "completed", "parked", "other"):
        flows.add_column(column, justify="right" if column != "flow" else "left")
    for flow, statuses in summary["flows"].items():
        other = sum(n for s, n in statuses.items() if s not in ("completed", "parked"))
        flows.add_row(
            flow, str(statuses.get("completed", 0)), str(statuses.get("parked", 0)), str(other)
        )
    console.print(flows)
    money = Table(title=f"Per legal entity and currency (read from Stripe and {summary['erp']})")
    for column in (
        "entity",
        "invoices",
        "billed",
        "posted",
        "paid",
        "applied",
        "recognised",
        "in ERP",
    ):
        money.add_column(column, justify="right" if column != "entity" else "left")
    for key, values in summary["money"].items():
        money.add_row(
            key,
            values["invoices"],
            *(
                f"{Decimal(values[n]):,.2f}"
                for n in ("billed", "posted", "paid", "applied", "recognised", "recognised_in_erp")
            ),
        )
    console.print(money)
    console.print(f"Unexplained differences: [bold]{summary['unexplained_differences']}[/]")
    console.print(f"Parked with a business message ({len(summary['parked'])}):")
    for item in summary["parked"][:12]:
        console.print(f"  • [{item['flow']}] {item['message']}")
    verdict = "[green]OK[/]" if summary["ok"] else "[red]NOT OK[/]"
    console.print(f"{verdict} in {summary['seconds']} s")
