"""NATS JetStream as an inbound event transport: other systems and q2c nodes send CloudEvents
to the hub over a durable pull consumer.

A message holds one CloudEvent 1.0, in either content mode of the CloudEvents NATS binding:

- structured: the body is the event as JSON (``content-type: application/cloudevents+json``,
  or no content type at all), as q2c's own ``NatsPublisher`` sends it;
- binary: ``ce-specversion``, ``ce-id``, ``ce-source``, ``ce-type``... headers carry the
  attributes and the body is the event's data (``content-type`` is its ``datacontenttype``).

Each event is validated by the same code as ``POST /v1/events``. What happens to a message:

- valid, new or seen before → put in the inbox with the rest of its fetch in one database
  transaction, and acknowledged only after that commit (an ack lost in a crash means a
  redelivery that the inbox drops as a duplicate: processed once);
- invalid → kept in payload history with the precise validation error, then terminated so
  JetStream never redelivers it; the messages after it go on (bad input loses nothing and
  blocks nothing);
- the store is unavailable → negatively acknowledged with a delay: JetStream redelivers it.

nats-py is asyncio; the worker is synchronous, so the client lives on a private event loop
thread (anyio's blocking portal), like ``NatsPublisher``. Database work stays on the caller's
thread: the event loop only fetches and settles messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.from_thread
import nats
import orjson
import structlog
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError
from prometheus_client import Counter
from sqlalchemy.exc import SQLAlchemyError

from q2c.canonical.events import CloudEvent
from q2c.canonical.inbound import validate_events
from q2c.errors import RetriableError
from q2c.runtime.inbox import Inbox
from q2c.runtime.jsonutil import dumps
from q2c.runtime.metrics import EVENTS_INGESTED, REGISTRY
from q2c.runtime.payload_history import PayloadHistory

__all__ = ["INBOUND_MESSAGES", "InboundTally", "JetStreamInbound", "decode_message"]

log = structlog.get_logger("q2c.nats_inbound")

INBOUND_MESSAGES = Counter(
    "q2c_nats_inbound_messages_total",
    "Messages consumed from NATS JetStream by outcome: an inbox status (accepted, duplicate, "
    "...), invalid (kept and terminated) or deferred (store unavailable, redelivered later)",
    ["outcome"],
    registry=REGISTRY,
)

_STRUCTURED = "application/cloudevents"
_JSON_SUFFIXES = ("/json", "+json")
_DUPLICATES = ("duplicate", "duplicate_business_key")


@dataclass(frozen=True, slots=True)
class InboundTally:
    """What one ``poll()`` did with the messages it fetched."""

    fetched: int = 0
    accepted: int = 0
    duplicates: int = 0
    invalid: int = 0
    deferred: int = 0

    def __add__(self, other: InboundTally) -> InboundTally:
        return InboundTally(
            self.fetched + other.fetched,
            self.accepted + other.accepted,
            self.duplicates + other.duplicates,
            self.invalid + other.invalid,
            self.deferred + other.deferred,
        )


@dataclass(frozen=True, slots=True)
class _Decoded:
    message: Msg
    item: Any  # the event as a structured-mode JSON value, or the raw text if undecodable
    event: CloudEvent | None
    error: str | None


def decode_message(body: bytes, headers: Mapping[str, str] | None) -> tuple[Any, str | None]:
    """The event of a message as a structured-mode JSON value, or ``(raw text, error)``."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    content_type = lowered.get("content-type", "").split(";")[0].strip().lower()
    text = body.decode("utf-8", "replace")
    if b"\\u0000" in body or b"\x00" in body:
        return text.replace("\x00", "\\0"), "event strings must not contain NUL characters"
    binary = "ce-specversion" in lowered and not content_type.startswith(_STRUCTURED)
    if not binary:
        try:
            return orjson.loads(body), None
        except orjson.JSONDecodeError as exc:
            return text, f"the message body is not a JSON CloudEvent: {exc}"
    item: dict[str, Any] = {k[3:]: v for k, v in lowered.items() if k.startswith("ce-")}
    if content_type:
        item["datacontenttype"] = content_type
    if not body:
        return item, None
    if not content_type or content_type.endswith(_JSON_SUFFIXES):
        try:
            item["data"] = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            item["data"] = text
            return (
                item,
                f"event.data is not valid JSON ({content_type or 'no content-type'}): {exc}",
            )
    else:
        item["data"] = text
    return item, None


class JetStreamInbound:
    """A worker feed: each ``poll()`` pulls what is waiting on the inbound subjects into the
    inbox, ``batch`` messages per fetch, at most ``max_fetches`` fetches per poll."""

    def __init__(
        self,
        inbox: Inbox,
        payloads: PayloadHistory,
        *,
        url: str = "nats://127.0.0.1:4222",
        stream: str = "Q2C_INBOUND",
        subjects: Sequence[str] = ("q2c.inbound.>",),
        durable: str = "q2c-hub",
        batch: int = 100,
        fetch_timeout_seconds: float = 0.2,
        max_fetches: int = 10,
        ack_wait_seconds: float = 30.0,
        redelivery_delay_seconds: float = 5.0,
        connect_timeout_seconds: float = 5.0,
        credentials_file: Path | None = None,
    ) -> None:
        if not subjects:
            raise ValueError("JetStreamInbound needs at least one inbound subject")
        self.inbox = inbox
        self.payloads = payloads
        self.url = url
        self.stream = stream
        self.subjects = list(subjects)
        self.durable = durable
        self.batch = batch
        self.fetch_timeout_seconds = fetch_timeout_seconds
        self.max_fetches = max_fetches
        self.redelivery_delay_seconds = redelivery_delay_seconds
        self._portal_cm: AbstractContextManager[anyio.from_thread.BlockingPortal] = (
            anyio.from_thread.start_blocking_portal()
        )
        self._portal = self._portal_cm.__enter__()
        self._nc: Any = None
        self._subscription: Any = None
        self._closed = False
        try:
            self._portal.call(
                self._connect, ack_wait_seconds, connect_timeout_seconds, credentials_file
            )
        except BaseException:
            self.close()
            raise

    async def _connect(
        self, ack_wait: float, connect_timeout: float, credentials: Path | None
    ) -> None:
        try:
            self._nc = await nats.connect(
                self.url,
                connect_timeout=connect_timeout,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.2,
                user_credentials=str(credentials) if credentials else None,
            )
        except Exception as exc:
            raise RetriableError(
                "The NATS event transport could not be reached",
                detail=f"{self.url}: {exc}",
                system="nats",
            ) from exc
        js = self._nc.jetstream()
        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            await js.add_stream(
                StreamConfig(name=self.stream, subjects=self.subjects, duplicate_window=600.0)
            )
        try:
            await js.consumer_info(self.stream, self.durable)
        except NotFoundError:
            # One subject is a filter; several need the stream to hold only inbound subjects
            # (filter_subjects needs NATS 2.10).
            await js.add_consumer(
                self.stream,
                ConsumerConfig(
                    durable_name=self.durable,
                    ack_policy=AckPolicy.EXPLICIT,
                    deliver_policy=DeliverPolicy.ALL,
                    ack_wait=ack_wait,
                    filter_subject=self.subjects[0] if len(self.subjects) == 1 else None,
                ),
            )
        self._subscription = await js.pull_subscribe_bind(durable=self.durable, stream=self.stream)

    # --- the feed ------------------------------------------------------------------------

    def poll(self) -> InboundTally:
        """Fetch, validate, put in the inbox and settle, until a fetch comes back short."""
        totals = InboundTally()
        for _ in range(self.max_fetches):
            messages = self._portal.call(self._fetch)
            if not messages:
                break
            totals += self._consume(messages)
            if len(messages) < self.batch:
                break
        return totals

    async def _fetch(self) -> list[Msg]:
        try:
            messages: list[Msg] = await self._subscription.fetch(
                self.batch, timeout=self.fetch_timeout_seconds
            )
        except TimeoutError:  # nats-py's own and asyncio's: nothing is waiting
            return []
        except Exception as exc:
            raise RetriableError(
                "Fetching inbound events from NATS JetStream failed",
                detail=f"{self.stream}/{self.durable}: {type(exc).__name__}: {exc}",
                system="nats",
            ) from exc
        return messages

    def _consume(self, messages: list[Msg]) -> InboundTally:
        decoded = [self._decode(message) for message in messages]
        terminate: list[Msg] = []
        defer: list[Msg] = []
        for bad in (d for d in decoded if d.error is not None):
            if self._keep_rejected(bad):
                terminate.append(bad.message)
            else:
                defer.append(bad.message)
        good = [d for d in decoded if d.event is not None]
        acknowledge: list[Msg] = []
        accepted = duplicates = 0
        if good:
            events = [d.event for d in good if d.event is not None]
            try:
                receipts = self.inbox.accept(events)
            except SQLAlchemyError as exc:
                log.warning(
                    "store unavailable; inbound events will be redelivered",
                    stream=self.stream,
                    events=len(good),
                    delay_seconds=self.redelivery_delay_seconds,
                    detail=str(exc)[-500:],
                )
                defer.extend(d.message for d in good)
            else:
                for receipt, event in zip(receipts, events, strict=True):
                    EVENTS_INGESTED.labels(type=event.type, status=receipt.status).inc()
                    INBOUND_MESSAGES.labels(outcome=receipt.status).inc()
                duplicates = sum(r.status in _DUPLICATES for r in receipts)
                accepted = len(receipts) - duplicates
                self._keep_accepted(good)
                acknowledge = [d.message for d in good]
        INBOUND_MESSAGES.labels(outcome="invalid").inc(len(terminate))
        INBOUND_MESSAGES.labels(outcome="deferred").inc(len(defer))
        self._portal.call(self._settle, acknowledge, terminate, defer)
        return InboundTally(len(messages), accepted, duplicates, len(terminate), len(defer))

    def _decode(self, message: Msg) -> _Decoded:
        item, error = decode_message(message.data, message.headers)
        if error is not None:
            return _Decoded(message, item, None, error)
        events, errors = validate_events([item])
        if errors:
            return _Decoded(message, item, None, "; ".join(e["message"] for e in errors))
        return _Decoded(message, item, events[0], None)

    def _keep_rejected(self, bad: _Decoded) -> bool:
        """Keep the refused message and why in payload history; False if the store said no
        (the message is then redelivered later rather than lost)."""
        message = bad.message
        deliveries = message.metadata.num_delivered
        log.warning(
            "invalid inbound event terminated",
            stream=self.stream,
            subject=message.subject,
            sequence=message.metadata.sequence.stream,
            deliveries=deliveries,
            error=bad.error,
        )
        body = bad.item if isinstance(bad.item, str) else dumps(bad.item)
        try:
            self.payloads.record_inbound(
                system=_source_of(bad.item) or "nats",
                operation=f"NATS {message.subject} (refused)",
                body=body,
                correlation_id=_correlation_of(bad.item),
                headers={**(message.headers or {}), "nats-subject": message.subject},
                status=422,
                error=bad.error,
            )
        except SQLAlchemyError as exc:
            log.warning("could not keep a refused inbound event", detail=str(exc)[-500:])
            return False
        return True

    def _keep_accepted(self, good: list[_Decoded]) -> None:
        """One payload-history row per fetch, like one per ``POST /v1/events`` batch. The
        events are already committed in the inbox (which keeps each one's payload), so a
        failure here is logged, not retried."""
        sources = {d.event.source for d in good if d.event is not None}
        first = good[0].event
        try:
            self.payloads.record_inbound(
                system=sources.pop() if len(sources) == 1 else "nats",
                operation=f"NATS {self.stream} ({len(good)} event{'s' if len(good) > 1 else ''})",
                body=dumps([d.item for d in good]),
                correlation_id=first.correlationid if first is not None else None,
                headers={"nats-subjects": " ".join(sorted({d.message.subject for d in good}))},
                status=202,
            )
        except SQLAlchemyError as exc:
            log.warning("could not keep inbound payloads", detail=str(exc)[-500:])

    async def _settle(self, acknowledge: list[Msg], terminate: list[Msg], defer: list[Msg]) -> None:
        for message in acknowledge:
            await message.ack()
        for message in terminate:
            await message.term()
        for message in defer:
            await message.nak(delay=self.redelivery_delay_seconds or None)
        await self._nc.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._nc is not None:
            nc, self._nc = self._nc, None
            try:
                self._portal.call(nc.close)
            except Exception as exc:  # closing is best effort: the process is stopping anyway
                log.warning("closing the NATS inbound connection failed", detail=str(exc))
        self._portal_cm.__exit__(None, None, None)


def _source_of(item: Any) -> str | None:
    source = item.get("source") if isinstance(item, dict) else None
    return source[:100] if isinstance(source, str) and source else None


def _correlation_of(item: Any) -> str | None:
    correlation = item.get("correlationid") if isinstance(item, dict) else None
    return correlation[:200] if isinstance(correlation, str) and correlation else None
