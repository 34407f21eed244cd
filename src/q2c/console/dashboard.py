"""What the dashboard shows, read from the store: throughput and failures per flow over time,
latency percentiles, exception aging, and time since each flow's last success.

"Time since last success" is the alert operators rely on when every other panel stays green:
a flow that stopped receiving work (a poller that lost its credentials, a webhook nobody
calls any more) fails nothing, so only the silence gives it away.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Integer, cast, func, select

from q2c.store.schema import exceptions, transactions

__all__ = [
    "AGING_BUCKETS",
    "DEFAULT_STALE_AFTER",
    "WINDOWS",
    "Dashboard",
    "FlowHealth",
    "Throughput",
    "build_dashboard",
    "percentile",
]

WINDOWS: dict[str, tuple[timedelta, timedelta]] = {
    # name -> (span, bucket width)
    "15m": (timedelta(minutes=15), timedelta(seconds=30)),
    "1h": (timedelta(hours=1), timedelta(minutes=2)),
    "24h": (timedelta(hours=24), timedelta(hours=1)),
    "7d": (timedelta(days=7), timedelta(hours=6)),
}
_NICE_WIDTHS = [
    timedelta(seconds=s) for s in (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 10800)
] + [timedelta(hours=6), timedelta(hours=12), timedelta(days=1)]
_MAX_BUCKETS = 30

AGING_BUCKETS: list[tuple[str, timedelta]] = [
    ("< 1 h", timedelta(hours=1)),
    ("1-4 h", timedelta(hours=4)),
    ("4-24 h", timedelta(hours=24)),
    ("1-3 d", timedelta(days=3)),
    ("> 3 d", timedelta.max),
]

DEFAULT_STALE_AFTER: dict[str, timedelta] = {
    # scheduled flows run daily or monthly: silence of a few hours is normal for them
    "reference_data_sync": timedelta(days=2),
    "rate_card_publication": timedelta(days=45),
    "billing_run": timedelta(days=35),
    "revenue_recognition": timedelta(days=35),
    "payment_to_ledger": timedelta(days=2),
    "invoice_to_ledger": timedelta(days=2),
}
_STALE_DEFAULT = timedelta(hours=4)
_FAILED = ("parked", "dismissed")
_LATENCY_SAMPLE = 100_000


@dataclass(frozen=True, slots=True)
class Throughput:
    """Transactions accepted per time bucket, by how they ended."""

    flow: str
    completed: list[int]
    failed: list[int]
    in_progress: list[int]

    @property
    def totals(self) -> tuple[int, int, int]:
        return sum(self.completed), sum(self.failed), sum(self.in_progress)


@dataclass(frozen=True, slots=True)
class Latency:
    flow: str
    count: int
    p50: float
    p95: float
    p99: float
    max: float


@dataclass(frozen=True, slots=True)
class FlowHealth:
    flow: str
    last_success: datetime | None
    since: timedelta | None
    stale_after: timedelta
    waiting: int  # pending, retrying or running now
    parked: int
    enabled: bool

    @property
    def stale(self) -> bool:
        return self.since is None or self.since > self.stale_after


@dataclass
class Dashboard:
    now: datetime
    window: str
    start: datetime
    width: timedelta
    bucket_starts: list[datetime]
    throughput: list[Throughput]
    latency: list[Latency]
    aging: dict[str, list[int]]  # flow -> count per AGING_BUCKETS
    health: list[FlowHealth]
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def aging_totals(self) -> list[int]:
        return [sum(row[i] for row in self.aging.values()) for i in range(len(AGING_BUCKETS))]

    @property
    def stale_flows(self) -> list[FlowHealth]:
        return [h for h in self.health if h.stale]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def _window(name: str, now: datetime, oldest: datetime | None) -> tuple[datetime, timedelta]:
    if name in WINDOWS:
        span, width = WINDOWS[name]
        return now - span, width
    # auto: from the oldest transaction of the last week, in a bucket width that gives at
    # most _MAX_BUCKETS bars
    earliest = max(oldest or now - timedelta(hours=1), now - timedelta(days=7))
    span = max(now - earliest, timedelta(minutes=1))
    width = next((w for w in _NICE_WIDTHS if span / w <= _MAX_BUCKETS), _NICE_WIDTHS[-1])
    buckets = int(span / width) + 1
    return now - width * buckets, width


def _bucket(column: Any, dialect: str, start: datetime, width: timedelta) -> Any:
    seconds = int(width.total_seconds())
    if dialect == "postgresql":
        epoch = func.extract("epoch", column) - start.timestamp()
        return cast(func.floor(epoch / seconds), Integer)
    # SQLite keeps naive UTC text; strftime('%s') reads it as UTC
    epoch = cast(func.strftime("%s", column), Integer) - int(start.timestamp())
    return cast(epoch / seconds, Integer)


def build_dashboard(
    db: sa.Engine,
    *,
    now: datetime,
    flows: list[str],
    enabled: set[str],
    window: str = "auto",
    stale_after: dict[str, timedelta] | None = None,
) -> Dashboard:
    thresholds = {**DEFAULT_STALE_AFTER, **(stale_after or {})}
    dialect = db.dialect.name
    with db.connect() as connection:
        oldest = connection.execute(
            select(func.min(transactions.c.created_at)).where(
                transactions.c.created_at >= now - timedelta(days=7)
            )
        ).scalar_one_or_none()
        start, width = _window(window, now, oldest)
        count = max(1, int((now - start) / width) + 1)
        bucket = _bucket(transactions.c.created_at, dialect, start, width).label("bucket")
        per_bucket = connection.execute(
            select(transactions.c.flow, transactions.c.status, bucket, func.count())
            .where(transactions.c.created_at >= start)
            .group_by(transactions.c.flow, transactions.c.status, bucket)
        ).all()
        durations = connection.execute(
            select(transactions.c.flow, transactions.c.created_at, transactions.c.completed_at)
            .where(
                transactions.c.status == "completed",
                transactions.c.completed_at >= start,
            )
            .limit(_LATENCY_SAMPLE)
        ).all()
        open_exceptions = connection.execute(
            select(exceptions.c.flow, exceptions.c.created_at).where(exceptions.c.status == "open")
        ).all()
        last_success = dict(
            connection.execute(
                select(transactions.c.flow, func.max(transactions.c.completed_at))
                .where(transactions.c.status == "completed")
                .group_by(transactions.c.flow)
            ).all()
        )
        by_status = connection.execute(
            select(transactions.c.flow, transactions.c.status, func.count()).group_by(
                transactions.c.flow, transactions.c.status
            )
        ).all()

    series: dict[str, dict[str, list[int]]] = defaultdict(
        lambda: {"completed": [0] * count, "failed": [0] * count, "in_progress": [0] * count}
    )
    for flow, status, index, n in per_bucket:
        if index is None or not 0 <= int(index) < count:
            continue
        kind = "completed" if status == "completed" else "failed" if status in _FAILED else (
            "in_progress"
        )
        series[flow][kind][int(index)] += n
    throughput = [
        Throughput(flow, s["completed"], s["failed"], s["in_progress"])
        for flow, s in sorted(series.items())
    ]

    samples: dict[str, list[float]] = defaultdict(list)
    for flow, created, completed in durations:
        if created is not None and completed is not None:
            samples[flow].append(max(0.0, (completed - created).total_seconds()))
    latency = []
    for flow, values in sorted(samples.items()):
        values.sort()
        latency.append(
            Latency(
                flow,
                len(values),
                percentile(values, 50),
                percentile(values, 95),
                percentile(values, 99),
                values[-1],
            )
        )

    aging: dict[str, list[int]] = defaultdict(lambda: [0] * len(AGING_BUCKETS))
    for flow, created in open_exceptions:
        age = now - created
        index = next(i for i, (_, limit) in enumerate(AGING_BUCKETS) if age < limit)
        aging[flow][index] += 1

    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for flow, status, n in by_status:
        counts[flow][status] = n
    known = sorted(set(flows) & (enabled | set(counts)))
    health = []
    for flow in known:
        success = last_success.get(flow)
        statuses = counts.get(flow, {})
        health.append(
            FlowHealth(
                flow=flow,
                last_success=success,
                since=now - success if success else None,
                stale_after=thresholds.get(flow, _STALE_DEFAULT),
                waiting=sum(statuses.get(s, 0) for s in ("pending", "retry_wait", "running")),
                parked=statuses.get("parked", 0),
                enabled=flow in enabled,
            )
        )
    totals = {
        "accepted": sum(sum(t.totals) for t in throughput),
        "completed": sum(t.totals[0] for t in throughput),
        "failed": sum(t.totals[1] for t in throughput),
        "open_exceptions": len(open_exceptions),
        "stale": sum(h.stale for h in health),
    }
    return Dashboard(
        now=now,
        window=window,
        start=start,
        width=width,
        bucket_starts=[start + width * i for i in range(count)],
        throughput=throughput,
        latency=latency,
        aging=dict(sorted(aging.items())),
        health=health,
        totals=totals,
    )
