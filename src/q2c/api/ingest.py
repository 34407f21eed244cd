"""What ``POST /v1/events`` and the webhook receivers share: a size-limited body read, CloudEvent
validation with an error per field, and the receipt of each event put in the inbox."""

from __future__ import annotations

from typing import Literal

from fastapi import Request
from pydantic import BaseModel

from q2c.api.problems import ApiError
from q2c.canonical.events import CloudEvent
from q2c.runtime.inbox import Receipt
from q2c.runtime.metrics import EVENTS_INGESTED

__all__ = ["EventReceipt", "IngestResponse", "read_body", "receipts_of"]


class EventReceipt(BaseModel):
    index: int
    id: str
    source: str
    status: Literal["accepted", "duplicate", "duplicate_business_key", "unrouted", "disabled"]
    transaction_id: str | None


class IngestResponse(BaseModel):
    accepted: int
    duplicates: int
    results: list[EventReceipt]


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes ``limit`` (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the body is {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"the body exceeds the limit of {limit} bytes")
    return bytes(body)


def receipts_of(receipts: list[Receipt], events: list[CloudEvent]) -> IngestResponse:
    for receipt, event in zip(receipts, events, strict=True):
        EVENTS_INGESTED.labels(type=event.type, status=receipt.status).inc()
    results = [
        EventReceipt(
            index=i,
            id=r.event_id,
            source=r.source,
            status=r.status,
            transaction_id=r.transaction_id,
        )
        for i, r in enumerate(receipts)
    ]
    duplicates = sum(r.status in ("duplicate", "duplicate_business_key") for r in receipts)
    return IngestResponse(
        accepted=len(receipts) - duplicates, duplicates=duplicates, results=results
    )


