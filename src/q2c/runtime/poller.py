"""Polling consumers for systems without push, each from a saved watermark.

- CRM: closed-won opportunities → ``opportunity.closed_won`` (id: opportunity + proposal
  version, so a re-poll after our own write-back is a duplicate the inbox drops);
- PSA: approved time and expenses, completed milestones → ``delivery.batch_received`` batches
  (id: a digest of the entries' ids and update stamps), or one ``time.approved`` /
  ``expense.approved`` / ``milestone.completed`` per record (id: record + its update stamp;
  the business key is the record). Either way an entry already recorded is never billed twice:
  intake records each billing event once;
- billing platform: finalized invoices → ``invoice.finalized`` and payments →
  ``payment.received``.

A watermark is saved only after the events are in the inbox: a crash in between means a
re-poll, never a loss.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from q2c.canonical.events import MAX_DELIVERY_BATCH, CloudEvent, DeliveryBatch, new_event
from q2c.canonical.models import BillingEvent, BillingEventKind
from q2c.flows.ports import BillingPort, CrmPort, DeliveryRecord, PsaPort
from q2c.runtime.inbox import Inbox, Receipt
from q2c.runtime.xref import XrefHub
from q2c.store.schema import watermarks

__all__ = [
    "BillingPoller",
    "ClosedWonPoller",
    "DeliveryPoller",
    "billing_event_of",
    "delivery_batch_event",
    "delivery_event",
]


class Watermarks:
    """A named watermark per polled feed, saved after the feed's events are in the inbox."""

    def __init__(self, db: Engine, now: Callable[[], datetime]) -> None:
        self.db = db
        self.now = now

    def get(self, name: str) -> str | None:
        with self.db.connect() as connection:
            return connection.execute(
                select(watermarks.c.value).where(watermarks.c.name == name)
            ).scalar_one_or_none()

    def save(self, name: str, value: str) -> None:
        now = self.now()
        with self.db.begin() as connection:
            dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(watermarks).values(name=name, value=value, updated_at=now)
            connection.execute(
                statement.on_conflict_do_update(
                    index_elements=["name"], set_={"value": value, "updated_at": now}
                )
            )


class ClosedWonPoller:
    def __init__(
        self, db: Engine, inbox: Inbox, crm: CrmPort, *, now: Callable[[], datetime]
    ) -> None:
        self.db = db
        self.inbox = inbox
        self.crm = crm
        self.now = now
        self.name = f"{crm.system}:opportunity.closed_won"
        self._marks = Watermarks(db, now)

    def watermark(self) -> str | None:
        return self._marks.get(self.name)

    def poll(self) -> list[Receipt]:
        page = self.crm.closed_won_since(self.watermark())
        events = [
            new_event(
                "opportunity.closed_won",
                opportunity,
                source=f"urn:q2c:{self.crm.system}:poller",
                subject=opportunity.opportunity_id,
                event_id=f"{opportunity.opportunity_id}:v{opportunity.proposal_version}",
            )
            for opportunity in page.opportunities
        ]
        receipts = self.inbox.accept(events)
        if page.watermark is not None:
            self._marks.save(self.name, page.watermark)
        return receipts


_DELIVERY_TYPES = {
    "time": ("time.approved", BillingEventKind.TIME),
    "expense": ("expense.approved", BillingEventKind.EXPENSE),
    "milestone": ("milestone.completed", BillingEventKind.MILESTONE),
}


def delivery_event(record: DeliveryRecord, system: str, xref: XrefHub) -> CloudEvent:
    """The canonical event for one PSA record."""
    billing_event = billing_event_of(record, system, xref)
    return new_event(
        _DELIVERY_TYPES[record.kind][0],
        billing_event,
        source=f"urn:q2c:{system}:poller",
        subject=billing_event.id,
        event_id=_delivery_event_id(record, billing_event),
    )


def _delivery_event_id(record: DeliveryRecord, event: BillingEvent) -> str:
    return f"{event.id}@{record.updated_at.isoformat()}"


def billing_event_of(record: DeliveryRecord, system: str, xref: XrefHub) -> BillingEvent:
    """The billing event of one PSA record. Its project is the hub's project linked to the
    PSA project; an unlinked one keeps ``<system>:<id>`` and the flow parks it, by name."""
    kind = _DELIVERY_TYPES[record.kind][1]
    project_id = xref.canonical_id(system, "project", record.project_ref) or (
        f"{system}:{record.project_ref}"
    )
    return BillingEvent(
        id=f"{system}:{record.system_id}",
        xrefs={system: record.system_id},
        kind=kind,
        project_id=project_id,
        work_date=record.work_date,
        quantity=record.quantity,
        unit=record.unit,
        role=record.role,
        service_item=record.service_item,
        amount=record.amount,
        percent=record.percent,
        description=record.description,
        expense_category=record.expense_category,
        billable=record.billable,
        approved_at=record.approved_at,
        source_system=system,
    )


class DeliveryPoller:
    """Approved delivery from the PSA. By default a page goes to the hub as batches of up to
    ``batch_size`` entries (one intake commit per batch); ``batch_size=None`` sends one event
    per entry. A batch's id is a digest of its entries' event ids, so a page polled twice
    (a crash before the watermark was saved) gives the same batches, which the inbox drops."""

    def __init__(
        self,
        db: Engine,
        inbox: Inbox,
        psa: PsaPort,
        xref: XrefHub,
        *,
        now: Callable[[], datetime],
        batch_size: int | None = MAX_DELIVERY_BATCH,
    ) -> None:
        if batch_size is not None and not 1 <= batch_size <= MAX_DELIVERY_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_DELIVERY_BATCH}")
        self.inbox = inbox
        self.psa = psa
        self.xref = xref
        self.batch_size = batch_size
        # entries (not events) by receipt status, over this poller's life: what operators count
        self.entries_received: Counter[str] = Counter()
        self.name = f"{psa.system}:delivery.approved"
        self._marks = Watermarks(db, now)

    def poll(self) -> list[Receipt]:
        page = self.psa.approved_delivery_since(self._marks.get(self.name))
        system = self.psa.system
        if self.batch_size is None:
            events = [delivery_event(r, system, self.xref) for r in page.records]
        else:
            events = [
                delivery_batch_event(
                    page.records[start : start + self.batch_size], system, self.xref
                )
                for start in range(0, len(page.records), self.batch_size)
            ]
        receipts: list[Receipt] = []
        for start in range(0, len(events), 500):
            receipts += self.inbox.accept(events[start : start + 500])
        for event, receipt in zip(events, receipts, strict=True):
            size = len(event.data["events"]) if self.batch_size is not None else 1
            self.entries_received[str(receipt.status)] += size
        if page.watermark is not None:
            self._marks.save(self.name, page.watermark)
        return receipts


def delivery_batch_event(
    records: Sequence[DeliveryRecord], system: str, xref: XrefHub
) -> CloudEvent:
    """One ``delivery.batch_received`` event for PSA records (at most MAX_DELIVERY_BATCH)."""
    events = [billing_event_of(r, system, xref) for r in records]
    stamps = "\n".join(_delivery_event_id(r, e) for r, e in zip(records, events, strict=True))
    batch = DeliveryBatch(
        batch_id=f"{system}:{hashlib.sha256(stamps.encode()).hexdigest()[:32]}", events=events
    )
    return new_event(
        "delivery.batch_received",
        batch,
        source=f"urn:q2c:{system}:poller",
        subject=batch.batch_id,
        event_id=batch.batch_id,
    )


class BillingPoller:
    def __init__(
        self, db: Engine, inbox: Inbox, billing: BillingPort, *, now: Callable[[], datetime]
    ) -> None:
        self.inbox = inbox
        self.billing = billing
        self._marks = Watermarks(db, now)

    def poll(self) -> list[Receipt]:
        system = self.billing.system
        source = f"urn:q2c:{system}:poller"
        invoices_mark, payments_mark = f"{system}:invoice.finalized", f"{system}:payment.received"
        invoices = self.billing.finalized_invoices_since(self._marks.get(invoices_mark))
        receipts = self.inbox.accept(
            [
                new_event(
                    "invoice.finalized",
                    invoice,
                    source=source,
                    subject=invoice.xrefs.get(system, invoice.id),
                    event_id=f"{invoice.xrefs.get(system, invoice.id)}:finalized",
                )
                for invoice in invoices.invoices
            ]
        )
        if invoices.watermark is not None:
            self._marks.save(invoices_mark, invoices.watermark)
        payments = self.billing.payments_since(self._marks.get(payments_mark))
        receipts += self.inbox.accept(
            [
                new_event(
                    "payment.received",
                    payment,
                    source=source,
                    subject=payment.xrefs.get(system, payment.id),
                    event_id=f"{payment.xrefs.get(system, payment.id)}:received",
                )
                for payment in payments.payments
            ]
        )
        if payments.watermark is not None:
            self._marks.save(payments_mark, payments.watermark)
        return receipts
