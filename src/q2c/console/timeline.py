"""Transaction search, and the end-to-end thread of one correlation id across systems.

A quote-to-cash thread spans flows that each start their own correlation: the deal's
opportunity-to-project creates the project and contract; PSA deliveries name the project; the
billing run names the contract and creates the invoice (sharing its correlation id with the
invoice's ERP posting); the payment names the invoice. So the thread starts from every
transaction sharing the correlation id and follows those business keys (and the
cross-references of their canonical ids) a few hops, bounded in size.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import or_, select, tuple_

from q2c.runtime.jsonutil import loads
from q2c.store.schema import exceptions, payloads, steps, transactions, xref

__all__ = [
    "STAGES",
    "LinkedTransaction",
    "SearchPage",
    "Thread",
    "search_transactions",
    "thread_of",
]

# Business keys that tie one flow's transaction to another's.
LINK_KEYS = (
    "opportunity_id",
    "contract_id",
    "project_id",
    "invoice_id",
    "invoice_ref",
    "payment_id",
)
# The stages of quote-to-cash, in the order money moves.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("CRM → ERP: deal to project", ("opportunity_to_project",)),
    ("PSA: delivery", ("delivery_batch_intake", "delivery_to_billing")),
    ("Billing", ("billing_run",)),
    ("ERP: ledger", ("invoice_to_ledger", "payment_to_ledger", "revenue_recognition")),
]
_MIN_LINK_LENGTH = 8  # shorter ids ("100", "1002") are too likely to appear by chance
_OUTPUT_ID_SUFFIXES = ("_id", "_number", "id", "number", "code")
PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class SearchPage:
    rows: list[Any]
    next_cursor: str | None


def _encode(row: Any) -> str:
    return base64.urlsafe_b64encode(f"{row.created_at.isoformat()}|{row.id}".encode()).decode()


def _decode(cursor: str) -> tuple[datetime, str] | None:
    try:
        created, _, transaction_id = base64.urlsafe_b64decode(cursor).decode().partition("|")
        return datetime.fromisoformat(created), transaction_id
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return None


def search_transactions(
    db: sa.Engine,
    *,
    flow: str | None = None,
    status: str | None = None,
    system: str | None = None,
    business_key: str | None = None,
    correlation_id: str | None = None,
    created_from: date | None = None,
    created_to: date | None = None,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> SearchPage:
    """Newest first; ``business_key`` matches as a prefix; ``created_to`` is inclusive."""
    query = select(transactions).order_by(
        transactions.c.created_at.desc(), transactions.c.id.desc()
    )
    for column, value in (
        (transactions.c.flow, flow),
        (transactions.c.status, status),
        (transactions.c.correlation_id, correlation_id),
    ):
        if value:
            query = query.where(column == value)
    if business_key:
        escaped = business_key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(transactions.c.business_key.like(f"{escaped}%", escape="\\"))
    if system:
        touched = select(steps.c.transaction_id).where(steps.c.system == system)
        query = query.where(transactions.c.id.in_(touched))
    if created_from:
        query = query.where(transactions.c.created_at >= _utc(created_from))
    if created_to:
        query = query.where(transactions.c.created_at < _utc(created_to) + timedelta(days=1))
    after = _decode(cursor) if cursor else None
    if after is not None:
        query = query.where(tuple_(transactions.c.created_at, transactions.c.id) < after)
    with db.connect() as connection:
        rows = connection.execute(query.limit(limit + 1)).all()
    page = rows[:limit]
    return SearchPage(list(page), _encode(page[-1]) if len(rows) > limit else None)


def _utc(day: date) -> datetime:
    from datetime import UTC

    return datetime.combine(day, time(0), tzinfo=UTC)


@dataclass
class StepView:
    step: str
    position: int
    status: str
    attempt: int
    system: str | None
    started_at: datetime
    finished_at: datetime | None
    external_ids: dict[str, str]
    error: str | None

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass
class LinkedTransaction:
    row: Any
    how: str  # "correlation id" or the key that linked it
    steps: list[StepView] = field(default_factory=list)
    payloads: list[dict[str, Any]] = field(default_factory=list)
    exceptions: list[Any] = field(default_factory=list)

    @property
    def ended_at(self) -> datetime:
        ended: datetime = self.row.completed_at or self.row.updated_at or self.row.created_at
        return ended


@dataclass
class Thread:
    correlation_id: str
    transactions: list[LinkedTransaction]
    truncated: bool
    external_ids: list[dict[str, Any]]
    loose_payloads: list[dict[str, Any]]  # kept under the correlation id, outside any step

    def by_stage(self) -> list[tuple[str, list[LinkedTransaction]]]:
        staged: list[tuple[str, list[LinkedTransaction]]] = []
        placed: set[str] = set()
        for label, flows in STAGES:
            members = [t for t in self.transactions if t.row.flow in flows]
            placed.update(t.row.id for t in members)
            if members:
                staged.append((label, members))
        rest = [t for t in self.transactions if t.row.id not in placed]
        if rest:
            staged.append(("Other", rest))
        return staged


def _links_in(document: Any) -> set[str]:
    """Link ids among the top-level fields of a JSON object (nested lists are other
    things' ids: a batch names many projects)."""
    found: set[str] = set()
    if not isinstance(document, dict):
        return found
    for key in LINK_KEYS:
        value = document.get(key)
        if isinstance(value, str) and len(value) >= _MIN_LINK_LENGTH:
            found.add(value)
    for application in document.get("applications") or []:  # a payment names its invoices
        if isinstance(application, dict) and isinstance(application.get("invoice_id"), str):
            found.add(application["invoice_id"])
    return found


def _external_ids(output: Any) -> dict[str, str]:
    if not isinstance(output, dict):
        return {}
    shown: dict[str, str] = {}
    for key, value in output.items():
        scalar = isinstance(value, str | int) and not isinstance(value, bool)
        if scalar and key.endswith(_OUTPUT_ID_SUFFIXES):
            shown[key] = str(value)[:80]
        if len(shown) >= 6:
            break
    return shown


def _error_message(raw: str | None) -> str | None:
    if not raw:
        return None
    error = loads(raw)
    if isinstance(error, dict):
        return str(error.get("message") or error.get("detail") or raw)[:500]
    return str(error)[:500]


def thread_of(
    db: sa.Engine,
    correlation_id: str,
    *,
    hops: int = 4,
    max_transactions: int = 150,
) -> Thread:
    """Every transaction of the correlation id, then those linked by business keys."""
    with db.connect() as connection:
        found: dict[str, tuple[Any, str]] = {
            r.id: (r, "correlation id")
            for r in connection.execute(
                select(transactions)
                .where(transactions.c.correlation_id == correlation_id)
                .order_by(transactions.c.created_at)
                .limit(max_transactions)
            )
        }
        searched: set[str] = set()
        correlations = {correlation_id}
        truncated = False
        for _ in range(hops):
            links = _links_of(connection, list(found)) - searched
            links |= _xref_aliases(connection, links) - searched
            if not links:
                break
            searched |= links
            new = _linked_rows(connection, links, correlations, set(found), max_transactions)
            for row, how in new:
                found.setdefault(row.id, (row, how))
                correlations.add(row.correlation_id)
            if len(found) >= max_transactions:
                truncated = True
                break
        ordered = sorted(found.values(), key=lambda pair: (pair[0].created_at, pair[0].id))
        ordered = ordered[:max_transactions]
        ids = [row.id for row, _ in ordered]
        step_rows = _in_chunks(
            connection,
            lambda chunk: select(steps)
            .where(steps.c.transaction_id.in_(chunk))
            .order_by(steps.c.transaction_id, steps.c.position),
            ids,
        )
        payload_rows = _in_chunks(
            connection,
            lambda chunk: select(
                payloads.c.id,
                payloads.c.direction,
                payloads.c.system,
                payloads.c.transaction_id,
                payloads.c.operation,
                payloads.c.status,
                payloads.c.elapsed_ms,
                payloads.c.created_at,
            )
            .where(payloads.c.transaction_id.in_(chunk))
            .order_by(payloads.c.id),
            ids,
        )
        loose = connection.execute(
            select(
                payloads.c.id,
                payloads.c.direction,
                payloads.c.system,
                payloads.c.operation,
                payloads.c.status,
                payloads.c.created_at,
            )
            .where(payloads.c.correlation_id == correlation_id, payloads.c.transaction_id.is_(None))
            .order_by(payloads.c.id)
            .limit(50)
        ).all()
        exception_rows = _in_chunks(
            connection,
            lambda chunk: select(exceptions)
            .where(exceptions.c.transaction_id.in_(chunk))
            .order_by(exceptions.c.id),
            ids,
        )
        canonical = {
            value for row, _ in ordered for value in _links_in(loads(row.input).get("data"))
        }
        for s in step_rows:
            if s.output:
                canonical |= _links_in(loads(s.output))
        xref_rows = (
            connection.execute(
                select(xref)
                .where(xref.c.canonical_id.in_(sorted(canonical)[:500]))
                .order_by(xref.c.canonical_id, xref.c.system)
            ).all()
            if canonical
            else []
        )
    views = {row.id: LinkedTransaction(row, how) for row, how in ordered}
    for s in step_rows:
        views[s.transaction_id].steps.append(
            StepView(
                step=s.step,
                position=s.position,
                status=s.status,
                attempt=s.attempt,
                system=s.system,
                started_at=s.started_at,
                finished_at=s.finished_at,
                external_ids=_external_ids(loads(s.output) if s.output else None),
                error=_error_message(s.error),
            )
        )
    for p in payload_rows:
        views[p.transaction_id].payloads.append(dict(p._mapping))
    for e in exception_rows:
        views[e.transaction_id].exceptions.append(e)
    return Thread(
        correlation_id=correlation_id,
        transactions=list(views.values()),
        truncated=truncated,
        external_ids=[dict(r._mapping) for r in xref_rows],
        loose_payloads=[dict(p._mapping) for p in loose],
    )


def _in_chunks(connection: sa.Connection, build: Any, ids: list[str]) -> list[Any]:
    rows: list[Any] = []
    for start in range(0, len(ids), 200):
        rows.extend(connection.execute(build(ids[start : start + 200])).all())
    return rows


def _links_of(connection: sa.Connection, ids: list[str]) -> set[str]:
    links: set[str] = set()
    for row in _in_chunks(
        connection,
        lambda chunk: select(transactions.c.business_key, transactions.c.input).where(
            transactions.c.id.in_(chunk)
        ),
        ids,
    ):
        if len(row.business_key) >= _MIN_LINK_LENGTH:
            links.add(row.business_key)
        links |= _links_in(loads(row.input).get("data"))
    for row in _in_chunks(
        connection,
        lambda chunk: select(steps.c.output).where(
            steps.c.transaction_id.in_(chunk), steps.c.output.is_not(None)
        ),
        ids,
    ):
        links |= _links_in(loads(row.output))
    return links


def _xref_aliases(connection: sa.Connection, links: set[str]) -> set[str]:
    """Other systems' ids of the same things (the CRM's opportunity id of a project)."""
    if not links:
        return set()
    chosen = sorted(links)[:200]
    rows = connection.execute(
        select(xref.c.canonical_id, xref.c.external_id).where(
            or_(xref.c.canonical_id.in_(chosen), xref.c.external_id.in_(chosen))
        )
    ).all()
    return {
        value
        for row in rows
        for value in (row.canonical_id, row.external_id)
        if len(value) >= _MIN_LINK_LENGTH
    }


def _linked_rows(
    connection: sa.Connection,
    links: Iterable[str],
    correlations: set[str],
    known: set[str],
    limit: int,
) -> list[tuple[Any, str]]:
    chosen = sorted(links)[:60]
    conditions: list[Any] = [transactions.c.business_key.in_(chosen)]
    for link in chosen:
        escaped = link.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(transactions.c.business_key.like(f"{escaped}:%", escape="\\"))
        conditions.append(transactions.c.input.like(f'%"{escaped}"%', escape="\\"))
    rows = connection.execute(
        select(transactions).where(or_(*conditions)).order_by(transactions.c.created_at).limit(
            limit
        )
    ).all()
    # a billing run and the invoice posting it started share a correlation id
    sharing = sorted({row.correlation_id for row in rows} | correlations)
    related = connection.execute(
        select(transactions).where(transactions.c.correlation_id.in_(sharing)).limit(limit)
    ).all()
    out = []
    for row in [*rows, *related]:
        if row.id in known:
            continue
        how = next(
            (link for link in chosen if link == row.business_key or link in row.input),
            "correlation id",
        )
        out.append((row, how))
    return out
