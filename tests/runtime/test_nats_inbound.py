"""Inbound CloudEvents over real NATS JetStream (127.0.0.1:4222): a durable pull consumer feeds
the inbox, acks after the commit, drops duplicates and redeliveries, terminates (and keeps)
invalid events, and naks while the store is down."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import nats
import orjson
import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.exc import OperationalError

from q2c.bootstrap import Hub, bootstrap
from q2c.canonical.events import CloudEvent
from q2c.config import DEMO_CONFIG_YAML, parse_config
from q2c.connectors.memory import InMemoryCrm, InMemoryErp
from q2c.connectors.registry import Connections
from q2c.runtime.inbox import Inbox, Receipt
from q2c.runtime.nats_inbound import InboundTally, JetStreamInbound, decode_message
from q2c.runtime.outbox import LocalPublisher
from q2c.store.schema import inbox, payloads, transactions

NATS_URL = "nats://127.0.0.1:4222"


@dataclass(frozen=True)
class Channel:
    stream: str
    subject: str  # the consumer's filter, e.g. q2ctest.inbound.abc123.>
    prefix: str  # where tests publish: <prefix>.<anything>
    durable: str


@pytest.fixture
def channel() -> Iterator[Channel]:
    token = uuid.uuid4().hex[:8]
    prefix = f"q2ctest.inbound.{token}"
    made = Channel(f"Q2CIN{token.upper()}", f"{prefix}.>", prefix, f"hub-{token}")
    yield made
    asyncio.run(_delete_stream(made.stream))


@pytest.fixture
def hub(db, clock, channel) -> Iterator[Hub]:
    data = yaml.safe_load(DEMO_CONFIG_YAML)
    data["transport"] = {
        "kind": "nats",
        "url": NATS_URL,
        "inbound_subjects": [channel.subject],
        "inbound_stream": channel.stream,
        "durable": channel.durable,
        "inbound_batch": 10,
        "redelivery_delay_seconds": 0.2,
    }
    connections = Connections()
    connections.add("salesforce", ["crm"], InMemoryCrm(system="salesforce"))
    connections.add("netsuite", ["erp"], InMemoryErp(system="netsuite"))
    made = bootstrap(
        parse_config(data, env={}),
        db=db,
        clock=clock,
        connections=connections,
        publisher=LocalPublisher(),
        worker_id="nats-inbound-test",
    )
    yield made
    made.close()


def _closed_won(opportunity: str, event_id: str | None = None) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id or f"evt-{opportunity}",
        "source": "urn:test:crm",
        "type": "opportunity.closed_won",
        "subject": opportunity,
        "correlationid": f"corr-{opportunity}",
        "data": {"opportunity_id": opportunity, "legal_entity": "US01"},
    }


def _structured(event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    return orjson.dumps(event), {"content-type": "application/cloudevents+json"}


async def _publish(subject: str, messages: Sequence[tuple[bytes, dict[str, str]]]) -> None:
    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    for body, headers in messages:
        await js.publish(subject, body, headers=headers)
    await nc.close()


async def _pending(stream: str, durable: str) -> tuple[int, int]:
    """(messages not yet delivered, messages delivered and not yet acked or terminated),
    once the server has applied the acks (it does so asynchronously: ask a few times)."""
    nc = await nats.connect(NATS_URL)
    for _ in range(50):
        info = await nc.jetstream().consumer_info(stream, durable)
        if (info.num_pending, info.num_ack_pending) == (0, 0):
            break
        await asyncio.sleep(0.05)
    await nc.close()
    return info.num_pending, info.num_ack_pending


async def _delete_stream(stream: str) -> None:
    nc = await nats.connect(NATS_URL)
    with contextlib.suppress(nats.js.errors.NotFoundError):  # the test never created it
        await nc.jetstream().delete_stream(stream)
    await nc.close()


def _count(hub: Hub, table: sa.Table) -> int:
    with hub.db.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def _inbound_consumer(hub: Hub) -> JetStreamInbound:
    [consumer] = [f for f in hub.feeds(poll_crm=False) if isinstance(f, JetStreamInbound)]
    return consumer


def _poll_until_fetched(consumer: JetStreamInbound, attempts: int = 60) -> InboundTally:
    """Poll until a (re)delivery arrives; each poll waits at most its short fetch timeout."""
    for _ in range(attempts):
        tally = consumer.poll()
        if tally.fetched:
            return tally
    raise AssertionError("nothing was delivered")


# --- decoding (no broker) ------------------------------------------------------------------


def test_structured_message_decodes_to_the_event_itself():
    event = _closed_won("006A")
    item, error = decode_message(*_structured(event))
    assert error is None and item == event


def test_binary_mode_headers_carry_the_attributes_and_the_body_is_the_data():
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "evt-bin-1",
        "ce-source": "urn:test:crm",
        "ce-type": "opportunity.closed_won",
        "content-type": "application/json",
    }
    item, error = decode_message(b'{"opportunity_id": "006B"}', headers)
    assert error is None
    assert item == {
        "specversion": "1.0",
        "id": "evt-bin-1",
        "source": "urn:test:crm",
        "type": "opportunity.closed_won",
        "datacontenttype": "application/json",
        "data": {"opportunity_id": "006B"},
    }
    CloudEvent.model_validate(item)


def test_undecodable_bodies_are_refused_with_the_reason():
    item, error = decode_message(b'{"specversion": "1.0",', {})
    assert item == '{"specversion": "1.0",'
    assert error is not None and error.startswith("the message body is not a JSON CloudEvent")
    _, nul = decode_message(b'{"id": "a\\u0000b"}', {})
    assert nul == "event strings must not contain NUL characters"


# --- over JetStream -------------------------------------------------------------------------


@pytest.mark.integration
def test_published_events_reach_the_inbox_and_start_transactions(hub, channel):
    binary_headers = {
        "ce-specversion": "1.0",
        "ce-id": "evt-006D",
        "ce-source": "urn:test:crm",
        "ce-type": "opportunity.closed_won",
        "content-type": "application/json",
    }
    messages = [_structured(_closed_won(o)) for o in ("006A", "006B", "006C")]
    messages.append((b'{"opportunity_id": "006D", "legal_entity": "US01"}', binary_headers))
    consumer = _inbound_consumer(hub)  # creates the stream and the durable consumer
    asyncio.run(_publish(f"{channel.prefix}.US01.opportunity", messages))

    tally = consumer.poll()

    assert tally == InboundTally(fetched=4, accepted=4)
    assert _count(hub, inbox) == 4 and _count(hub, transactions) == 4
    with hub.db.connect() as connection:
        keys = set(connection.execute(sa.select(transactions.c.business_key)).scalars())
    assert keys == {"006A", "006B", "006C", "006D"}
    assert asyncio.run(_pending(channel.stream, channel.durable)) == (0, 0)  # all acked
    [kept] = hub.payloads.for_correlation("corr-006A")
    assert kept["direction"] == "inbound" and kept["status"] == 202
    assert "006D" in kept["request_body"]  # one row for the fetch, every event in it


@pytest.mark.integration
def test_the_same_event_published_twice_is_processed_once(hub, channel):
    body = _structured(_closed_won("006A"))
    consumer = _inbound_consumer(hub)
    asyncio.run(_publish(f"{channel.prefix}.US01", [body, body]))

    tally = consumer.poll()
    asyncio.run(_publish(f"{channel.prefix}.US01", [body]))
    later = consumer.poll()

    assert tally == InboundTally(fetched=2, accepted=1, duplicates=1)
    assert later == InboundTally(fetched=1, duplicates=1)
    assert _count(hub, inbox) == 1 and _count(hub, transactions) == 1
    assert asyncio.run(_pending(channel.stream, channel.durable)) == (0, 0)


class _CrashAfterCommit(Inbox):
    """The worker dies between the inbox commit and the ack."""

    def accept(self, events: Sequence[CloudEvent]) -> list[Receipt]:
        super().accept(events)
        raise RuntimeError("worker killed before acking")


@pytest.mark.integration
def test_a_redelivery_after_a_crash_before_the_ack_is_a_duplicate(hub, channel):
    options: dict[str, Any] = {
        "url": NATS_URL,
        "stream": channel.stream,
        "subjects": [channel.subject],
        "durable": channel.durable,
        "ack_wait_seconds": 1.0,
    }
    crashing = JetStreamInbound(
        _CrashAfterCommit(hub.db, hub.inbox.routing, now=hub.clock), hub.payloads, **options
    )
    asyncio.run(_publish(f"{channel.prefix}.US01", [_structured(_closed_won("006A"))]))
    with pytest.raises(RuntimeError, match="before acking"):
        crashing.poll()
    crashing.close()
    assert _count(hub, transactions) == 1

    restarted = JetStreamInbound(hub.inbox, hub.payloads, **options)
    try:
        tally = _poll_until_fetched(restarted)  # JetStream redelivers once ack_wait is over
    finally:
        restarted.close()

    assert tally == InboundTally(fetched=1, duplicates=1)
    assert _count(hub, inbox) == 1 and _count(hub, transactions) == 1
    assert asyncio.run(_pending(channel.stream, channel.durable)) == (0, 0)


@pytest.mark.integration
def test_an_invalid_event_is_kept_and_terminated_without_blocking_the_next(hub, channel):
    missing_opportunity = _closed_won("006X")
    missing_opportunity["data"] = {"legal_entity": "US01"}
    unknown_type = {**_closed_won("006Y"), "type": "opportunity.teleported"}
    messages = [
        _structured(_closed_won("006A")),
        _structured(missing_opportunity),
        (b"not json at all", {}),
        _structured(unknown_type),
        _structured(_closed_won("006B")),
    ]
    consumer = _inbound_consumer(hub)
    asyncio.run(_publish(f"{channel.prefix}.US01", messages))

    tally = consumer.poll()

    assert tally == InboundTally(fetched=5, accepted=2, invalid=3)
    assert _count(hub, transactions) == 2
    assert asyncio.run(_pending(channel.stream, channel.durable)) == (0, 0)  # not redelivered
    assert consumer.poll() == InboundTally()
    with hub.db.connect() as connection:
        refused = connection.execute(
            sa.select(payloads.c.request_body, payloads.c.error, payloads.c.correlation_id)
            .where(payloads.c.status == 422)
            .order_by(payloads.c.id)
        ).all()
    missing, not_json, unknown = (row.error for row in refused)
    assert missing == "event.data.opportunity_id: is required"
    assert not_json.startswith("the message body is not a JSON CloudEvent: ")
    assert unknown.startswith("event.type: unknown event type 'opportunity.teleported'; ")
    assert "opportunity.closed_won" in unknown  # names what q2c does accept
    assert refused[0].correlation_id == "corr-006X"
    assert "006X" in refused[0].request_body  # the bad payload is there for an operator
    assert refused[1].request_body == "not json at all"


@pytest.mark.integration
def test_a_store_outage_naks_and_the_redelivery_succeeds(hub, channel, monkeypatch):
    real_accept = hub.inbox.accept
    calls: list[int] = []

    def accept_after_an_outage(events: Sequence[CloudEvent]) -> list[Receipt]:
        calls.append(len(events))
        if len(calls) == 1:
            raise OperationalError("INSERT INTO inbox", {}, Exception("database is locked"))
        return real_accept(events)

    monkeypatch.setattr(hub.inbox, "accept", accept_after_an_outage)
    consumer = _inbound_consumer(hub)
    asyncio.run(_publish(f"{channel.prefix}.US01", [_structured(_closed_won("006A"))]))

    first = consumer.poll()
    assert first == InboundTally(fetched=1, deferred=1)
    assert _count(hub, inbox) == 0

    second = _poll_until_fetched(consumer)  # redelivered after redelivery_delay_seconds
    assert second == InboundTally(fetched=1, accepted=1)
    assert calls == [1, 1]
    assert _count(hub, inbox) == 1 and _count(hub, transactions) == 1
    assert asyncio.run(_pending(channel.stream, channel.durable)) == (0, 0)
