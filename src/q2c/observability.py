"""Structured JSON logs and OpenTelemetry traces.

Logs: structlog, one JSON object a line; inside a run every line carries the correlation id
(bound by ``bind_correlation``) and the ``trace_id``/``span_id`` of the active span.

Traces (``observability.tracing`` in q2c.yaml) follow one business transaction::

    q2c.inbox accept            the batch the inbox took in (child of the event's traceparent)
    q2c.transaction <flow>      one run of the transaction, resumed from the stored event's
      q2c.step <step>           traceparent (CloudEvents distributed-tracing extension)
        <METHOD> <system>       each vendor call; W3C traceparent and X-Correlation-ID go out

The inbox stores an event that arrives alone without ``traceparent`` with the accept span's,
so a run that starts minutes later on another worker still joins the trace; a run whose event
carries no trace context (one of a poller's batch) starts a trace of its own. Tracing is off by
default; then every helper here returns after one attribute check.

The tracer provider is owned by this module rather than set as OpenTelemetry's global one, so
``configure_tracing`` can be called again (tests, the benchmark) without the global's
set-once rule getting in the way.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

import httpx
import orjson
import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from q2c.canonical.events import CloudEvent
from q2c.config import TracingConfig
from q2c.errors import Q2CError
from q2c.runtime.context import current_correlation_id

__all__ = [
    "IngestTrace",
    "RunTrace",
    "VendorCallTrace",
    "add_trace_context",
    "configure_logging",
    "configure_tracing",
    "continued_trace",
    "event_trace_context",
    "ingest_span",
    "note_run_outcome",
    "paused_tracing",
    "run_span",
    "shutdown_tracing",
    "stored_event_json",
    "tracer",
    "tracing_enabled",
    "vendor_call_span",
]

_PROPAGATOR = TraceContextTextMapPropagator()
_MAX_LINKS = 32  # a 500-event batch links the first few origins, not all of them


# --- logs -------------------------------------------------------------------------------------


def add_trace_context(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the active span's ids, so a log line leads to its trace."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event_dict["trace_id"] = format(span_context.trace_id, "032x")
        event_dict["span_id"] = format(span_context.span_id, "016x")
    return event_dict


def configure_logging(
    level: str = "WARNING", *, json: bool = True, stream: TextIO | None = None
) -> None:
    """Configure structlog once per process; ``level`` filters before any formatting work."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_trace_context,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


# --- tracing setup ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Tracing:
    tracer: Tracer | None = None
    provider: TracerProvider | None = None


_STATE = _Tracing()


def configure_tracing(
    settings: TracingConfig,
    *,
    exporter: SpanExporter | None = None,
    batch: bool = True,
) -> TracerProvider | None:
    """(Re)configure this process's tracing from ``observability.tracing``.

    ``exporter`` replaces the configured one (tests and ``q2c bench`` pass an in-memory
    exporter); ``batch=False`` exports each span as it ends (tests read them at once).
    Returns the provider, or None when tracing is disabled.
    """
    shutdown_tracing()
    if not settings.enabled:
        return None
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=ParentBased(
            ALWAYS_ON if settings.sample_ratio >= 1 else TraceIdRatioBased(settings.sample_ratio)
        ),
    )
    chosen = exporter if exporter is not None else _configured_exporter(settings)
    if chosen is not None:
        processor = BatchSpanProcessor(chosen) if batch else SimpleSpanProcessor(chosen)
        provider.add_span_processor(processor)
    _STATE.provider = provider
    _STATE.tracer = provider.get_tracer("q2c")
    return provider


def _configured_exporter(settings: TracingConfig) -> SpanExporter | None:
    if settings.exporter == "console":
        return ConsoleSpanExporter()
    if settings.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        if settings.endpoint:
            return OTLPSpanExporter(endpoint=settings.endpoint)
        return OTLPSpanExporter()
    return None  # "none": spans still give logs their trace ids and go out as traceparent


def shutdown_tracing() -> None:
    """Flush pending spans and switch tracing off."""
    provider, _STATE.provider, _STATE.tracer = _STATE.provider, None, None
    if provider is not None:
        provider.shutdown()


def tracing_enabled() -> bool:
    return _STATE.tracer is not None


@contextmanager
def paused_tracing() -> Iterator[None]:
    """No spans inside the block (a benchmark's control group); the provider keeps running."""
    paused, _STATE.tracer = _STATE.tracer, None
    try:
        yield
    finally:
        _STATE.tracer = paused


def tracer() -> Tracer | None:
    """The hub's tracer for other entry points (the API), or None when tracing is off."""
    return _STATE.tracer


def event_trace_context(event: CloudEvent) -> trace.SpanContext | None:
    """The span context an event carries in its ``traceparent`` extension attribute."""
    extra = event.model_extra
    if not extra or "traceparent" not in extra:
        return None
    carrier = {"traceparent": str(extra["traceparent"])}
    if "tracestate" in extra:
        carrier["tracestate"] = str(extra["tracestate"])
    span_context = trace.get_current_span(_PROPAGATOR.extract(carrier)).get_span_context()
    return span_context if span_context.is_valid else None


# --- inbox ------------------------------------------------------------------------------------


class _ReceiptLike(Protocol):
    @property
    def status(self) -> str: ...

    @property
    def transaction_id(self) -> str | None: ...


class IngestTrace:
    """The span of one inbox accept (a no-op when tracing is off)."""

    __slots__ = ("span",)

    def __init__(self, span: Span | None) -> None:
        self.span = span

    def record(self, receipts: Sequence[_ReceiptLike]) -> None:
        if self.span is None:
            return
        counts: dict[str, int] = {}
        for receipt in receipts:
            counts[receipt.status] = counts.get(receipt.status, 0) + 1
        for status, count in counts.items():
            self.span.set_attribute(f"q2c.events.{status}", count)
        if len(receipts) == 1 and receipts[0].transaction_id:
            self.span.set_attribute("q2c.transaction_id", receipts[0].transaction_id)


_NO_INGEST = IngestTrace(None)


@contextmanager
def ingest_span(events: Sequence[CloudEvent]) -> Iterator[IngestTrace]:
    """Span of one inbox accept. With no active span, one origin shared by the whole batch
    becomes the parent; the origins of a mixed batch become links."""
    active_tracer = _STATE.tracer
    if active_tracer is None or not events:
        yield _NO_INGEST
        return
    origins: dict[tuple[int, int], trace.SpanContext] = {}
    for event in events:
        origin = event_trace_context(event)
        if origin is not None:
            origins.setdefault((origin.trace_id, origin.span_id), origin)
    parent: otel_context.Context | None = None
    links: list[Link] = []
    if len(origins) == 1 and not trace.get_current_span().get_span_context().is_valid:
        parent = trace.set_span_in_context(trace.NonRecordingSpan(next(iter(origins.values()))))
    else:
        links = [Link(origin) for origin in list(origins.values())[:_MAX_LINKS]]
    attributes: dict[str, str | int] = {"q2c.events": len(events)}
    if len(events) == 1:
        attributes["q2c.event_type"] = events[0].type
        if events[0].correlationid:
            attributes["q2c.correlation_id"] = events[0].correlationid
    with active_tracer.start_as_current_span(
        "q2c.inbox accept",
        context=parent,
        kind=SpanKind.CONSUMER,
        links=links,
        attributes=attributes,
    ) as span:
        yield IngestTrace(span)


@contextmanager
def continued_trace(headers: Mapping[str, str]) -> Iterator[None]:
    """Continue the caller's trace (W3C ``traceparent`` / ``tracestate`` request headers) for
    what runs inside: an ingest over HTTP becomes a child of the sender's span."""
    carrier = {k: headers[k] for k in ("traceparent", "tracestate") if k in headers}
    if _STATE.tracer is None or "traceparent" not in carrier:
        yield
        return
    token = otel_context.attach(_PROPAGATOR.extract(carrier))
    try:
        yield
    finally:
        otel_context.detach(token)


def stored_event_json(event: CloudEvent, *, alone: bool) -> str:
    """The event as the store keeps it. With tracing on, an event that came ``alone`` (a
    webhook, one API event, a flow chaining the next) without ``traceparent`` gets the
    current span's, so the run that picks it up later continues this trace. Events of a
    batch (a poller's page) do not: one trace per transaction, each sampled on its own,
    beats one trace holding hundreds of runs."""
    extra = event.model_extra
    if _STATE.tracer is None or not alone or (extra and "traceparent" in extra):
        return event.to_json().decode()
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    if not carrier:
        return event.to_json().decode()
    payload = event.model_dump(mode="json", exclude_none=True)
    payload.update(carrier)
    return orjson.dumps(payload).decode()


# --- transaction runs and steps ---------------------------------------------------------------


class RunTrace:
    """Spans of one run of a transaction: the run, and its steps one at a time."""

    __slots__ = ("_step", "_step_token", "outcome", "recording", "span")

    def __init__(self, span: Span | None) -> None:
        self.span = span
        # An unsampled run gets no step spans: nothing would record them, and the run's
        # context alone still gives logs their ids and vendors a traceparent.
        self.recording = span is not None and span.is_recording()
        self.outcome: str | None = None
        self._step: Span | None = None
        self._step_token: Token[otel_context.Context] | None = None

    def start_step(self, flow: str, step: str, system: str | None, attempt: int) -> None:
        """Open the step's span and make it current (vendor calls and logs nest under it)."""
        active_tracer = _STATE.tracer
        if not self.recording or active_tracer is None:
            return
        self.end_step("abandoned")
        # Few attributes, and only telling ones: each costs the SDK a validation per span.
        attributes: dict[str, str | int] = {"q2c.flow": flow, "q2c.step": step}
        if attempt > 1:
            attributes["q2c.attempt"] = attempt
        if system:
            attributes["q2c.system"] = system
        correlation_id = current_correlation_id()
        if correlation_id:
            attributes["q2c.correlation_id"] = correlation_id
        self._step = active_tracer.start_span(f"q2c.step {step}", attributes=attributes)
        self._step_token = otel_context.attach(trace.set_span_in_context(self._step))

    def end_step(self, outcome: str, error: BaseException | None = None) -> None:
        step, token = self._step, self._step_token
        if step is None:
            return
        self._step = self._step_token = None
        step.set_attribute("q2c.outcome", outcome)
        if error is not None:
            _record_error(step, error)
        if token is not None:
            otel_context.detach(token)
        step.end()


_NO_RUN = RunTrace(None)
_CURRENT_RUN: ContextVar[RunTrace] = ContextVar("q2c_run_trace", default=_NO_RUN)


@contextmanager
def run_span(
    *,
    flow: str,
    transaction_id: str,
    correlation_id: str,
    event: CloudEvent,
    legal_entity: str | None,
    attempt: int,
    mode: str,
) -> Iterator[RunTrace]:
    """Span of one run, parented on the trace context the transaction's event carries."""
    active_tracer = _STATE.tracer
    if active_tracer is None:
        yield _NO_RUN
        return
    origin = event_trace_context(event)
    if origin is not None and not origin.trace_flags.sampled:
        span: Span = trace.NonRecordingSpan(origin)  # the origin chose not to be traced
    else:
        span = active_tracer.start_span(
            f"q2c.transaction {flow}",
            context=trace.set_span_in_context(trace.NonRecordingSpan(origin)) if origin else None,
            attributes=_run_attributes(
                flow, transaction_id, correlation_id, legal_entity, attempt, mode
            ),
        )
    run = RunTrace(span)
    token = otel_context.attach(trace.set_span_in_context(span))
    run_token = _CURRENT_RUN.set(run)
    try:
        yield run
    except BaseException as exc:
        run.end_step("error", exc)
        run.outcome = "error"
        _record_error(span, exc)
        raise
    finally:
        run.end_step("lost")  # the lease went to another worker mid-step
        span.set_attribute("q2c.outcome", run.outcome or "lost")
        _CURRENT_RUN.reset(run_token)
        otel_context.detach(token)
        span.end()


def _run_attributes(
    flow: str,
    transaction_id: str,
    correlation_id: str,
    legal_entity: str | None,
    attempt: int,
    mode: str,
) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        "q2c.flow": flow,
        "q2c.transaction_id": transaction_id,
        "q2c.correlation_id": correlation_id,
    }
    if attempt > 1:
        attributes["q2c.attempt"] = attempt
    if mode != "live":
        attributes["q2c.mode"] = mode
    if legal_entity:
        attributes["q2c.legal_entity"] = legal_entity
    return attributes


def note_run_outcome(outcome: str, error: Q2CError | None = None) -> None:
    """How the current run ended (completed, retry_wait, parked)."""
    run = _CURRENT_RUN.get()
    if run.span is None or not run.recording:
        return
    run.outcome = outcome
    if outcome == "parked" and error is not None:
        run.span.set_status(Status(StatusCode.ERROR, error.message))
        run.span.set_attribute("q2c.error.kind", error.kind)


def _record_error(span: Span, error: BaseException) -> None:
    if isinstance(error, Q2CError):
        span.set_attribute("q2c.error.kind", error.kind)
        if error.system:
            span.set_attribute("q2c.error.system", error.system)
        description = error.message
    else:
        description = f"{type(error).__name__}: {error}"
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, description))


# --- outbound vendor calls --------------------------------------------------------------------


class VendorCallTrace:
    """The span of one vendor call (a no-op when tracing is off)."""

    __slots__ = ("span",)

    def __init__(self, span: Span | None) -> None:
        self.span = span

    def response(self, status_code: int) -> None:
        if self.span is None:
            return
        self.span.set_attribute("http.response.status_code", status_code)
        if status_code >= 400:
            self.span.set_status(Status(StatusCode.ERROR, f"HTTP {status_code}"))


_NO_CALL = VendorCallTrace(None)


@contextmanager
def vendor_call_span(system: str, request: httpx.Request) -> Iterator[VendorCallTrace]:
    """Client span of one vendor call; writes W3C ``traceparent`` into the request's headers.

    The URL is recorded without its query string: SOQL and search parameters carry customer
    data that does not belong in a tracing backend.
    """
    active_tracer = _STATE.tracer
    if active_tracer is None:
        yield _NO_CALL
        return
    current = trace.get_current_span()
    if not current.is_recording() and current.get_span_context().is_valid:
        _PROPAGATOR.inject(request.headers)  # an unsampled run: pass its decision on, cheaply
        yield _NO_CALL
        return
    url = request.url
    attributes: dict[str, str | int] = {
        "q2c.system": system,
        "http.request.method": request.method,
        "url.full": f"{url.scheme}://{url.netloc.decode('ascii')}{url.path}",
        "server.address": url.host,
    }
    if url.port is not None:
        attributes["server.port"] = url.port
    correlation_id = current_correlation_id()
    if correlation_id:
        attributes["q2c.correlation_id"] = correlation_id
    span = active_tracer.start_span(
        f"{request.method} {system}", kind=SpanKind.CLIENT, attributes=attributes
    )
    context = trace.set_span_in_context(span)
    _PROPAGATOR.inject(request.headers, context=context)
    token = otel_context.attach(context)
    try:
        yield VendorCallTrace(span)
    except BaseException as exc:
        span.set_attribute("error.type", type(exc).__name__)
        _record_error(span, exc)
        raise
    finally:
        otel_context.detach(token)
        span.end()
