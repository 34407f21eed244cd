"""HTTP API under /v1 (FastAPI). OpenAPI at /openapi.json.

Ingest is all-or-nothing per request: a batch with one invalid event is refused whole, with
an error per event naming the field, so nothing is half-applied; a duplicate is accepted and
reported as such, never processed twice.

Every /v1 route needs a bearer token (``POST /v1/token``) with its scope: GETs ``read``,
replay/edit/dismiss ``operate``, ``POST /v1/events`` ``ingest``; ``admin`` holds them all.
Webhooks authenticate by the vendor's signature instead. ``/healthz``, ``/readyz``,
``/metrics`` and ``/openapi.json`` stay open: probes and scrapers carry no tokens, and they
expose no business data. Every error is problem+json (``q2c.api.problems``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

import orjson
import structlog
from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import select, tuple_

from q2c.api.auth import ApiAuth, Principal, require, token_router
from q2c.api.ingest import IngestResponse, read_body, receipts_of
from q2c.api.operations import operations_router
from q2c.api.problems import ApiError, Problem, install_problem_handlers, problem, problem_responses
from q2c.api.webhooks import webhooks_router
from q2c.bootstrap import Hub
from q2c.canonical.inbound import validate_events
from q2c.console import mount_console
from q2c.observability import continued_trace
from q2c.runtime.exception_queue import ExceptionFilter
from q2c.runtime.jsonutil import loads
from q2c.runtime.metrics import REGISTRY
from q2c.store.schema import replays, steps, transactions

__all__ = ["MAX_BODY_BYTES", "Problem", "create_app"]

log = structlog.get_logger("q2c.api")

MAX_BODY_BYTES = 1024 * 1024
_SINGLE = "application/cloudevents+json"
_BATCH = "application/cloudevents-batch+json"
_READ = problem_responses(400, 401, 403, 422, 429)


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


def create_app(
    hub: Hub,
    *,
    max_body_bytes: int | None = None,
    auth: ApiAuth | None = None,
    now: Callable[[], float] = time.time,
) -> FastAPI:
    """The API over a hub. ``auth`` defaults to one built from ``hub.config.api``; ``now``
    is the wall clock the webhook tolerance window is checked against."""
    limit = max_body_bytes or hub.config.api.max_body_bytes
    app = FastAPI(
        title="q2c",
        version="1",
        description="Quote-to-cash integration hub: events in, transactions, exceptions, xref. "
        "Get a token with POST /v1/token (OAuth2 client credentials), send it as "
        "'Authorization: Bearer <token>'.",
    )
    app.state.auth = auth or ApiAuth(hub.config.api)
    app.state.hub = hub
    if not app.state.auth.enabled:
        log.warning("api.auth_disabled", detail="api.auth is 'disabled': every caller is admin")
    install_problem_handlers(app)

    @app.middleware("http")
    async def refuse_nul(request: Request, call_next: Callable[[Request], Any]) -> Response:
        # PostgreSQL cannot store NUL: refuse it in the URL as a 400 rather than fail later
        raw = request.scope.get("raw_path") or b""
        query = request.scope.get("query_string") or b""
        if b"%00" in raw.lower() + query.lower() or "\x00" in request.url.path:
            return problem(400, "Bad request", "the URL must not contain NUL characters")
        response: Response = await call_next(request)
        return response

    app.include_router(token_router())
    app.include_router(webhooks_router(hub, max_body_bytes=limit, now=now))

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=IngestResponse,
        tags=["events"],
        responses=problem_responses(400, 401, 403, 413, 415, 422, 429),
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
    async def ingest(
        request: Request, _: Annotated[Principal, require("ingest")]
    ) -> IngestResponse:
        """CloudEvents 1.0, structured (one) or batch (array); 202 with a receipt each."""
        body = await read_body(request, limit)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in (_SINGLE, _BATCH, "application/json"):
            raise ApiError(
                415, f"send {_SINGLE}, {_BATCH} or application/json, not {media or 'nothing'}"
            )
        if b"\\u0000" in body:
            raise ApiError(422, "event strings must not contain NUL characters")
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ApiError(
                400, f"the body is not valid JSON: {exc}", title="Malformed JSON"
            ) from None
        if media == _BATCH and not isinstance(parsed, list):
            raise ApiError(400, f"{_BATCH} needs a JSON array of events", title="Batch expected")
        if media == _SINGLE and not isinstance(parsed, dict):
            raise ApiError(400, f"{_SINGLE} needs one JSON object", title="Event expected")
        items = parsed if isinstance(parsed, list) else [parsed]
        if not items:
            raise ApiError(400, "the batch holds no events", title="Empty batch")
        events, errors = validate_events(items)
        if errors:
            raise ApiError(422, errors[0]["message"], title="Invalid event", errors=errors)
        with continued_trace(request.headers):  # the worker thread copies this context
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
        return receipts_of(receipts, events)

    @app.get("/v1/transactions", tags=["transactions"], responses=_READ)
    def list_transactions(
        _: Annotated[Principal, require("read")],
        flow: Annotated[str | None, Query(max_length=100)] = None,
        status: Annotated[str | None, Query(max_length=20)] = None,
        business_key: Annotated[str | None, Query(max_length=300)] = None,
        system: Annotated[str | None, Query(max_length=100)] = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        cursor: Annotated[str | None, Query(max_length=500)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        """Transactions oldest first, filtered; ``system``: one that a step talked to.
        Page with ``next_cursor``."""
        query = select(transactions).order_by(transactions.c.created_at, transactions.c.id)
        for column, value in (
            (transactions.c.flow, flow),
            (transactions.c.status, status),
            (transactions.c.business_key, business_key),
        ):
            if value is not None:
                query = query.where(column == value)
        if system is not None:
            touched = select(steps.c.transaction_id).where(steps.c.system == system)
            query = query.where(transactions.c.id.in_(touched))
        if created_after is not None:
            query = query.where(transactions.c.created_at >= created_after)
        if created_before is not None:
            query = query.where(transactions.c.created_at < created_before)
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

    @app.get(
        "/v1/transactions/{transaction_id}",
        tags=["transactions"],
        responses=problem_responses(400, 401, 403, 404, 422, 429),
    )
    def get_transaction(
        transaction_id: str, _: Annotated[Principal, require("read")]
    ) -> dict[str, Any]:
        """The timeline: every step with its system, attempts, output or error; exceptions,
        replays and the payloads kept under the correlation id."""
        with hub.db.connect() as connection:
            row = connection.execute(
                select(transactions).where(transactions.c.id == transaction_id)
            ).one_or_none()
            if row is None:
                raise ApiError(404, f"no transaction {transaction_id}")
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
                _as_dict(e)
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
            "payloads": [
                {k: v for k, v in p.items() if k not in ("request_body", "response_body")}
                | {"href": f"/v1/payloads/{p['id']}"}
                for p in hub.payloads.for_correlation(row.correlation_id)
            ],
        }

    app.include_router(operations_router(hub))

    @app.get("/v1/xref", tags=["xref"], responses=_READ)
    def list_xref(
        _: Annotated[Principal, require("read")],
        system: Annotated[str | None, Query(max_length=100)] = None,
        object_type: Annotated[str | None, Query(max_length=50)] = None,
        canonical_id: Annotated[str | None, Query(max_length=100)] = None,
        external_id: Annotated[str | None, Query(max_length=300)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        return hub.xref.search(
            system=system,
            object_type=object_type,
            canonical_id=canonical_id,
            external_id=external_id,
            limit=limit,
        )

    @app.get("/metrics", tags=["operations"], response_class=Response)
    def metrics() -> Response:
        """Prometheus exposition; open, like the probes (bind to a private interface)."""
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["operations"], response_model=Health)
    def healthz() -> Health:
        """Liveness: the process answers."""
        return Health(status="ok")

    @app.get(
        "/readyz",
        tags=["operations"],
        response_model=Health,
        responses={503: {"model": Health, "description": "not ready"}},
    )
    async def readyz() -> JSONResponse:
        """Readiness: the store answers and the event transport is reachable."""
        checks = {"database": await run_in_threadpool(_database_check, hub)}
        checks["transport"] = await _transport_check(hub)
        ready = all(v == "ok" for v in checks.values())
        body = Health(status="ok" if ready else "unavailable", checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    mount_console(app)  # the operations console under /console
    return app


def _as_dict(parked: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(parked)


def _database_check(hub: Hub) -> str:
    try:
        with hub.db.connect() as connection:
            connection.execute(select(1))
    except Exception as exc:  # any driver error means not ready; the kind is what matters
        return f"failed: {type(exc).__name__}"
    return "ok"


async def _transport_check(hub: Hub) -> str:
    transport = hub.config.transport
    if transport.kind == "local":
        return "ok"
    url = urlsplit(getattr(transport, "url", ""))
    host, port = url.hostname or "127.0.0.1", url.port or 4222
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=1.0)
    except (OSError, TimeoutError) as exc:
        return f"failed: {type(exc).__name__} reaching {host}:{port}"
    writer.close()
    return "ok"


def _encode_cursor(row: Any) -> str:
    raw = f"{row.created_at.isoformat()}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Keyset cursor (created_at, id): stable while new transactions keep arriving."""
    try:
        created, _, transaction_id = base64.urlsafe_b64decode(cursor).decode().partition("|")
        return datetime.fromisoformat(created), transaction_id
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ApiError(400, "the cursor is not one this API issued") from None


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
