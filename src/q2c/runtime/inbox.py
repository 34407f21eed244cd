"""Inbox: the idempotent consumer in front of every flow.

An event whose ``source`` + ``id`` was seen before is acknowledged as a duplicate and never
processed again. A new event starts (or joins) the business transaction of the flow its type
routes to; a second event for the same flow, business key and version joins the transaction
already there instead of starting another. Both happen in one database transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeVar

from sqlalchemy import Connection, Engine, Table, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from q2c.canonical.events import CloudEvent, validate_data
from q2c.observability import ingest_span, stored_event_json
from q2c.runtime.flow import Flow
from q2c.store.schema import inbox, transactions

__all__ = ["Inbox", "Receipt", "ReceiptStatus", "Routing"]

_T = TypeVar("_T")

ReceiptStatus = Literal["accepted", "duplicate", "duplicate_business_key", "unrouted", "disabled"]


@dataclass(frozen=True, slots=True)
class Receipt:
    source: str
    event_id: str
    status: ReceiptStatus
    transaction_id: str | None = None


@dataclass(frozen=True, slots=True)
class Routing:
    """Which flow handles an event type, and whether it runs live or in shadow for a partition."""

    flows: dict[str, Flow]
    mode_for: Callable[[str, str | None], Literal["live", "shadow", "off"]]

    def flow_for(self, event_type: str) -> Flow | None:
        for flow in self.flows.values():
            if event_type in flow.triggers:
                return flow
        return None


def _insert(connection: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """Dialect insert with ON CONFLICT DO NOTHING support (both backends have it)."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class Inbox:
    def __init__(self, engine: Engine, routing: Routing, *, now: Callable[[], datetime]) -> None:
        self.engine = engine
        self.routing = routing
        self.now = now

    def accept(self, events: Sequence[CloudEvent]) -> list[Receipt]:
        """Record and route a batch of already-validated events, in one database transaction.

        Batched end to end (one statement per table) because ingest is the hot path.
        """
        if not events:
            return []
        with self.engine.begin() as connection:
            return self.accept_in(connection, events)

    def accept_in(self, connection: Connection, events: Sequence[CloudEvent]) -> list[Receipt]:
        """``accept`` inside the caller's transaction: a flow step chains the next flow's
        event in the same commit that records the step done."""
        with ingest_span(events) as span:
            receipts = self._accept_in(connection, events)
            span.record(receipts)
        return receipts

    def _accept_in(self, connection: Connection, events: Sequence[CloudEvent]) -> list[Receipt]:
        received_at = self.now()
        receipts: dict[tuple[str, str], Receipt] = {}
        if events:
            keys = list({e.idempotency_key for e in events})
            seen: set[tuple[str, str]] = set()
            for chunk in _chunks(keys, 500):
                seen.update(
                    tuple(row)
                    for row in connection.execute(
                        select(inbox.c.source, inbox.c.event_id).where(
                            tuple_(inbox.c.source, inbox.c.event_id).in_(chunk)
                        )
                    )
                )
            fresh: list[CloudEvent] = []
            duplicate_at: set[int] = set()
            taken: set[tuple[str, str]] = set()
            for position, event in enumerate(events):
                key = event.idempotency_key
                if key in seen or key in taken:
                    duplicate_at.add(position)
                    continue
                taken.add(key)
                fresh.append(event)
            alone = len(events) == 1
            payloads = {e.idempotency_key: stored_event_json(e, alone=alone) for e in fresh}
            routed = self._start_transactions(connection, fresh, received_at, payloads)
            rows = []
            for event in fresh:
                status, transaction_id = routed[event.idempotency_key]
                receipts[event.idempotency_key] = Receipt(
                    event.source, event.id, status, transaction_id
                )
                rows.append(
                    {
                        "source": event.source,
                        "event_id": event.id,
                        "type": event.type,
                        "subject": event.subject,
                        "correlation_id": event.correlationid,
                        "transaction_id": transaction_id,
                        "status": status,
                        "payload": payloads[event.idempotency_key],
                        "received_at": received_at,
                    }
                )
            if rows:
                statement = _insert(connection, inbox).on_conflict_do_nothing(
                    index_elements=["source", "event_id"]
                )
                connection.execute(statement, rows)
        return [
            Receipt(e.source, e.id, "duplicate")
            if i in duplicate_at
            else receipts[e.idempotency_key]
            for i, e in enumerate(events)
        ]

    def _start_transactions(
        self,
        connection: Connection,
        events: list[CloudEvent],
        now: datetime,
        payloads: dict[tuple[str, str], str],
    ) -> dict[tuple[str, str], tuple[ReceiptStatus, str | None]]:
        """Create one transaction per new (flow, business key, version); join existing ones."""
        routed: dict[tuple[str, str], tuple[ReceiptStatus, str | None]] = {}
        wanted: dict[tuple[str, str, int], dict[str, object]] = {}
        event_business: dict[tuple[str, str], tuple[str, str, int]] = {}
        for event in events:
            flow = self.routing.flow_for(event.type)
            if flow is None:
                routed[event.idempotency_key] = ("unrouted", None)
                continue
            flow_key = flow.key(event, validate_data(event))
            mode = self.routing.mode_for(flow.name, flow_key.partition_key)
            if mode == "off":
                routed[event.idempotency_key] = ("disabled", None)
                continue
            business = (flow.name, flow_key.business_key, flow_key.version)
            event_business[event.idempotency_key] = business
            if business in wanted:
                continue
            transaction_id = uuid.uuid4().hex
            wanted[business] = {
                "id": transaction_id,
                "flow": flow.name,
                "business_key": flow_key.business_key,
                "version": flow_key.version,
                "partition_key": flow_key.partition_key,
                "mode": mode,
                "status": "pending",
                "correlation_id": event.correlationid or transaction_id,
                "event_type": event.type,
                "input": payloads[event.idempotency_key],
                "current_step": flow.steps[0].name,
                "attempts": 0,
                "replay_count": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
        created: set[str] = set()
        if wanted:
            statement = (
                _insert(connection, transactions)
                .on_conflict_do_nothing(index_elements=["flow", "business_key", "version"])
                .returning(transactions.c.id)
            )
            created = set(connection.execute(statement, list(wanted.values())).scalars())
        existing: dict[tuple[str, str, int], str] = {}
        missing = [b for b, row in wanted.items() if row["id"] not in created]
        for chunk in _chunks(missing, 500):
            for row in connection.execute(
                select(
                    transactions.c.flow,
                    transactions.c.business_key,
                    transactions.c.version,
                    transactions.c.id,
                ).where(
                    tuple_(
                        transactions.c.flow, transactions.c.business_key, transactions.c.version
                    ).in_(chunk)
                )
            ):
                existing[(row.flow, row.business_key, row.version)] = row.id
        first_claim: set[tuple[str, str, int]] = set()
        for key, business in event_business.items():
            row_id = str(wanted[business]["id"])
            if row_id in created and business not in first_claim:
                first_claim.add(business)
                routed[key] = ("accepted", row_id)
            else:
                routed[key] = ("duplicate_business_key", existing.get(business, row_id))
        return routed


def _chunks(items: list[_T], size: int) -> list[list[_T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
