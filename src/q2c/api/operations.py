"""Working the exception queue over HTTP: list, replay (one or many by filter, with a dry run),
edit-and-replay, dismiss; and reading a kept payload.

Who did it is recorded as the person the caller names (``requested_by``) and the API client
that called, e.g. ``ada (client ops-console)``: a console acting for a person names the person,
and the client id cannot be forged.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import select, update

from q2c.api.auth import Principal, require
from q2c.api.problems import ApiError, problem_responses
from q2c.bootstrap import Hub
from q2c.canonical.events import CloudEvent, validate_data
from q2c.canonical.inbound import describe_validation_error
from q2c.runtime.engine import ReplayOutcome
from q2c.runtime.exception_queue import ExceptionFilter, ParkedException
from q2c.runtime.jsonutil import loads
from q2c.store.schema import steps, transactions

__all__ = ["operations_router"]

_READ = problem_responses(400, 401, 403, 422, 429)
_OPERATE = problem_responses(400, 401, 403, 404, 409, 422, 429)
Name = Annotated[str, Field(min_length=1, max_length=200)]
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL: refuse it here as a 422, not later as a 500
        if _holds_nul(value):
            raise ValueError("strings must not contain NUL characters")
        return value


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


class ExceptionOut(BaseModel):
    id: int
    transaction_id: str
    flow: str
    business_key: str
    step: str
    kind: str
    error: str
    message: str
    detail: str
    suggested_fix: str
    system: str | None
    context: dict[str, Any]
    attempts: int
    status: str
    resolution: str | None
    created_at: datetime
    resolved_at: datetime | None


class ReplayOutcomeOut(BaseModel):
    transaction_id: str
    accepted: bool
    dry_run: bool
    message: str
    from_step: str | None = None
    intended_writes: list[dict[str, Any]] = []


class ReplayRequest(_Body):
    requested_by: Name | None = None
    reason: Reason | None = None
    dry_run: bool = False


class ExceptionSelection(_Body):
    """Which open exceptions a bulk replay takes (every given field must match)."""

    flow: str | None = None
    step: str | None = None
    error: str | None = None
    system: str | None = None
    business_key: str | None = None
    message_contains: str | None = None
    created_before: datetime | None = None
    created_after: datetime | None = None


class BulkReplayRequest(_Body):
    filter: ExceptionSelection = Field(default_factory=ExceptionSelection)
    requested_by: Name | None = None
    reason: Reason | None = None
    dry_run: bool = False
    limit: int = Field(default=100, ge=1, le=1000)


class BulkReplayResponse(BaseModel):
    dry_run: bool
    matched: int
    would_complete: int
    accepted: int
    outcomes: list[ReplayOutcomeOut]


class EditAndReplayRequest(_Body):
    """The corrected ``data`` of the transaction's event (whole), or a JSON merge patch
    (RFC 7396) of it; ``reason`` is kept with the corrected payload."""

    data: dict[str, Any] | None = None
    merge_patch: dict[str, Any] | None = None
    reason: Reason
    requested_by: Name | None = None


class EditAndReplayResponse(BaseModel):
    payload_id: int
    replay: ReplayOutcomeOut


class DismissRequest(_Body):
    reason: Reason
    requested_by: Name | None = None


class PayloadOut(BaseModel):
    id: int
    direction: str
    system: str
    correlation_id: str | None
    transaction_id: str | None
    operation: str
    status: int | None
    elapsed_ms: int | None
    request_headers: dict[str, Any]
    request_body: str | None
    response_headers: dict[str, Any]
    response_body: str | None
    error: str | None
    created_at: datetime
    expires_at: datetime


def _who(principal: Principal, requested_by: str | None) -> str:
    person = (requested_by or "").strip()
    if not person or person == principal.client_id:
        return principal.client_id
    return f"{person} (client {principal.client_id})"


def _exception_out(parked: ParkedException) -> ExceptionOut:
    return ExceptionOut(**asdict(parked))


def _outcome_out(outcome: ReplayOutcome) -> ReplayOutcomeOut:
    return ReplayOutcomeOut(**asdict(outcome))


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge key by key, ``null`` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def operations_router(hub: Hub) -> APIRouter:
    router = APIRouter(tags=["exceptions"])
    queue = hub.engine.exception_queue

    def open_exception(exception_id: int) -> ParkedException:
        parked = queue.get(exception_id)
        if parked is None:
            raise ApiError(404, f"no exception {exception_id}")
        return parked

    @router.get("/v1/exceptions", response_model=list[ExceptionOut], responses=_READ)
    def list_exceptions(
        _: Annotated[Principal, require("read")],
        status: Annotated[str | None, Query(max_length=20)] = "open",
        flow: Annotated[str | None, Query(max_length=100)] = None,
        step: Annotated[str | None, Query(max_length=100)] = None,
        system: Annotated[str | None, Query(max_length=100)] = None,
        business_key: Annotated[str | None, Query(max_length=300)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[ExceptionOut]:
        """Parked transactions, oldest first; ``status`` open (default), replaying, resolved
        or dismissed."""
        where = ExceptionFilter(
            status=status, flow=flow, step=step, system=system, business_key=business_key
        )
        return [_exception_out(p) for p in queue.list(where, limit=limit)]

    @router.get(
        "/v1/exceptions/{exception_id}",
        response_model=ExceptionOut,
        responses=problem_responses(400, 401, 403, 404, 422, 429),
    )
    def get_exception(
        exception_id: RowId, _: Annotated[Principal, require("read")]
    ) -> ExceptionOut:
        return _exception_out(open_exception(exception_id))

    @router.post("/v1/exceptions/replay", response_model=BulkReplayResponse, responses=_OPERATE)
    def replay_many(
        body: BulkReplayRequest, principal: Annotated[Principal, require("operate")]
    ) -> BulkReplayResponse:
        """Replay every open exception the filter matches (up to ``limit``), or with
        ``dry_run`` preview each: what would happen, nothing written."""
        selection = body.filter
        where = ExceptionFilter(status="open", **selection.model_dump())
        parked = queue.list(where, limit=body.limit)
        by = _who(principal, body.requested_by)
        outcomes: list[ReplayOutcome] = []
        for transaction_id in dict.fromkeys(p.transaction_id for p in parked):
            outcomes.append(
                hub.engine.replay(transaction_id, by=by, reason=body.reason, dry_run=body.dry_run)
            )
        return BulkReplayResponse(
            dry_run=body.dry_run,
            matched=len(outcomes),
            would_complete=sum(o.accepted for o in outcomes) if body.dry_run else 0,
            accepted=0 if body.dry_run else sum(o.accepted for o in outcomes),
            outcomes=[_outcome_out(o) for o in outcomes],
        )

    @router.post(
        "/v1/exceptions/{exception_id}/replay",
        response_model=ReplayOutcomeOut,
        responses=_OPERATE,
    )
    def replay_one(
        exception_id: RowId,
        body: ReplayRequest,
        principal: Annotated[Principal, require("operate")],
    ) -> ReplayOutcomeOut:
        """Send the parked transaction back to work from its failed step (``dry_run``:
        preview against shadow services)."""
        parked = open_exception(exception_id)
        outcome = hub.engine.replay(
            parked.transaction_id,
            by=_who(principal, body.requested_by),
            reason=body.reason,
            dry_run=body.dry_run,
        )
        if not outcome.accepted and not outcome.dry_run:
            raise ApiError(409, outcome.message)
        return _outcome_out(outcome)

    @router.post(
        "/v1/exceptions/{exception_id}/edit-and-replay",
        response_model=EditAndReplayResponse,
        responses=_OPERATE,
    )
    def edit_and_replay(
        exception_id: RowId,
        body: EditAndReplayRequest,
        principal: Annotated[Principal, require("operate")],
    ) -> EditAndReplayResponse:
        """Correct the event data of a parked transaction, keep the correction in the payload
        history (who, why, before, after) and replay it from its first step, so every step
        works on the corrected data (steps are idempotent: nothing is written twice). Steps
        done before the edit show as ``superseded`` until they run again."""
        if (body.data is None) == (body.merge_patch is None):
            raise ApiError(422, "give exactly one of data or merge_patch")
        parked = open_exception(exception_id)
        if parked.status != "open":
            raise ApiError(409, f"exception {exception_id} is {parked.status}, not open")
        by = _who(principal, body.requested_by)
        with hub.db.begin() as connection:
            row = connection.execute(
                select(transactions).where(transactions.c.id == parked.transaction_id)
            ).one()
            if row.status != "parked":
                raise ApiError(409, f"transaction {row.id} is {row.status}, not parked")
            if row.replay_count >= hub.engine.max_replays:
                raise ApiError(
                    409,
                    f"replayed {row.replay_count} times already (cap {hub.engine.max_replays}); "
                    "dismiss it instead",
                )
            previous = loads(row.input)
            corrected_data = (
                body.data
                if body.data is not None
                else merge_patch(previous.get("data"), body.merge_patch)
            )
            corrected = {**previous, "data": corrected_data}
            try:
                event = CloudEvent.model_validate(corrected)
                validate_data(event)
            except (PydanticValidationError, ValueError) as exc:
                errors = describe_validation_error(exc, index=0, prefix="data")
                detail = errors[0]["message"] if errors else "the corrected data is invalid"
                raise ApiError(422, detail, title="Invalid correction", errors=errors) from None
            # steps done so far worked on the old data: all run again on the corrected data
            # (each step is idempotent: its writes carry external ids from the business key)
            first_step = hub.flows[row.flow].steps[0].name
            connection.execute(
                update(transactions)
                .where(transactions.c.id == row.id, transactions.c.status == "parked")
                .values(
                    input=event.to_json().decode(), current_step=first_step, updated_at=hub.clock()
                )
            )
            connection.execute(
                update(steps)
                .where(steps.c.transaction_id == row.id, steps.c.status == "done")
                .values(status="superseded")
            )
            payload_id = hub.payloads.record_correction_in(
                connection,
                system=parked.system or "q2c",
                transaction_id=row.id,
                correlation_id=row.correlation_id,
                by=by,
                reason=body.reason,
                before=previous.get("data"),
                after=corrected_data,
            )
        outcome = hub.engine.replay(
            parked.transaction_id, by=by, reason=f"edit-and-replay: {body.reason}"
        )
        if not outcome.accepted:
            raise ApiError(
                409, f"corrected (payload {payload_id}) but not replayed: {outcome.message}"
            )
        return EditAndReplayResponse(payload_id=payload_id, replay=_outcome_out(outcome))

    @router.post(
        "/v1/exceptions/{exception_id}/dismiss",
        response_model=ExceptionOut,
        responses=_OPERATE,
    )
    def dismiss(
        exception_id: RowId,
        body: DismissRequest,
        principal: Annotated[Principal, require("operate")],
    ) -> ExceptionOut:
        """Close an open exception without replaying it (its transaction becomes
        ``dismissed``); the reason is kept."""
        parked = open_exception(exception_id)
        done = queue.dismiss_and_close(
            exception_id, by=_who(principal, body.requested_by), reason=body.reason
        )
        if not done:
            raise ApiError(409, f"exception {exception_id} is {parked.status}, not open")
        return _exception_out(open_exception(exception_id))

    @router.get(
        "/v1/payloads/{payload_id}",
        response_model=PayloadOut,
        tags=["payloads"],
        responses=problem_responses(400, 401, 403, 404, 422, 429),
    )
    async def get_payload(
        payload_id: RowId, _: Annotated[Principal, require("read")]
    ) -> PayloadOut:
        """One kept payload (inbound, outbound or an operator's edit), with secrets and the
        configured PII fields masked."""
        kept = await run_in_threadpool(hub.payloads.get, payload_id)
        if kept is None:
            raise ApiError(404, f"no payload {payload_id} (never kept, or past retention)")
        return PayloadOut(**kept)

    return router
