"""``q2c bench``: runtime throughput, measured next to a raw-SQLite baseline in the same run.

- baseline: plain ``sqlite3`` executemany of the same rows into a table of the same shape
  (what the disk and SQLite can do with no q2c at all);
- ingest: CloudEvents through the inbox (dedupe + routing + transaction start), 10 % duplicates;
- sagas: six-step no-op sagas through the engine (journal before/after every step), giving
  sagas/s and per-saga latency percentiles;
- sagas + tracing: OpenTelemetry's cost, measured by ``bench_tracing_overhead`` (see there),
  on the no-op sagas and on sagas whose steps each call a (mock, instant) vendor API, with
  every trace sampled and with one in ten. Instant steps are the worst case: a real vendor
  call waits tens of milliseconds, over which the same CPU cost is spread.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from pydantic import BaseModel

from q2c.canonical.events import CloudEvent, OpportunityClosedWon, new_event
from q2c.config import TracingConfig
from q2c.connectors.http import RestClient
from q2c.errors import FatalError
from q2c.observability import configure_tracing, paused_tracing, shutdown_tracing
from q2c.runtime.engine import SagaEngine
from q2c.runtime.flow import Flow, FlowKey, Step, StepContext
from q2c.runtime.inbox import Inbox, Routing
from q2c.store.db import create_store_engine, upgrade

__all__ = [
    "BenchResult",
    "bench_tracing_overhead",
    "make_events",
    "noop_flow",
    "run_benchmarks",
    "vendor_flow",
]


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


def bench_sagas(url: str, count: int) -> BenchResult:
    db = create_store_engine(url)
    upgrade(db)
    flow = noop_flow()
    inbox = Inbox(db, Routing({flow.name: flow}, lambda f, p: "live"), now=_utcnow)
    inbox.accept([e for i, e in enumerate(make_events(count, duplicate_every=count + 1))])
    engine = SagaEngine(
        db, {flow.name: flow}, services=lambda mode: None, worker_id="bench", now=_utcnow
    )
    latencies: list[float] = []
    started = time.perf_counter()
    while True:
        claimed = engine.claim(100)
        if not claimed:
            break
        for transaction_id in claimed:
            t0 = time.perf_counter()
            engine.run(transaction_id)
            latencies.append((time.perf_counter() - t0) * 1000)
    seconds = time.perf_counter() - started
    db.dispose()
    done = len(latencies)
    return BenchResult(
        "sagas: 6 journaled steps each",
        done,
        seconds,
        done / seconds,
        p50_ms=statistics.median(latencies),
        p95_ms=statistics.quantiles(latencies, n=20)[18],
    )


class _CountingExporter(SpanExporter):
    """Counts spans and drops them: the whole export path except the network."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


def vendor_flow(steps: int = 6) -> Flow:
    """Like ``noop_flow``, but every step makes one vendor call through ``RestClient`` (to an
    in-process mock API), so the client span, headers and call metrics are in the bill."""
    api = RestClient(
        system="benchvendor",
        client=httpx.Client(
            transport=httpx.MockTransport(lambda request: httpx.Response(201, json={"id": 1})),
            base_url="https://vendor.bench",
        ),
        translate_error=lambda response: FatalError("vendor refused"),
    )

    def step(context: StepContext) -> dict[str, Any]:
        record = api.request("POST", "/records", json={"key": context.idempotency_key}).json()
        return {"id": record["id"]}

    flow = noop_flow(steps)
    return Flow(
        name="bench_vendor_saga",
        triggers=flow.triggers,
        key=flow.key,
        steps=tuple(Step(f"call_{i + 1}", step, system="erp") for i in range(steps)),
    )


def bench_tracing_overhead(
    url: str, count: int, *, vendor_calls: bool = False, sample_ratio: float = 1.0
) -> BenchResult:
    """Sagas with tracing on (``sample_ratio`` of the traces sampled, batch processor, an
    exporter that counts and drops spans) against the same sagas with it off, in one process
    and one store.

    Claimed batches of 20 alternate between traced and untraced, so that a shared machine's
    changing load hits both alike. The ratio is untraced over traced CPU time per saga
    (this process's, exporter thread included): on a busy machine wall time swings with
    other processes far more than the few percent measured. The events arrive in one batch,
    as from a poller, so each run starts (and samples) a trace of its own.
    """
    exporter = _CountingExporter()
    settings = TracingConfig(enabled=True, exporter="none", sample_ratio=sample_ratio)
    configure_tracing(settings, exporter=exporter)
    flow = vendor_flow() if vendor_calls else noop_flow()
    cpu = {True: 0.0, False: 0.0}
    done = {True: 0, False: 0}
    wall = 0.0
    latencies: list[float] = []
    db = create_store_engine(url)
    try:
        upgrade(db)
        inbox = Inbox(db, Routing({flow.name: flow}, lambda f, p: "live"), now=_utcnow)
        inbox.accept(make_events(count, duplicate_every=count + 1))
        engine = SagaEngine(
            db, {flow.name: flow}, services=lambda mode: None, worker_id="bench", now=_utcnow
        )
        traced = False
        while claimed := engine.claim(20):
            traced = not traced
            with nullcontext() if traced else paused_tracing():
                cpu_started, started = time.process_time(), time.perf_counter()
                for transaction_id in claimed:
                    began = time.perf_counter()
                    engine.run(transaction_id)
                    if traced:
                        latencies.append((time.perf_counter() - began) * 1000)
                cpu[traced] += time.process_time() - cpu_started
                done[traced] += len(claimed)
                if traced:
                    wall += time.perf_counter() - started
    finally:
        shutdown_tracing()  # flushes the batch processor
        db.dispose()
    expected = done[True] * (len(flow.steps) * (2 if vendor_calls else 1) + 1) * sample_ratio
    if exporter.exported < expected * 0.5:  # sampling is random: only catch "nothing traced"
        raise RuntimeError(f"tracing exported {exporter.exported} spans, expected {expected}")
    kind = "vendor call per step" if vendor_calls else "no-op steps"
    return BenchResult(
        f"sagas + tracing {sample_ratio:.0%}, {kind} (vs untraced, CPU)",
        done[True],
        wall,
        done[True] / wall,
        ratio_to_baseline=(cpu[False] / done[False]) / (cpu[True] / done[True]),
        p50_ms=statistics.median(latencies),
        p95_ms=statistics.quantiles(latencies, n=20)[18],
        cpu_seconds=cpu[True],
    )


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
        for n, (vendor_calls, ratio) in enumerate(((False, 1.0), (True, 1.0), (True, 0.1))):
            progress(f"sagas + tracing {ratio:.0%} sampled (sqlite)")
            traced = bench_tracing_overhead(
                f"sqlite:///{root / f'tracing-{n}.db'}",
                sagas,
                vendor_calls=vendor_calls,
                sample_ratio=ratio,
            )
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
