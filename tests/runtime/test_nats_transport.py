"""Outbox relay over real NATS JetStream (127.0.0.1:4222): partitioned subjects, and a
re-publish after a relay crash is dropped by JetStream's Msg-Id dedupe."""

from __future__ import annotations

import asyncio
import uuid

import nats
import pytest
from sqlalchemy import update

from q2c.canonical.events import new_event
from q2c.runtime.nats_transport import NatsPublisher, subject_for
from q2c.runtime.outbox import OutboxRelay, enqueue
from q2c.store.schema import outbox

pytestmark = pytest.mark.integration


async def _drain(stream: str, subject: str) -> list[tuple[str, str]]:
    nc = await nats.connect("nats://127.0.0.1:4222")
    js = nc.jetstream()
    consumer = f"test-{uuid.uuid4().hex[:6]}"
    subscription = await js.pull_subscribe(subject, durable=consumer, stream=stream)
    seen: list[tuple[str, str]] = []
    while True:
        try:
            messages = await subscription.fetch(50, timeout=1)
        except nats.errors.TimeoutError:
            break
        for message in messages:
            seen.append((message.subject, message.headers["Nats-Msg-Id"]))
            await message.ack()
    await js.delete_stream(stream)
    await nc.close()
    return seen


def test_relay_publishes_once_per_event_even_when_it_publishes_twice(sqlite_db, clock):
    stream = f"Q2CTEST{uuid.uuid4().hex[:6].upper()}"
    prefix = f"q2ctest.{stream.lower()}"
    publisher = NatsPublisher(stream=stream, prefix=prefix)
    events = [
        new_event("project.activated", {"n": i}, subject=f"opp-{i}", event_id=f"evt-{i}")
        for i in range(5)
    ]
    with sqlite_db.begin() as connection:
        enqueue(connection, events[:3], partition_key="US01", transaction_id="t1", now=clock())
        enqueue(connection, events[3:], partition_key="UK01", transaction_id="t2", now=clock())
    relay = OutboxRelay(sqlite_db, publisher, now=clock)
    assert relay.publish_pending() == 5
    # the relay "crashed" before recording the publish: everything goes out again
    with sqlite_db.begin() as connection:
        connection.execute(update(outbox).values(published_at=None))
    assert relay.publish_pending() == 5
    publisher.close()

    seen = asyncio.run(_drain(stream, f"{prefix}.>"))
    assert sorted(msg_id for _, msg_id in seen) == [f"evt-{i}" for i in range(5)]
    assert {subject for subject, _ in seen} == {
        subject_for(prefix, "US01", "project.activated"),
        subject_for(prefix, "UK01", "project.activated"),
    }
    us = [msg_id for subject, msg_id in seen if ".US01." in subject]
    assert us == ["evt-0", "evt-1", "evt-2"]  # order kept within a partition


def test_unreachable_nats_is_a_retriable_error():
    from q2c.errors import RetriableError

    with pytest.raises(RetriableError) as info:
        NatsPublisher("nats://127.0.0.1:1", stream="NOPE", connect_timeout=0.5)
    assert "could not be reached" in info.value.message
