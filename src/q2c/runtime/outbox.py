"""Transactional outbox: outbound events are written with the state change that caused them,
then a relay publishes them (at least once; the event id lets subscribers and JetStream dedupe).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection, Engine, insert, select, update

from q2c.canonical.events import CloudEvent
from q2c.runtime.jsonutil import loads
from q2c.store.schema import outbox

__all__ = ["LocalPublisher", "OutboxRelay", "Publisher", "enqueue"]


class Publisher(Protocol):
    def publish(self, event: CloudEvent, partition_key: str | None) -> None: ...


class LocalPublisher:
    """Embedded default: keeps published events in memory and calls local subscribers."""

    def __init__(self) -> None:
        self.published: list[CloudEvent] = []
        self.subscribers: list[Callable[[CloudEvent], None]] = []

    def publish(self, event: CloudEvent, partition_key: str | None) -> None:
        self.published.append(event)
        for subscriber in self.subscribers:
            subscriber(event)


def enqueue(
    connection: Connection,
    events: Sequence[CloudEvent],
    *,
    partition_key: str | None,
    transaction_id: str | None,
    now: datetime,
) -> None:
    if not events:
        return
    connection.execute(
        insert(outbox),
        [
            {
                "event_id": e.id,
                "type": e.type,
                "subject": e.subject,
                "partition_key": partition_key,
                "correlation_id": e.correlationid,
                "transaction_id": transaction_id,
                "payload": e.to_json().decode(),
                "created_at": now,
                "attempts": 0,
            }
            for e in events
        ],
    )


class OutboxRelay:
    def __init__(
        self, engine: Engine, publisher: Publisher, *, now: Callable[[], datetime]
    ) -> None:
        self.engine = engine
        self.publisher = publisher
        self.now = now

    def publish_pending(self, limit: int = 500) -> int:
        """Publish unpublished events in order; a failure leaves the rest for the next run."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(outbox.c.id, outbox.c.payload, outbox.c.partition_key)
                .where(outbox.c.published_at.is_(None))
                .order_by(outbox.c.id)
                .limit(limit)
            ).all()
        published = 0
        for row in rows:
            event = CloudEvent.model_validate(loads(row.payload))
            try:
                self.publisher.publish(event, row.partition_key)
            except Exception:
                with self.engine.begin() as connection:
                    connection.execute(
                        update(outbox)
                        .where(outbox.c.id == row.id)
                        .values(attempts=outbox.c.attempts + 1)
                    )
                raise
            with self.engine.begin() as connection:
                connection.execute(
                    update(outbox)
                    .where(outbox.c.id == row.id)
                    .values(published_at=self.now(), attempts=outbox.c.attempts + 1)
                )
            published += 1
        return published
