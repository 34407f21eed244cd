"""NATS JetStream as the outbound event transport for scale-out.

Subjects are partitioned: ``<prefix>.<partition>.<event type>`` (partition = legal entity,
region or business unit), so ordering holds per partition and consumers can filter. Each
message carries ``Nats-Msg-Id`` = the CloudEvent id: when the outbox relay publishes again
after a crash, JetStream's duplicate window drops the second copy.

nats-py is asyncio; the relay is synchronous, so the client lives on a private event loop
thread (anyio's blocking portal), like the in-process sandbox transport.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import Any

import anyio.from_thread
import nats
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from q2c.canonical.events import CloudEvent
from q2c.errors import RetriableError

__all__ = ["NatsPublisher", "subject_for"]

_TOKEN = re.compile(r"[^A-Za-z0-9_-]")


def subject_for(prefix: str, partition_key: str | None, event_type: str) -> str:
    partition = _TOKEN.sub("_", partition_key or "global")
    return f"{prefix}.{partition}.{event_type}"


class NatsPublisher:
    """``Publisher`` for the outbox relay; creates the stream if it does not exist."""

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        *,
        stream: str = "Q2C",
        prefix: str = "q2c.events",
        duplicate_window_seconds: float = 600.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.stream = stream
        self.prefix = prefix
        self._portal_cm: AbstractContextManager[anyio.from_thread.BlockingPortal] = (
            anyio.from_thread.start_blocking_portal()
        )
        self._portal = self._portal_cm.__enter__()
        self._nc: Any = None
        self._js: Any = None
        try:
            self._portal.call(self._connect, duplicate_window_seconds, connect_timeout)
        except Exception:
            self._portal_cm.__exit__(None, None, None)
            raise

    async def _connect(self, window: float, connect_timeout: float) -> None:
        try:
            self._nc = await nats.connect(
                self.url,
                connect_timeout=connect_timeout,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.2,
            )
        except Exception as exc:
            raise RetriableError(
                "The NATS event transport could not be reached",
                detail=f"{self.url}: {exc}",
                system="nats",
            ) from exc
        self._js = self._nc.jetstream()
        config = StreamConfig(
            name=self.stream, subjects=[f"{self.prefix}.>"], duplicate_window=window
        )
        try:
            await self._js.stream_info(self.stream)
        except NotFoundError:
            await self._js.add_stream(config)

    def publish(self, event: CloudEvent, partition_key: str | None) -> None:
        subject = subject_for(self.prefix, partition_key, event.type)
        self._portal.call(self._publish, subject, event)

    async def _publish(self, subject: str, event: CloudEvent) -> None:
        try:
            await self._js.publish(
                subject,
                event.to_json(),
                headers={
                    "Nats-Msg-Id": event.id,
                    "ce-specversion": event.specversion,
                    "ce-type": event.type,
                    "ce-source": event.source,
                    "content-type": "application/cloudevents+json",
                },
            )
        except Exception as exc:
            raise RetriableError(
                "Publishing to NATS JetStream failed",
                detail=f"{subject}: {type(exc).__name__}: {exc}",
                system="nats",
            ) from exc

    def close(self) -> None:
        if self._nc is not None:
            self._portal.call(self._nc.close)
            self._nc = None
        self._portal_cm.__exit__(None, None, None)
