"""Exception queue (dead letter channel) for parked business transactions.

A parked transaction carries the business-readable message, the technical detail, the step
that failed and a suggested fix. A later success of the same flow and business key resolves
the older exceptions for it automatically.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, bindparam, insert, select, update

from q2c.errors import Q2CError
from q2c.runtime.jsonutil import dumps, loads
from q2c.store.schema import exceptions, transactions

__all__ = ["ExceptionFilter", "ExceptionQueue", "ParkedException"]


@dataclass(frozen=True, slots=True)
class ParkedException:
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


@dataclass(frozen=True, slots=True)
class ExceptionFilter:
    status: str | None = "open"
    flow: str | None = None
    step: str | None = None
    error: str | None = None
    system: str | None = None
    business_key: str | None = None
    transaction_id: str | None = None
    message_contains: str | None = None
    created_before: datetime | None = None
    created_after: datetime | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        for column, value in (
            (exceptions.c.status, self.status),
            (exceptions.c.flow, self.flow),
            (exceptions.c.step, self.step),
            (exceptions.c.error, self.error),
            (exceptions.c.system, self.system),
            (exceptions.c.business_key, self.business_key),
            (exceptions.c.transaction_id, self.transaction_id),
        ):
            if value is not None:
                query = query.where(column == value)
        if self.message_contains:
            query = query.where(exceptions.c.message.contains(self.message_contains))
        if self.created_before:
            query = query.where(exceptions.c.created_at < self.created_before)
        if self.created_after:
            query = query.where(exceptions.c.created_at >= self.created_after)
        return query


# Runs at the end of every successful transaction, so it is built once.
_RESOLVE_FOR_KEY = (
    update(exceptions)
    .where(
        exceptions.c.flow == bindparam("b_flow"),
        exceptions.c.business_key == bindparam("b_key"),
        exceptions.c.status.in_(("open", "replaying")),
    )
    .values(status="resolved", resolution=bindparam("b_resolution"), resolved_at=bindparam("b_now"))
)


def _parked(row: Any) -> ParkedException:
    values = dict(row._mapping)
    values["context"] = loads(values["context"])
    return ParkedException(**values)


class ExceptionQueue:
    def __init__(self, engine: Engine, *, now: Callable[[], datetime]) -> None:
        self.engine = engine
        self.now = now

    def park_in(
        self,
        connection: Connection,
        *,
        transaction_id: str,
        flow: str,
        business_key: str,
        step: str,
        error: Q2CError,
        attempts: int,
    ) -> int:
        # One open exception per transaction: a replay that fails again updates it.
        connection.execute(
            update(exceptions)
            .where(
                exceptions.c.transaction_id == transaction_id,
                exceptions.c.status.in_(("open", "replaying")),
            )
            .values(
                status="resolved",
                resolution="superseded by a newer failure",
                resolved_at=self.now(),
            )
        )
        result = connection.execute(
            insert(exceptions).values(
                transaction_id=transaction_id,
                flow=flow,
                business_key=business_key,
                step=step,
                kind=error.kind,
                error=type(error).__name__,
                message=error.message,
                detail=error.detail,
                suggested_fix=error.suggested_fix,
                system=error.system,
                context=dumps({**error.context, "field": error.field}),
                attempts=attempts,
                status="open",
                created_at=self.now(),
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def resolve_for_key_in(
        self, connection: Connection, *, flow: str, business_key: str, transaction_id: str
    ) -> int:
        """On success: resolve every open exception of this flow and business key."""
        return connection.execute(
            _RESOLVE_FOR_KEY,
            {
                "b_flow": flow,
                "b_key": business_key,
                "b_resolution": f"completed by transaction {transaction_id}",
                "b_now": self.now(),
            },
        ).rowcount

    def resolve_in(self, connection: Connection, exception_id: int, *, resolution: str) -> bool:
        """Resolve one open exception because the business fixed its cause (a change order
        raised the cap); False if it was no longer open."""
        return bool(
            connection.execute(
                update(exceptions)
                .where(
                    exceptions.c.id == exception_id,
                    exceptions.c.status.in_(("open", "replaying")),
                )
                .values(status="resolved", resolution=resolution, resolved_at=self.now())
            ).rowcount
        )

    def list(
        self, where: ExceptionFilter | None = None, *, limit: int = 200
    ) -> list[ParkedException]:
        query = (where or ExceptionFilter()).apply(
            select(exceptions).order_by(exceptions.c.id).limit(limit)
        )
        with self.engine.connect() as connection:
            return [_parked(row) for row in connection.execute(query)]

    def get(self, exception_id: int) -> ParkedException | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(exceptions).where(exceptions.c.id == exception_id)
            ).one_or_none()
        return _parked(row) if row else None

    def dismiss(self, exception_id: int, *, by: str, reason: str) -> bool:
        with self.engine.begin() as connection:
            return bool(
                connection.execute(
                    update(exceptions)
                    .where(exceptions.c.id == exception_id, exceptions.c.status == "open")
                    .values(
                        status="dismissed",
                        resolution=f"dismissed by {by}: {reason}",
                        resolved_at=self.now(),
                    )
                ).rowcount
            )

    def dismiss_and_close(self, exception_id: int, *, by: str, reason: str) -> bool:
        """Dismiss an open exception and close its parked transaction as ``dismissed``, so it
        is neither replayed nor counted as stuck. False if it was not open."""
        now = self.now()
        with self.engine.begin() as connection:
            row = connection.execute(
                select(exceptions.c.transaction_id).where(
                    exceptions.c.id == exception_id, exceptions.c.status == "open"
                )
            ).one_or_none()
            if row is None:
                return False
            connection.execute(
                update(exceptions)
                .where(exceptions.c.id == exception_id, exceptions.c.status == "open")
                .values(
                    status="dismissed", resolution=f"dismissed by {by}: {reason}", resolved_at=now
                )
            )
            connection.execute(
                update(transactions)
                .where(
                    transactions.c.id == row.transaction_id, transactions.c.status == "parked"
                )
                .values(status="dismissed", updated_at=now)
            )
        return True
