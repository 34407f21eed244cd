"""What an operator does from the console: replay, bulk replay (with a dry-run preview),
edit-and-replay, dismiss, and fix a missing mapping.

The exception operations are the HTTP API's own (``q2c.api.operations``), called in-process
with the signed-in user's token: the same checks, the same audit trail
(``ada (client ops-console)``), the same errors. After a replay the console runs the replayed
transactions at once in this process, so the operator sees how they ended. A mapping added
here is kept in the store (``Hub.add_mapping``), so every worker runs with it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlalchemy import select, update

from q2c.api.auth import Principal
from q2c.api.operations import (
    BulkReplayRequest,
    BulkReplayResponse,
    DismissRequest,
    EditAndReplayRequest,
    EditAndReplayResponse,
    ExceptionSelection,
    ReplayOutcomeOut,
    ReplayRequest,
)
from q2c.api.problems import ApiError
from q2c.bootstrap import Hub
from q2c.runtime.exception_queue import ExceptionFilter, ParkedException
from q2c.store.schema import exceptions, transactions

__all__ = [
    "FinalState",
    "MappingFix",
    "Operations",
    "blocked_by",
    "mapping_fix_of",
    "run_now",
]

MAPPING_ERROR = "MappingMissingError"


@dataclass(frozen=True, slots=True)
class FinalState:
    """How a replayed transaction ended after the console ran it."""

    transaction_id: str
    business_key: str
    flow: str
    status: str
    message: str | None  # the new exception's message if it parked again


@dataclass(frozen=True, slots=True)
class MappingFix:
    """The mapping a missing-mapping exception asks for (prefilled from its context)."""

    dimension: str
    value: str
    legal_entity: str
    system: str


def mapping_fix_of(parked: ParkedException) -> MappingFix | None:
    """The mapping to add, if this is a missing-mapping exception that says which."""
    if parked.error != MAPPING_ERROR:
        return None
    context = parked.context
    dimension, value = context.get("dimension"), context.get("value")
    if not isinstance(dimension, str) or not isinstance(value, str):
        return None
    return MappingFix(
        dimension=dimension,
        value=value,
        legal_entity=str(context.get("legal_entity") or "*"),
        system=str(context.get("system") or parked.system or ""),
    )


def blocked_by(hub: Hub, fix: MappingFix) -> list[ParkedException]:
    """Open missing-mapping exceptions this mapping resolves: same dimension, value and
    system, and the same legal entity unless the mapping is for every entity (``*``)."""
    matches = []
    for parked in hub.engine.exception_queue.list(
        ExceptionFilter(status="open", error=MAPPING_ERROR), limit=10_000
    ):
        other = mapping_fix_of(parked)
        if other is None:
            continue
        if (other.dimension, other.value, other.system) != (fix.dimension, fix.value, fix.system):
            continue
        if fix.legal_entity in ("*", other.legal_entity):
            matches.append(parked)
    return matches


def run_now(hub: Hub, transaction_ids: list[str]) -> list[FinalState]:
    """Claim exactly these (just replayed) transactions for this process and run them.

    The claim is the engine's lease protocol (status ``running``, ``claimed_by`` this
    engine's worker id, a lease), so a worker elsewhere does not run them too; one that has
    already claimed a transaction keeps it, and this reports where it stands."""
    engine = hub.engine
    if transaction_ids:
        now = hub.clock()
        with hub.db.begin() as connection:
            connection.execute(
                update(transactions)
                .where(
                    transactions.c.id.in_(transaction_ids),
                    transactions.c.status.in_(("pending", "retry_wait")),
                )
                .values(
                    status="running",
                    claimed_by=engine.worker_id,
                    claimed_until=now + max(engine.lease, timedelta(seconds=30)),
                    updated_at=now,
                )
            )
        for transaction_id in transaction_ids:
            engine.run(transaction_id)
        hub.payloads.flush()
        hub.relay.publish_pending()
    return final_states(hub, transaction_ids)


def final_states(hub: Hub, transaction_ids: list[str]) -> list[FinalState]:
    if not transaction_ids:
        return []
    with hub.db.connect() as connection:
        rows = {
            r.id: r
            for r in connection.execute(
                select(transactions).where(transactions.c.id.in_(transaction_ids))
            )
        }
        messages = {
            r.transaction_id: r.message
            for r in connection.execute(
                select(exceptions.c.transaction_id, exceptions.c.message).where(
                    exceptions.c.transaction_id.in_(transaction_ids),
                    exceptions.c.status == "open",
                )
            )
        }
    return [
        FinalState(
            transaction_id=t,
            business_key=rows[t].business_key,
            flow=rows[t].flow,
            status=rows[t].status,
            message=messages.get(t),
        )
        for t in transaction_ids
        if t in rows
    ]


class Operations:
    """The API's exception operations, called in-process over ASGI with the signed-in
    user's own bearer token: the API checks the scope, applies the client's rate limit and
    records the person and client, exactly as for any other caller."""

    def __init__(self, app: FastAPI, hub: Hub) -> None:
        self.hub = hub
        self._app = app

    async def _post(self, path: str, token: str | None, body: BaseModel) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        transport = httpx.ASGITransport(app=self._app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
            response = await client.post(
                path, content=body.model_dump_json(exclude_none=True), headers={
                    **headers, "Content-Type": "application/json"
                }
            )
        payload: Any = response.json() if response.content else {}
        if response.status_code >= 400:
            detail = payload.get("detail") if isinstance(payload, dict) else None
            raise ApiError(response.status_code, str(detail or response.reason_phrase))
        return payload if isinstance(payload, dict) else {}

    async def replay(
        self, exception_id: int, token: str | None, *, by: str, reason: str | None
    ) -> ReplayOutcomeOut:
        body = ReplayRequest(requested_by=by, reason=reason or None)
        answer = await self._post(f"/v1/exceptions/{exception_id}/replay", token, body)
        return ReplayOutcomeOut.model_validate(answer)

    async def preview(self, exception_id: int, token: str | None, *, by: str) -> ReplayOutcomeOut:
        body = ReplayRequest(requested_by=by, dry_run=True)
        answer = await self._post(f"/v1/exceptions/{exception_id}/replay", token, body)
        return ReplayOutcomeOut.model_validate(answer)

    async def bulk(
        self,
        selection: ExceptionSelection,
        token: str | None,
        *,
        by: str,
        reason: str | None,
        dry_run: bool,
        limit: int = 100,
    ) -> BulkReplayResponse:
        body = BulkReplayRequest(
            filter=selection, requested_by=by, reason=reason or None, dry_run=dry_run, limit=limit
        )
        return BulkReplayResponse.model_validate(
            await self._post("/v1/exceptions/replay", token, body)
        )

    async def edit_and_replay(
        self,
        exception_id: int,
        token: str | None,
        *,
        by: str,
        data: dict[str, Any],
        reason: str,
    ) -> EditAndReplayResponse:
        body = EditAndReplayRequest(data=data, reason=reason, requested_by=by)
        answer = await self._post(f"/v1/exceptions/{exception_id}/edit-and-replay", token, body)
        return EditAndReplayResponse.model_validate(answer)

    async def dismiss(self, exception_id: int, token: str | None, *, by: str, reason: str) -> None:
        body = DismissRequest(reason=reason, requested_by=by)
        await self._post(f"/v1/exceptions/{exception_id}/dismiss", token, body)

    async def fix_mapping(
        self,
        fix: MappingFix,
        external_id: str,
        principal: Principal,
        token: str | None,
        *,
        by: str,
    ) -> list[FinalState]:
        """Add the mapping, then replay (and run) every parked transaction it blocked."""
        if not principal.allows("operate"):  # adding a mapping is no API call: check here
            raise ApiError(403, f"client {principal.client_id!r} lacks the 'operate' scope")
        reason = (
            f"mapped {fix.dimension} {fix.value!r} ({fix.legal_entity}) to {fix.system} "
            f"{external_id!r}"
        )
        await run_in_threadpool(
            lambda: self.hub.add_mapping(
                fix.dimension, fix.value, fix.legal_entity, fix.system, external_id,
                by=by, reason="fix mapping from the exception queue",
            )
        )
        replayed: list[str] = []
        for parked in await run_in_threadpool(blocked_by, self.hub, fix):
            try:
                outcome = await self.replay(parked.id, token, by=by, reason=reason)
            except ApiError as exc:
                if exc.status in (401, 403, 429):
                    raise
                continue  # replayed too often, or no longer parked: its state tells
            if outcome.accepted:
                replayed.append(outcome.transaction_id)
        return await run_in_threadpool(run_now, self.hub, list(dict.fromkeys(replayed)))
