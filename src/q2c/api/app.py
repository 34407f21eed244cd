"""HTTP API under /v1 (FastAPI). OpenAPI at /openapi.json.

Ingest is all-or-nothing per request: a batch with one invalid event is refused whole, with
an error per event naming the field, so nothing is half-applied; a duplicate is accepted and
reported as such, never processed twice.
"""

from __future__ import annotations

import base64
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import select, tuple_

from q2c.api.errors import describe_validation_error
from q2c.bootstrap import Hub
from q2c.canonical.events import INBOUND_TYPES, CloudEvent, validate_data
from q2c.runtime.exception_queue import ExceptionFilter
from q2c.runtime.jsonutil import loads
from q2c.runtime.metrics import EVENTS_INGESTED, REGISTRY
from q2c.store.schema import replays, steps, transactions

__all__ = ["MAX_BODY_BYTES", "create_app"]

MAX_BODY_BYTES = 1024 * 1024
_SINGLE = "application/cloudevents+json"
_BATCH = "application/cloudevents-batch+json"


class Problem(BaseModel):
    """Error body (RFC 9457 problem details, with per-field errors)."""

    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] = []


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


class ReplayRequest(BaseModel):
    requested_by: str
    reason: str | None = None
    dry_run: bool = False


def _problem(
    status: int, title: str, detail: str, errors: list[dict[str, Any]] | None = None
) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail, errors=errors or [])
    return JSONResponse(
        body.model_dump(), status_code=status, media_type="application/problem+json"
    )


def create_app(hub: Hub, *, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    app = FastAPI(
        title="q2c",
        version="1",
        description="Quote-to-cash integration hub: events in, transactions, exceptions, xref.",
    )

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=IngestResponse,
        responses={
            400: {"model": Problem},
            413: {"model": Problem},
            415: {"model": Problem},
            422: {"model": Problem},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    _SINGLE: {"schema": {"type": "object"}},
                    _BATCH: {"schema": {"type": "array", "items": {"type": "object"}}},
                    "application/json": {"schema": {}},
                },
            }
        },
    )
    async def ingest(request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body_bytes:
            return _problem(
                413,
                "Payload too large",
                f"the body is {declared} bytes; the limit is {max_body_bytes}",
            )
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                return _problem(
                    413,
                    "Payload too large",
                    f"the body exceeds the limit of {max_body_bytes} bytes",
                )
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in (_SINGLE, _BATCH, "application/json"):
            return _problem(
                415,
                "Unsupported media type",
                f"send {_SINGLE}, {_BATCH} or application/json, not {media or 'nothing'}",
            )
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return _problem(400, "Malformed JSON", f"the body is not valid JSON: {exc}")
        if media == _BATCH and not isinstance(parsed, list):
            return _problem(400, "Batch expected", f"{_BATCH} needs a JSON array of events")
        if media == _SINGLE and not isinstance(parsed, dict):
            return _problem(400, "Event expected", f"{_SINGLE} needs one JSON object")
        items = parsed if isinstance(parsed, list) else [parsed]
        if not items:
            return _problem(400, "Empty batch", "the batch holds no events")
        events, errors = _validate_events(items)
        if errors:
            return _problem(422, "Invalid event", errors[0]["message"], errors)
        receipts = await run_in_threadpool(hub.inbox.accept, events)
        await run_in_threadpool(
            hub.payloads.record_inbound,
            system=request.headers.get("ce-source") or events[0].source,
            operation=f"POST /v1/events ({len(events)} event{'s' if len(events) > 1 else ''})",
            body=body,
            correlation_id=events[0].correlationid,
            headers=dict(request.headers),
            status=202,
        )
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
        duplicates = sum(r.status == "duplicate" for r in receipts)
        return IngestResponse(
            accepted=len(receipts) - duplicates, duplicates=duplicates, results=results
        )

    @app.get("/v1/transactions")
    def list_transactions(
        flow: str | None = None,
        status: str | None = None,
        business_key: str | None = None,
        created_after: datetime | None = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        query = select(transactions).order_by(transactions.c.created_at, transactions.c.id)
        for column, value in (
            (transactions.c.flow, flow),
            (transactions.c.status, status),
            (transactions.c.business_key, business_key),
        ):
            if value is not None:
                query = query.where(column == value)
        if created_after is not None:
            query = query.where(transactions.c.created_at >= created_after)
        if cursor:
            after_created, after_id = _decode_cursor(cursor)
            query = query.where(
                tuple_(transactions.c.created_at, transactions.c.id) > (after_created, after_id)
            )
        with hub.db.connect() as connection:
            rows = connection.execute(query.limit(limit + 1)).all()
        page = rows[:limit]
        return {
            "items": [_transaction_summary(r) for r in page],
            "next_cursor": _encode_cursor(page[-1]) if len(rows) > limit else None,
        }

    @app.get("/v1/transactions/{transaction_id}")
    def get_transaction(transaction_id: str) -> dict[str, Any]:
        with hub.db.connect() as connection:
            row = connection.execute(
                select(transactions).where(transactions.c.id == transaction_id)
            ).one_or_none()
            if row is None:
                raise HTTPException(404, f"no transaction {transaction_id}")
            replay_rows = connection.execute(
                select(replays)
                .where(replays.c.transaction_id == transaction_id)
                .order_by(replays.c.id)
            ).all()
            timeline = connection.execute(
                select(steps)
                .where(steps.c.transaction_id == transaction_id)
                .order_by(steps.c.position)
            ).all()
        return {
            **_transaction_summary(row),
            "input": loads(row.input),
            "steps": [
                {
                    "step": s.step,
                    "position": s.position,
                    "status": s.status,
                    "attempt": s.attempt,
                    "system": s.system,
                    "idempotency_key": s.idempotency_key,
                    "output": loads(s.output) if s.output else None,
                    "error": loads(s.error) if s.error else None,
                    "started_at": s.started_at,
                    "finished_at": s.finished_at,
                }
                for s in timeline
            ],
            "exceptions": [
                asdict(e)
                for e in hub.engine.exception_queue.list(
                    ExceptionFilter(status=None, transaction_id=transaction_id)
                )
            ],
            "replays": [
                {
                    "requested_by": r.requested_by,
                    "requested_at": r.requested_at,
                    "reason": r.reason,
                    "dry_run": bool(r.dry_run),
                    "from_step": r.from_step,
                }
                for r in replay_rows
            ],
            "payloads": hub.payloads.for_correlation(row.correlation_id),
        }

    @app.get("/v1/exceptions")
    def list_exceptions(
        status: str | None = "open",
        flow: str | None = None,
        step: str | None = None,
        system: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[dict[str, Any]]:
        parked = hub.engine.exception_queue.list(
            ExceptionFilter(status=status, flow=flow, step=step, system=system), limit=limit
        )
        return [asdict(p) for p in parked]

    @app.post("/v1/exceptions/{exception_id}/replay")
    def replay_exception(exception_id: int, body: ReplayRequest) -> dict[str, Any]:
        parked = hub.engine.exception_queue.get(exception_id)
        if parked is None:
            raise HTTPException(404, f"no exception {exception_id}")
        outcome = hub.engine.replay(
            parked.transaction_id, by=body.requested_by, reason=body.reason, dry_run=body.dry_run
        )
        if not outcome.accepted and not outcome.dry_run:
            raise HTTPException(409, outcome.message)
        return asdict(outcome)

    @app.get("/v1/xref")
    def list_xref(
        system: str | None = None,
        object_type: str | None = None,
        canonical_id: str | None = None,
        external_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        return hub.xref.search(
            system=system,
            object_type=object_type,
            canonical_id=canonical_id,
            external_id=external_id,
            limit=limit,
        )

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        with hub.db.connect() as connection:
            connection.execute(select(1))
        return {"status": "ok"}

    return app


def _encode_cursor(row: Any) -> str:
    raw = f"{row.created_at.isoformat()}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Keyset cursor (created_at, id): stable while new transactions keep arriving."""
    try:
        created, _, transaction_id = base64.urlsafe_b64decode(cursor).decode().partition("|")
        return datetime.fromisoformat(created), transaction_id
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, f"cursor {cursor!r} is not one this API issued") from None


def _transaction_summary(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "flow": row.flow,
        "business_key": row.business_key,
        "version": row.version,
        "status": row.status,
        "mode": row.mode,
        "current_step": row.current_step,
        "attempts": row.attempts,
        "replay_count": row.replay_count,
        "correlation_id": row.correlation_id,
        "partition_key": row.partition_key,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "completed_at": row.completed_at,
    }


def _validate_events(items: list[Any]) -> tuple[list[CloudEvent], list[dict[str, Any]]]:
    events: list[CloudEvent] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        prefix = f"events[{index}]" if len(items) > 1 else "event"
        if not isinstance(item, dict):
            errors.append(
                {"index": index, "field": prefix, "message": f"{prefix} must be a JSON object"}
            )
            continue
        try:
            event = CloudEvent.model_validate(item)
        except (PydanticValidationError, ValueError) as exc:
            errors.extend(describe_validation_error(exc, index=index, prefix=prefix))
            continue
        if event.type not in INBOUND_TYPES:
            errors.append(
                {
                    "index": index,
                    "field": f"{prefix}.type",
                    "message": f"{prefix}.type: unknown event type {event.type!r}; "
                    f"q2c accepts {', '.join(sorted(INBOUND_TYPES))}",
                }
            )
            continue
        try:
            validate_data(event)
        except PydanticValidationError as exc:
            errors.extend(describe_validation_error(exc, index=index, prefix=f"{prefix}.data"))
            continue
        events.append(event)
    return events, errors
