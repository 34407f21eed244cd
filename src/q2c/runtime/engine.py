"""The saga engine: runs business transactions step by step, durably.

For every step: journal "started" (committed) -> side effect -> journal "done" together with
the step's output, xref links, outbound events and the transaction's next step, in one
database transaction. After a crash the transaction resumes at the first step not journaled
"done"; a step that was started but not finished runs again, which is safe because each step
writes to vendors with an external id derived from its idempotency key.

Failures are classified by ``q2c.errors``: retriable errors wait in the store until
``next_attempt_at`` (backoff with jitter, Retry-After as a floor) until the step's attempts run
out; business-fix and fatal errors park the transaction in the exception queue at once.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, and_, bindparam, insert, or_, select, update
from sqlalchemy.exc import OperationalError

from q2c.canonical.events import CloudEvent, TransactionFailed, new_event, validate_data
from q2c.errors import FatalError, Q2CError, RateLimitedError, RetriableError
from q2c.mapping.value_maps import system_display_name
from q2c.observability import RunTrace, note_run_outcome, run_span
from q2c.runtime.context import bind_correlation
from q2c.runtime.exception_queue import ExceptionFilter, ExceptionQueue
from q2c.runtime.flow import Flow, Mode, Step, StepContext, StepResult, step_key
from q2c.runtime.jsonutil import dumps, loads
from q2c.runtime.metrics import observe_step, observe_transaction
from q2c.runtime.outbox import enqueue
from q2c.runtime.xref import XrefHub
from q2c.store.schema import exceptions, replays, steps, transactions

__all__ = ["LeaseLostError", "ReplayOutcome", "RunOutcome", "SagaEngine"]

log = structlog.get_logger("q2c.engine")

# Hot-path statements are built once: constructing SQLAlchemy expressions per call cost more
# than the database work itself (measured with `q2c bench`).
_OWNED = and_(
    transactions.c.id == bindparam("b_tx"),
    transactions.c.claimed_by == bindparam("b_worker"),
    transactions.c.status == "running",
)
_TOUCH = (
    update(transactions)
    .where(_OWNED)
    .values(
        current_step=bindparam("b_step"),
        claimed_until=bindparam("b_until"),
        updated_at=bindparam("b_now"),
    )
)
_ADVANCE = (
    update(transactions)
    .where(_OWNED)
    .values(
        current_step=bindparam("b_step"),
        attempts=0,
        claimed_until=bindparam("b_until"),
        updated_at=bindparam("b_now"),
    )
)
_COMPLETE = (
    update(transactions)
    .where(_OWNED)
    .values(
        status="completed",
        attempts=0,
        completed_at=bindparam("b_now"),
        claimed_by=None,
        claimed_until=None,
        updated_at=bindparam("b_now"),
    )
)
_LOAD_TRANSACTION = select(transactions).where(transactions.c.id == bindparam("b_tx"))
_LOAD_DONE_STEPS = select(steps.c.step, steps.c.output).where(
    steps.c.transaction_id == bindparam("b_tx"), steps.c.status == "done"
)
_STEP_DONE = (
    update(steps)
    .where(steps.c.idempotency_key == bindparam("b_key"))
    .values(
        status="done",
        output=bindparam("b_output"),
        finished_at=bindparam("b_now"),
        system=bindparam("b_system"),
    )
)
_STEP_RESTART = (
    update(steps)
    .where(steps.c.idempotency_key == bindparam("b_key"))
    .values(
        status="started", attempt=bindparam("b_attempt"), started_at=bindparam("b_now"), error=None
    )
)
_STEP_INSERT = insert(steps)


class LeaseLostError(Exception):
    """Another worker took this transaction over (our lease expired); stop quietly."""


@dataclass(frozen=True, slots=True)
class RunOutcome:
    transaction_id: str
    status: str  # completed | retry_wait | parked | lost
    step: str | None = None
    error: Q2CError | None = None


@dataclass(slots=True)
class ReplayOutcome:
    transaction_id: str
    accepted: bool
    dry_run: bool
    message: str
    from_step: str | None = None
    intended_writes: list[dict[str, Any]] = field(default_factory=list)


class SagaEngine:
    def __init__(
        self,
        db: Engine,
        flows: Mapping[str, Flow],
        *,
        services: Callable[[Mode], Any],
        worker_id: str,
        now: Callable[[], datetime],
        lease: timedelta = timedelta(seconds=60),
        max_replays: int = 5,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.flows = dict(flows)
        self.services = services
        self.worker_id = worker_id
        self.now = now
        self.lease = lease
        self.max_replays = max_replays
        self.rng = rng or random.Random()
        self.exception_queue = ExceptionQueue(db, now=now)
        self.xref = XrefHub(db, now=now)
        self._claimed: dict[str, tuple[Any, dict[str, dict[str, Any]]]] = {}

    # claiming ---------------------------------------------------------------------------
    def claim(self, limit: int = 50) -> list[str]:
        """Claim due transactions (and ones whose worker died) with a lease.

        PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets N workers claim without blocking each
        other; SQLite serialises writers with BEGIN IMMEDIATE, which gives the same guarantee.
        """
        now = self.now()
        due = or_(
            and_(
                transactions.c.status.in_(("pending", "retry_wait")),
                transactions.c.next_attempt_at <= now,
            ),
            and_(transactions.c.status == "running", transactions.c.claimed_until < now),
        )
        with self.db.begin() as connection:
            ids = list(
                connection.execute(
                    select(transactions.c.id)
                    .where(due)
                    .order_by(transactions.c.next_attempt_at, transactions.c.created_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                ).scalars()
            )
            if ids:
                connection.execute(
                    update(transactions)
                    .where(transactions.c.id.in_(ids))
                    .values(
                        status="running",
                        claimed_by=self.worker_id,
                        claimed_until=now + self.lease,
                        updated_at=now,
                    )
                )
                self._prefetch(connection, ids)
        return ids

    def _prefetch(self, connection: Connection, ids: list[str]) -> None:
        """Read the claimed rows and their finished steps inside the claim's own commit, so
        ``run`` need not open another. Safe: every later write re-checks the lease."""
        rows = {
            r.id: r
            for r in connection.execute(select(transactions).where(transactions.c.id.in_(ids)))
        }
        done: dict[str, dict[str, dict[str, Any]]] = {i: {} for i in ids}
        for r in connection.execute(
            select(steps.c.transaction_id, steps.c.step, steps.c.output).where(
                steps.c.transaction_id.in_(ids), steps.c.status == "done"
            )
        ):
            done[r.transaction_id][r.step] = loads(r.output) if r.output else {}
        self._claimed.update({i: (rows[i], done[i]) for i in ids if i in rows})

    def release_own_claims(self) -> int:
        """On start: a restarted worker takes back what it held when it died."""
        with self.db.begin() as connection:
            return connection.execute(
                update(transactions)
                .where(
                    transactions.c.status == "running",
                    transactions.c.claimed_by == self.worker_id,
                )
                .values(status="pending", claimed_by=None, claimed_until=None)
            ).rowcount

    def run_due(self, limit: int = 50) -> list[RunOutcome]:
        return [self.run(transaction_id) for transaction_id in self.claim(limit)]

    def next_due_at(self) -> datetime | None:
        with self.db.connect() as connection:
            return connection.execute(
                select(transactions.c.next_attempt_at)
                .where(transactions.c.status.in_(("pending", "retry_wait")))
                .order_by(transactions.c.next_attempt_at)
                .limit(1)
            ).scalar_one_or_none()

    # running ----------------------------------------------------------------------------
    def _load(
        self, transaction_id: str, connection: Connection | None = None
    ) -> tuple[Any, dict[str, dict[str, Any]]]:
        """The transaction row and the outputs of its steps journaled done."""
        if connection is None:
            with self.db.connect() as own:
                return self._load(transaction_id, own)
        with connection.begin():
            row = connection.execute(_LOAD_TRANSACTION, {"b_tx": transaction_id}).one()
            done = {
                r.step: loads(r.output) if r.output else {}
                for r in connection.execute(_LOAD_DONE_STEPS, {"b_tx": transaction_id})
            }
        return row, done

    def run(self, transaction_id: str) -> RunOutcome:
        """Run a transaction this worker has claimed, from its first unfinished step.

        One connection serves the whole run; each journal write is its own short transaction.
        """
        with self.db.connect() as connection:
            return self._run(connection, transaction_id)

    def _run(self, connection: Connection, transaction_id: str) -> RunOutcome:
        prefetched = self._claimed.pop(transaction_id, None)
        row, done = prefetched or self._load(transaction_id, connection)
        if row.status != "running" or row.claimed_by != self.worker_id:
            return RunOutcome(transaction_id, "lost", row.current_step)
        flow = self.flows[row.flow]
        event = CloudEvent.model_validate(loads(row.input))
        data = validate_data(event)
        services = self.services(row.mode)
        attempt = row.attempts + 1
        started_next = False
        with (
            bind_correlation(row.correlation_id, transaction_id=transaction_id, flow=flow.name),
            run_span(
                flow=flow.name,
                transaction_id=transaction_id,
                correlation_id=row.correlation_id,
                event=event,
                legal_entity=getattr(data, "legal_entity", None),
                attempt=attempt,
                mode=row.mode,
            ) as run_trace,
        ):
            for position, step in enumerate(flow.steps):
                if step.name in done:
                    continue
                context = StepContext(
                    transaction_id=transaction_id,
                    flow=flow.name,
                    business_key=row.business_key,
                    version=row.version,
                    step=step.name,
                    attempt=attempt,
                    correlation_id=row.correlation_id,
                    mode=row.mode,
                    event=event,
                    data=data,
                    results=done,
                    services=services,
                )
                began = time.perf_counter()
                run_trace.start_step(flow.name, step.name, step.system, attempt)
                try:
                    if not started_next:
                        self._journal_started(connection, context, position)
                    result = _as_result(step.run(context))
                    last = position == len(flow.steps) - 1
                    self._journal_done(connection, context, row, flow, step, position, result, last)
                    started_next = not last
                except LeaseLostError:
                    log.warning("lease lost; another worker owns the transaction")
                    return RunOutcome(transaction_id, "lost", step.name)
                except Q2CError as error:
                    _observe(run_trace, flow.name, step, error.kind, began, error)
                    return self._fail(connection, context, row, step, error)
                except OperationalError as exc:  # the hub's own store hiccuped: try again
                    busy = RetriableError(
                        "q2c's database was unavailable", detail=str(exc)[-2000:], system="q2c"
                    )
                    _observe(run_trace, flow.name, step, busy.kind, began, busy)
                    return self._fail(connection, context, row, step, busy)
                except Exception as exc:  # a bug must park the transaction, not kill the worker
                    bug = FatalError(
                        f"Unexpected error in step '{step.name}'",
                        detail="".join(traceback.format_exception(exc))[-4000:],
                    )
                    _observe(run_trace, flow.name, step, bug.kind, began, exc)
                    return self._fail(connection, context, row, step, bug)
                _observe(run_trace, flow.name, step, "done", began)
                done[step.name] = result.output
                attempt = 1
                log.info("step done", step=step.name, attempt=context.attempt)
            log.info("transaction completed")
            _finished(flow.name, "completed", self.now(), accepted_at=row.created_at)
        return RunOutcome(transaction_id, "completed")

    def _owned(self, transaction_id: str) -> Any:
        return and_(
            transactions.c.id == transaction_id,
            transactions.c.claimed_by == self.worker_id,
            transactions.c.status == "running",
        )

    def _journal_started(self, connection: Connection, context: StepContext, position: int) -> None:
        """Record "started" for a step before its side effect, and renew the lease."""
        now = self.now()
        with connection.begin():
            claimed = connection.execute(
                _TOUCH,
                {
                    "b_tx": context.transaction_id,
                    "b_worker": self.worker_id,
                    "b_step": context.step,
                    "b_until": now + self.lease,
                    "b_now": now,
                },
            ).rowcount
            if not claimed:
                raise LeaseLostError(context.transaction_id)
            self._mark_started_in(
                connection,
                context.transaction_id,
                context.step,
                position,
                context.idempotency_key,
                context.attempt,
                now,
            )

    def _mark_started_in(
        self,
        connection: Connection,
        transaction_id: str,
        step: str,
        position: int,
        key: str,
        attempt: int,
        now: datetime,
    ) -> None:
        changed = connection.execute(
            _STEP_RESTART, {"b_key": key, "b_attempt": attempt, "b_now": now}
        ).rowcount
        if not changed:
            connection.execute(
                _STEP_INSERT,
                {
                    "transaction_id": transaction_id,
                    "step": step,
                    "position": position,
                    "idempotency_key": key,
                    "status": "started",
                    "attempt": attempt,
                    "started_at": now,
                },
            )

    def _journal_done(
        self,
        connection: Connection,
        context: StepContext,
        row: Any,
        flow: Flow,
        step: Step,
        position: int,
        result: StepResult,
        last: bool,
    ) -> None:
        """One commit: the step is done (with its output, xref links and outbound events)
        and, unless it was the last, the next step is recorded as started."""
        now = self.now()
        owned = {"b_tx": context.transaction_id, "b_worker": self.worker_id, "b_now": now}
        with connection.begin():
            if last:
                claimed = connection.execute(_COMPLETE, owned).rowcount
            else:
                following = flow.steps[position + 1].name
                claimed = connection.execute(
                    _ADVANCE, {**owned, "b_step": following, "b_until": now + self.lease}
                ).rowcount
            if not claimed:
                raise LeaseLostError(context.transaction_id)
            connection.execute(
                _STEP_DONE,
                {
                    "b_key": context.idempotency_key,
                    "b_output": dumps(result.output),
                    "b_now": now,
                    "b_system": step.system,
                },
            )
            if context.mode == "live":
                for link in result.xrefs:
                    self.xref.link_in(connection, link, changed_by=f"{flow.name}/{step.name}")
                enqueue(
                    connection,
                    result.events,
                    partition_key=row.partition_key,
                    transaction_id=context.transaction_id,
                    now=now,
                )
            if last:
                self.exception_queue.resolve_for_key_in(
                    connection,
                    flow=flow.name,
                    business_key=row.business_key,
                    transaction_id=context.transaction_id,
                )
            else:
                following = flow.steps[position + 1].name
                self._mark_started_in(
                    connection,
                    context.transaction_id,
                    following,
                    position + 1,
                    step_key(flow.name, row.business_key, row.version, following),
                    1,
                    now,
                )
            if context.mode == "live":
                # last: a write may park a follow-up exception the completion must not resolve
                for write in result.writes:
                    write(connection)

    def _fail(
        self,
        connection: Connection,
        context: StepContext,
        row: Any,
        step: Step,
        error: Q2CError,
    ) -> RunOutcome:
        now = self.now()
        attempt = context.attempt
        retry = isinstance(error, RetriableError) and not step.retry.exhausted(attempt)
        with connection.begin():
            connection.execute(
                update(steps)
                .where(steps.c.idempotency_key == context.idempotency_key)
                .values(status="failed", error=dumps(error.as_dict()), finished_at=now)
            )
            if retry:
                retry_after = error.retry_after if isinstance(error, RateLimitedError) else None
                delay = step.retry.delay(attempt, retry_after=retry_after, rng=self.rng)
                claimed = connection.execute(
                    update(transactions)
                    .where(self._owned(context.transaction_id))
                    .values(
                        status="retry_wait",
                        attempts=attempt,
                        next_attempt_at=now + timedelta(seconds=delay),
                        claimed_by=None,
                        claimed_until=None,
                        updated_at=now,
                    )
                ).rowcount
                if not claimed:
                    return RunOutcome(context.transaction_id, "lost", step.name, error)
                _finished(context.flow, "retry_wait", now)
                log.info(
                    "step will retry",
                    step=step.name,
                    attempt=attempt,
                    delay=delay,
                    error=error.message,
                )
                return RunOutcome(context.transaction_id, "retry_wait", step.name, error)
            if isinstance(error, RetriableError):
                error.message = (
                    f"{error.message}; gave up after {attempt} attempts at step '{step.name}'"
                )
                who = system_display_name(error.system) if error.system else "The system"
                error.suggested_fix = (
                    f"{who} kept failing for {attempt} attempts. Check that it is up (vendor "
                    "status page, credentials, limits), then replay."
                )
            claimed = connection.execute(
                update(transactions)
                .where(self._owned(context.transaction_id))
                .values(
                    status="parked",
                    attempts=attempt,
                    claimed_by=None,
                    claimed_until=None,
                    updated_at=now,
                )
            ).rowcount
            if not claimed:
                return RunOutcome(context.transaction_id, "lost", step.name, error)
            self._park_in(connection, context, row, step, error, attempt, now)
        _finished(context.flow, "parked", now, step=step.name, error=error)
        log.warning("transaction parked", step=step.name, error=error.message, kind=error.kind)
        return RunOutcome(context.transaction_id, "parked", step.name, error)

    def _park_in(
        self,
        connection: Connection,
        context: StepContext,
        row: Any,
        step: Step,
        error: Q2CError,
        attempt: int,
        now: datetime,
    ) -> None:
        self.exception_queue.park_in(
            connection,
            transaction_id=context.transaction_id,
            flow=context.flow,
            business_key=context.business_key,
            step=step.name,
            error=error,
            attempts=attempt,
        )
        if context.mode == "live":
            failed = new_event(
                "transaction.failed",
                TransactionFailed(
                    transaction_id=context.transaction_id,
                    flow=context.flow,
                    business_key=context.business_key,
                    step=step.name,
                    message=error.message,
                    suggested_fix=error.suggested_fix,
                ),
                subject=context.business_key,
                correlation_id=context.correlation_id,
                event_id=f"{context.transaction_id}:failed:{row.replay_count}:{attempt}",
            )
            enqueue(
                connection,
                [failed],
                partition_key=row.partition_key,
                transaction_id=context.transaction_id,
                now=now,
            )

    # replay -------------------------------------------------------------------------------
    def replay(
        self,
        transaction_id: str,
        *,
        by: str,
        reason: str | None = None,
        dry_run: bool = False,
    ) -> ReplayOutcome:
        """Send a parked transaction back to work from its failed step (or preview that)."""
        now = self.now()
        with self.db.begin() as connection:
            row = connection.execute(
                select(transactions).where(transactions.c.id == transaction_id)
            ).one_or_none()
            if row is None:
                return ReplayOutcome(transaction_id, False, dry_run, "no such transaction")
            if row.status != "parked":
                return ReplayOutcome(
                    transaction_id,
                    False,
                    dry_run,
                    f"transaction is {row.status}; only parked transactions can be replayed",
                )
            if row.replay_count >= self.max_replays and not dry_run:
                return ReplayOutcome(
                    transaction_id,
                    False,
                    dry_run,
                    f"replayed {row.replay_count} times already (cap {self.max_replays}); "
                    "fix the cause or dismiss it",
                )
            open_exception = connection.execute(
                select(exceptions.c.id).where(
                    exceptions.c.transaction_id == transaction_id,
                    exceptions.c.status == "open",
                )
            ).scalar_one_or_none()
            connection.execute(
                insert(replays).values(
                    transaction_id=transaction_id,
                    exception_id=open_exception,
                    requested_by=by,
                    reason=reason,
                    dry_run=int(dry_run),
                    from_step=row.current_step,
                    requested_at=now,
                )
            )
            if not dry_run:
                connection.execute(
                    update(transactions)
                    .where(transactions.c.id == transaction_id, transactions.c.status == "parked")
                    .values(
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        replay_count=transactions.c.replay_count + 1,
                        updated_at=now,
                    )
                )
                if open_exception is not None:
                    self._mark_replaying(connection, open_exception, by)
        if dry_run:
            return self.preview(transaction_id)
        return ReplayOutcome(
            transaction_id,
            True,
            False,
            f"queued for replay from step '{row.current_step}'",
            from_step=row.current_step,
        )

    def replay_many(
        self, where: ExceptionFilter, *, by: str, reason: str | None = None, dry_run: bool = False
    ) -> list[ReplayOutcome]:
        parked = self.exception_queue.list(where, limit=10_000)
        seen: set[str] = set()
        outcomes = []
        for item in parked:
            if item.transaction_id in seen:
                continue
            seen.add(item.transaction_id)
            outcomes.append(self.replay(item.transaction_id, by=by, reason=reason, dry_run=dry_run))
        return outcomes

    def _mark_replaying(self, connection: Connection, exception_id: int, by: str) -> None:
        connection.execute(
            update(exceptions)
            .where(exceptions.c.id == exception_id)
            .values(status="replaying", resolution=f"replay requested by {by}")
        )

    def preview(self, transaction_id: str) -> ReplayOutcome:
        """Dry run: run the remaining steps against shadow services; nothing is written."""
        row, done = self._load(transaction_id)
        flow = self.flows[row.flow]
        event = CloudEvent.model_validate(loads(row.input))
        services = self.services("shadow")
        intended: list[dict[str, Any]] = getattr(services, "shadow_log", [])
        with bind_correlation(row.correlation_id, transaction_id=transaction_id, dry_run="yes"):
            for step in flow.steps:
                if step.name in done:
                    continue
                context = StepContext(
                    transaction_id=transaction_id,
                    flow=flow.name,
                    business_key=row.business_key,
                    version=row.version,
                    step=step.name,
                    attempt=1,
                    correlation_id=row.correlation_id,
                    mode="shadow",
                    event=event,
                    data=validate_data(event),
                    results=done,
                    services=services,
                )
                try:
                    done[step.name] = _as_result(step.run(context)).output
                except Q2CError as error:
                    return ReplayOutcome(
                        transaction_id,
                        False,
                        True,
                        f"would fail again at step '{step.name}': {error.message}",
                        from_step=row.current_step,
                        intended_writes=intended,
                    )
        return ReplayOutcome(
            transaction_id,
            True,
            True,
            "would complete",
            from_step=row.current_step,
            intended_writes=intended,
        )


def _observe(
    run_trace: RunTrace,
    flow: str,
    step: Step,
    outcome: str,
    began: float,
    error: BaseException | None = None,
) -> None:
    """A step ended: metrics by flow, step, system and outcome; its span closes."""
    observe_step(flow, step.name, step.system, outcome, time.perf_counter() - began)
    run_trace.end_step(outcome, error)


def _finished(
    flow: str,
    outcome: str,
    at: datetime,
    *,
    accepted_at: datetime | None = None,
    step: str | None = None,
    error: Q2CError | None = None,
) -> None:
    """A run ended completed, waiting for a retry, or parked."""
    kind = error.kind if error is not None else None
    observe_transaction(flow, outcome, at=at, accepted_at=accepted_at, step=step, kind=kind)
    note_run_outcome(outcome, error)


def _as_result(value: StepResult | dict[str, Any] | None) -> StepResult:
    if isinstance(value, StepResult):
        return value
    return StepResult(output=value or {})
