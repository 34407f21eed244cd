"""``q2c bench``: runtime throughput, measured next to a raw-SQLite baseline in the same run.

- baseline: plain ``sqlite3`` executemany of the same rows into a table of the same shape
  (what the disk and SQLite can do with no q2c at all);
- ingest: CloudEvents through the inbox (dedupe + routing + transaction start), 10 % duplicates;
- sagas: six-step no-op sagas through the engine (journal before/after every step), giving
  sagas/s and per-saga latency percentiles;
- sagas + tracing: the same sagas with OpenTelemetry on (every span kept, batch processor,
  in-memory exporter), interleaved with untraced rounds in the same process; its ratio is
  traced throughput over untraced throughput. No-op steps make this the worst case: a real
  step waits milliseconds for a vendor, which the same per-span cost is spread over.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel

from q2c.canonical.events import CloudEvent, OpportunityClosedWon, new_event
from q2c.config import TracingConfig
from q2c.observability import configure_tracing, shutdown_tracing
from q2c.runtime.engine import SagaEngine
from q2c.runtime.flow import Flow, FlowKey, Step, StepContext
from q2c.runtime.inbox import Inbox, Routing
from q2c.store.db import create_store_engine, upgrade

__all__ = ["BenchResult", "bench_tracing_overhead", "make_events", "noop_flow", "run_benchmarks"]


@dataclass
class BenchResult:
    name: str
    count: int
    seconds: float
    per_second: float
    ratio_to_baseline: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    cpu_seconds: float | None = None  # this process's CPU time (all threads) over ``seconds``

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_events(count: int, duplicate_every: int = 10) -> list[CloudEvent]:
    events = []
    for i in range(count):
        n = i - 1 if i and i % duplicate_every == 0 else i  # every 10th repeats the previous id
        events.append(
            new_event(
                "opportunity.closed_won",
                OpportunityClosedWon(opportunity_id=f"006{n:012d}", legal_entity="US01"),
                source="urn:bench:crm",
                subject=f"006{n:012d}",
                event_id=f"evt-{n}",
            )
        )
    return events


def bench_baseline(path: Path, count: int) -> BenchResult:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(
        "CREATE TABLE raw (id INTEGER PRIMARY KEY, source TEXT, event_id TEXT, type TEXT, "
        "subject TEXT, payload TEXT, received_at TEXT, UNIQUE(source, event_id))"
    )
    events = make_events(count)
    started = time.perf_counter()
    for offset in range(0, count, 500):
        rows = [
            (e.source, e.id, e.type, e.subject, e.to_json().decode(), e.time.isoformat())
            for e in events[offset : offset + 500]
            if e.time is not None
        ]
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            "INSERT OR IGNORE INTO raw (source, event_id, type, subject, payload, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        connection.execute("COMMIT")
    seconds = time.perf_counter() - started
    connection.close()
    return BenchResult("baseline: raw sqlite insert", count, seconds, count / seconds)


def noop_flow(steps: int = 6) -> Flow:
    def key(event: CloudEvent, data: BaseModel) -> FlowKey:
        assert isinstance(data, OpportunityClosedWon)
        return FlowKey(data.opportunity_id, 1, data.legal_entity)

    def step(context: StepContext) -> dict[str, Any]:
        return {"step": context.step}

    return Flow(
        name="bench_saga",
        triggers=("opportunity.closed_won",),
        key=key,
        steps=tuple(Step(f"step_{i + 1}", step) for i in range(steps)),
    )


def bench_ingest(url: str, count: int, batch: int = 500) -> BenchResult:
    db = create_store_engine(url)
    upgrade(db)
    flow = noop_flow()
    inbox = Inbox(db, Routing({flow.name: flow}, lambda f, p: "live"), now=_utcnow)
    events = make_events(count)
    started = time.perf_counter()
    for offset in range(0, count, batch):
        inbox.accept(events[offset : offset + batch])
    seconds = time.perf_counter() - started
    db.dispose()
    return BenchResult("ingest: inbox dedupe + routing", count, seconds, count / seconds)


def bench_sagas(url: str, count: int, *, exporter: SpanExporter | None = None) -> BenchResult:
    """``exporter``: trace every saga (from ingest on) into it through a batch processor."""
    if exporter is not None:
        configure_tracing(TracingConfig(enabled=True, exporter="none"), exporter=exporter)
    try:
        return _bench_sagas(url, count)
    finally:
        if exporter is not None:
            shutdown_tracing()


def _bench_sagas(url: str, count: int) -> BenchResult:
    db = create_store_engine(url)
    upgrade(db)
    flow = noop_flow()
    inbox = Inbox(db, Routing({flow.name: flow}, lambda f, p: "live"), now=_utcnow)
    inbox.accept([e for i, e in enumerate(make_events(count, duplicate_every=count + 1))])
    engine = SagaEngine(
        db, {flow.name: flow}, services=lambda mode: None, worker_id="bench", now=_utcnow
    )
    latencies: list[float] = []
    started, cpu_started = time.perf_counter(), time.process_time()
    while True:
        claimed = engine.claim(100)
        if not claimed:
            break
        for transaction_id in claimed:
            t0 = time.perf_counter()
            engine.run(transaction_id)
            latencies.append((time.perf_counter() - t0) * 1000)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    db.dispose()
    done = len(latencies)
    return BenchResult(
        "sagas: 6 journaled steps each",
        done,
        seconds,
        done / seconds,
        p50_ms=statistics.median(latencies),
        p95_ms=statistics.quantiles(latencies, n=20)[18],
        cpu_seconds=cpu_seconds,
    )


def bench_tracing_overhead(root: Path, count: int, rounds: int = 8) -> BenchResult:
    """Sagas with tracing on against the same sagas with it off, in paired rounds whose order
    flips each time. The ratio is the median over pairs of untraced over traced CPU time per
    saga (the process's CPU time, exporter thread included): on a shared machine wall time
    swings with other processes' load far more than the few percent being measured."""
    per_round = max(count // rounds, 20)
    traced: list[BenchResult] = []
    ratios: list[float] = []
    spans = 0
    for n in range(rounds):
        pair: dict[bool, BenchResult] = {}
        for tracing in (False, True) if n % 2 == 0 else (True, False):
            url = f"sqlite:///{root / f'tracing-{n}-{int(tracing)}.db'}"
            exporter = InMemorySpanExporter() if tracing else None
            pair[tracing] = bench_sagas(url, per_round, exporter=exporter)
            if exporter is not None:
                spans += len(exporter.get_finished_spans())
        traced.append(pair[True])
        ratios.append(_cpu_per_item(pair[False]) / _cpu_per_item(pair[True]))
    expected = rounds * per_round * (len(noop_flow().steps) + 1)  # a run and its steps
    if spans < expected:
        raise RuntimeError(f"tracing benchmark exported {spans} spans, expected >= {expected}")
    done = sum(r.count for r in traced)
    seconds = sum(r.seconds for r in traced)
    return BenchResult(
        "sagas + tracing (ratio: CPU time vs untraced)",
        done,
        seconds,
        done / seconds,
        ratio_to_baseline=statistics.median(ratios),
        p50_ms=statistics.median(r.p50_ms for r in traced if r.p50_ms is not None),
        p95_ms=statistics.median(r.p95_ms for r in traced if r.p95_ms is not None),
        cpu_seconds=sum(r.cpu_seconds or 0.0 for r in traced),
    )


def _cpu_per_item(result: BenchResult) -> float:
    return (result.cpu_seconds or result.seconds) / result.count


@contextmanager
def _pg_schema(postgres_url: str) -> Iterator[str]:
    """A throw-away schema per benchmark, so runs never see each other's rows."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_store_engine(postgres_url)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    joiner = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{joiner}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def run_benchmarks(
    *,
    events: int = 20_000,
    sagas: int = 2_000,
    postgres_url: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[BenchResult]:
    results: list[BenchResult] = []
    with tempfile.TemporaryDirectory(prefix="q2c-bench-") as tmp:
        root = Path(tmp)
        progress("baseline")
        baseline = bench_baseline(root / "baseline.db", events)
        results.append(baseline)
        progress("ingest (sqlite)")
        ingest = bench_ingest(f"sqlite:///{root / 'ingest.db'}", events)
        ingest.ratio_to_baseline = ingest.per_second / baseline.per_second
        ingest.name += " [sqlite]"
        results.append(ingest)
        progress("sagas (sqlite)")
        saga = bench_sagas(f"sqlite:///{root / 'sagas.db'}", sagas)
        saga.name += " [sqlite]"
        results.append(saga)
        progress("sagas + tracing (sqlite)")
        traced = bench_tracing_overhead(root, sagas)
        traced.name += " [sqlite]"
        results.append(traced)
    if postgres_url:
        for name, run in (("ingest", bench_ingest), ("sagas", bench_sagas)):
            progress(f"{name} (postgresql)")
            count = events if name == "ingest" else sagas
            with _pg_schema(postgres_url) as scoped:
                result = run(scoped, count)
            result.name += " [postgresql]"
            if name == "ingest":
                result.ratio_to_baseline = result.per_second / baseline.per_second
            results.append(result)
    return results
