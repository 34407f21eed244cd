"""OpenTelemetry traces across inbound event -> saga steps -> vendor calls, on a bootstrapped
hub talking to the bundled Salesforce and NetSuite emulators over HTTP."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
import structlog
import yaml
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from q2c.bootstrap import Hub, bootstrap
from q2c.canonical.events import CloudEvent, new_event
from q2c.config import DEMO_CONFIG_YAML, TracingConfig, default_demo_config, parse_config
from q2c.connectors.http import RestClient
from q2c.connectors.memory import InMemoryCrm, InMemoryErp
from q2c.connectors.netsuite.sandbox import NetSuiteSandbox
from q2c.connectors.registry import Connections, connect_systems
from q2c.connectors.salesforce.emulator import SalesforceSandbox
from q2c.connectors.sandbox import ASGIApp, Receive, Scope, Send
from q2c.demo_opportunities import ITEMS, UNMAPPED_DEPARTMENT, seed_deals
from q2c.errors import ConfigError, Q2CError, RetriableError
from q2c.observability import (
    configure_logging,
    configure_tracing,
    shutdown_tracing,
    tracing_enabled,
)
from q2c.runtime.context import bind_correlation
from q2c.store.schema import transactions
from tests.flows.helpers import World, approved_event, proposal

ORIGIN_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
ORIGIN_SPAN = "00f067aa0ba902b7"
ORIGIN = f"00-{ORIGIN_TRACE}-{ORIGIN_SPAN}-01"
FLOW = "opportunity_to_project"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    configure_tracing(TracingConfig(enabled=True, exporter="none"), exporter=exporter, batch=False)
    yield exporter
    shutdown_tracing()


class HeaderLog:
    """ASGI middleware in front of an emulator: the headers of every request it served."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests: list[tuple[str, dict[str, str]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            self.requests.append((scope["path"], headers))
        await self.app(scope, receive, send)


class SandboxWorld:
    """A hub bootstrapped on Salesforce and NetSuite emulators, one closed-won deal seeded."""

    def __init__(self, db: sa.Engine, *, unmapped: bool = False) -> None:
        self.salesforce, self.netsuite = SalesforceSandbox(), NetSuiteSandbox()
        reference = self.netsuite.seed_reference_data(
            subsidiaries={"US01": "Acme Consulting Inc.", "UK01": "Acme Consulting Ltd"},
            departments=["Consulting-US", "Consulting-UK", UNMAPPED_DEPARTMENT],
            currencies=["USD", "GBP"],
            items=list(ITEMS),
        )
        [self.deal] = seed_deals(
            self.salesforce, random.Random(3), 1, unmapped_at=0 if unmapped else None
        )
        self.netsuite_log = HeaderLog(self.netsuite.app)
        self.netsuite.app = self.netsuite_log
        self.salesforce_log = HeaderLog(self.salesforce.app)
        self.salesforce.app = self.salesforce_log
        config = parse_config(
            {
                "version": 1,
                "legal_entities": [
                    {"code": "US01", "name": "Acme Inc.", "country": "US",
                     "base_currency": "USD"},
                    {"code": "UK01", "name": "Acme Ltd", "country": "GB",
                     "base_currency": "GBP"},
                ],
                "systems": {
                    "salesforce": {"vendor": "salesforce", "roles": ["crm", "cpq"],
                                   "sandbox": True},
                    "netsuite": {"vendor": "netsuite", "roles": ["erp"], "sandbox": True,
                                 "account_id": self.netsuite.account_id},
                },
                "ownership": {"customer": {"create": ["netsuite"]},
                              "project": {"create": ["netsuite"]},
                              "proposal": {"create": ["salesforce"]}},
                "mappings": {
                    "subsidiary": {c: {"netsuite": i}
                                   for c, i in reference["subsidiaries"].items()},
                    "department": {
                        "Consulting-US": {"US01": {"netsuite":
                                                   reference["departments"]["Consulting-US"]}},
                        "Consulting-UK": {"UK01": {"netsuite":
                                                   reference["departments"]["Consulting-UK"]}},
                    },
                    "item": {c: {"*": {"netsuite": i}} for c, i in reference["items"].items()},
                },
                "flows": {FLOW: {"enabled_for": ["US01", "UK01"]}},
            },
            env={},
        )
        connections = connect_systems(
            config, sandboxes={"salesforce": self.salesforce, "netsuite": self.netsuite}
        )
        self.hub: Hub = bootstrap(config, db=db, connections=connections, worker_id="trace")

    def closed_won(self, **extensions: str) -> CloudEvent:
        event = new_event(
            "opportunity.closed_won",
            {"opportunity_id": self.deal["opportunity_id"], "legal_entity": self.deal["entity"]},
            source="urn:test:salesforce:webhook",
            subject=self.deal["opportunity_id"],
        )
        return CloudEvent.model_validate({**event.model_dump(mode="json"), **extensions})

    def close(self) -> None:
        self.hub.close()


@pytest.fixture
def world(db: sa.Engine) -> Iterator[SandboxWorld]:
    built = SandboxWorld(db)
    yield built
    built.close()


def _by_name(finished: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [s for s in finished if s.name.startswith(prefix)]


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def test_trace_runs_from_the_inbound_event_through_steps_to_vendor_calls(world, spans):
    event = world.closed_won(traceparent=ORIGIN, correlationid="corr-trace-1")
    [receipt] = world.hub.inbox.accept([event])
    [outcome] = world.hub.engine.run_due()
    assert outcome.status == "completed"
    finished = spans.get_finished_spans()

    [ingest] = _by_name(finished, "q2c.inbox accept")
    [run] = _by_name(finished, "q2c.transaction ")
    steps = _by_name(finished, "q2c.step ")
    calls = [s for s in finished if s.kind is SpanKind.CLIENT]
    assert {_hex(s.context.trace_id, 32) for s in finished} == {ORIGIN_TRACE}
    # the event's own span is the parent of both the accept and the run
    assert ingest.parent is not None and _hex(ingest.parent.span_id, 16) == ORIGIN_SPAN
    assert run.parent is not None and _hex(run.parent.span_id, 16) == ORIGIN_SPAN
    assert run.attributes["q2c.flow"] == FLOW
    assert run.attributes["q2c.transaction_id"] == receipt.transaction_id
    assert run.attributes["q2c.correlation_id"] == "corr-trace-1"
    assert run.attributes["q2c.legal_entity"] == world.deal["entity"]
    assert run.attributes["q2c.outcome"] == "completed"
    assert ingest.attributes["q2c.events.accepted"] == 1

    flow = world.hub.flows[FLOW]
    assert [s.attributes["q2c.step"] for s in steps] == [step.name for step in flow.steps]
    assert all(s.parent is not None and s.parent.span_id == run.context.span_id for s in steps)
    assert all(s.attributes["q2c.outcome"] == "done" for s in steps)
    assert all(s.attributes["q2c.correlation_id"] == "corr-trace-1" for s in steps)

    step_ids = {s.context.span_id: s.attributes["q2c.step"] for s in steps}
    assert calls and all(c.parent is not None and c.parent.span_id in step_ids for c in calls)
    assert {c.attributes["q2c.system"] for c in calls} == {"salesforce", "netsuite"}
    creating = [c for c in calls if step_ids[c.parent.span_id] == "create_project"]
    assert creating and all(c.attributes["q2c.system"] == "netsuite" for c in creating)
    assert all(isinstance(c.attributes["http.response.status_code"], int) for c in calls)
    assert all("?" not in str(c.attributes["url.full"]) for c in calls)

    # the emulators saw W3C traceparent naming the client span, and the correlation id
    call_ids = {_hex(c.context.span_id, 16) for c in calls}
    served = [h for path, h in world.netsuite_log.requests if "/record/" in path]
    assert served
    for headers in served:
        version, trace_id, parent_id, flags = headers["traceparent"].split("-")
        assert (version, trace_id, flags) == ("00", ORIGIN_TRACE, "01")
        assert parent_id in call_ids
        assert headers["x-correlation-id"] == "corr-trace-1"
    assert any("traceparent" in h for _, h in world.salesforce_log.requests)


def test_event_without_traceparent_is_stored_with_the_accept_span_so_the_run_joins_it(
    world, spans
):
    [receipt] = world.hub.inbox.accept([world.closed_won()])
    with world.hub.db.connect() as connection:
        stored = orjson.loads(connection.execute(
            sa.select(transactions.c.input).where(transactions.c.id == receipt.transaction_id)
        ).scalar_one())
    [ingest] = _by_name(spans.get_finished_spans(), "q2c.inbox accept")
    assert ingest.parent is None
    version, trace_id, parent_id, flags = stored["traceparent"].split("-")
    assert (version, trace_id, parent_id) == (
        "00", _hex(ingest.context.trace_id, 32), _hex(ingest.context.span_id, 16))
    assert int(flags, 16) & 1  # sampled
    world.hub.engine.run_due()
    [run] = _by_name(spans.get_finished_spans(), "q2c.transaction ")
    assert run.parent is not None and run.parent.span_id == ingest.context.span_id
    assert run.context.trace_id == ingest.context.trace_id


def test_an_unsampled_origin_records_no_spans_but_passes_its_decision_on(world, spans):
    unsampled = f"00-{ORIGIN_TRACE}-{ORIGIN_SPAN}-00"
    world.hub.inbox.accept([world.closed_won(traceparent=unsampled, correlationid="corr-u")])
    [outcome] = world.hub.engine.run_due()
    assert outcome.status == "completed"
    assert spans.get_finished_spans() == ()
    served = [h for path, h in world.netsuite_log.requests if "/record/" in path]
    assert served
    for headers in served:
        version, trace_id, _parent, flags = headers["traceparent"].split("-")
        assert (version, trace_id, int(flags, 16) & 1) == ("00", ORIGIN_TRACE, 0)
        assert headers["x-correlation-id"] == "corr-u"


def test_runs_of_a_batch_without_trace_context_each_start_their_own_trace(db, clock, spans):
    world = World(db, clock)
    first, second = proposal("006T1"), proposal("006T2")
    world.crm.proposals.update({p.opportunity_id: p for p in (first, second)})
    receipts = world.inbox.accept([approved_event(first), approved_event(second)])
    with db.connect() as connection:
        stored = [orjson.loads(connection.execute(
            sa.select(transactions.c.input).where(transactions.c.id == r.transaction_id)
        ).scalar_one()) for r in receipts]
    assert not any("traceparent" in event for event in stored)
    assert [o.status for o in world.engine.run_due()] == ["completed", "completed"]
    finished = spans.get_finished_spans()
    [ingest] = _by_name(finished, "q2c.inbox accept")
    runs = _by_name(finished, "q2c.transaction ")
    assert ingest.attributes["q2c.events.accepted"] == 2
    assert [run.parent for run in runs] == [None, None]
    assert len({run.context.trace_id for run in runs} | {ingest.context.trace_id}) == 3


def test_parked_run_marks_the_failing_step_and_the_run_as_errors(db, spans):
    world = SandboxWorld(db, unmapped=True)  # booked to a department with no mapping
    try:
        world.hub.inbox.accept([world.closed_won(traceparent=ORIGIN)])
        [outcome] = world.hub.engine.run_due()
    finally:
        world.close()
    assert outcome.status == "parked"
    finished = spans.get_finished_spans()
    [run] = _by_name(finished, "q2c.transaction ")
    steps = _by_name(finished, "q2c.step ")
    failed = [s for s in steps if s.status.status_code is StatusCode.ERROR]
    assert [s.attributes["q2c.step"] for s in failed] == [outcome.step]
    assert failed[0].attributes["q2c.outcome"] == "business_fix"
    assert any(e.name == "exception" for e in failed[0].events)
    assert run.attributes["q2c.outcome"] == "parked"
    assert run.status.status_code is StatusCode.ERROR
    assert outcome.error is not None and run.status.description == outcome.error.message


def test_every_log_line_inside_a_run_carries_trace_span_and_correlation_ids(world, spans):
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    try:
        world.hub.inbox.accept([world.closed_won(traceparent=ORIGIN, correlationid="corr-log")])
        world.hub.engine.run_due()
    finally:
        structlog.reset_defaults()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    run_lines = [line for line in lines if line.get("transaction_id")]
    assert {line["event"] for line in run_lines} >= {"step done", "transaction completed"}
    span_ids = {_hex(s.context.span_id, 16) for s in spans.get_finished_spans()}
    for line in run_lines:
        assert line["correlation_id"] == "corr-log"
        assert line["trace_id"] == ORIGIN_TRACE
        assert line["span_id"] in span_ids


def test_disabled_tracing_records_nothing_and_sends_no_traceparent(world):
    shutdown_tracing()
    assert not tracing_enabled()
    event = world.closed_won(correlationid="corr-off")
    [receipt] = world.hub.inbox.accept([event])
    [outcome] = world.hub.engine.run_due()
    assert outcome.status == "completed"
    with world.hub.db.connect() as connection:
        stored = connection.execute(
            sa.select(transactions.c.input).where(transactions.c.id == receipt.transaction_id)
        ).scalar_one()
    assert stored == event.to_json().decode()
    served = [h for _, h in world.netsuite_log.requests]
    assert served and not any("traceparent" in h for h in served)
    assert all(h["x-correlation-id"] == "corr-off" for p, h in world.netsuite_log.requests
               if "/record/" in p)


def _client(handler: Any) -> RestClient:
    def translate(response: httpx.Response) -> Q2CError:
        return Q2CError("vendor refused", system="vendorx")

    return RestClient(
        system="vendorx",
        client=httpx.Client(transport=httpx.MockTransport(handler), base_url="https://v.test"),
        translate_error=translate,
    )


def test_failed_vendor_call_span_records_the_error_and_status(spans):
    client = _client(lambda request: httpx.Response(503, text="down"))
    with bind_correlation("corr-503"), pytest.raises(RetriableError):
        client.request("POST", "/things?name=secret-customer", json={"a": 1})
    [call] = spans.get_finished_spans()
    assert call.kind is SpanKind.CLIENT
    assert call.name == "POST vendorx"
    assert call.attributes["http.response.status_code"] == 503
    assert call.attributes["url.full"] == "https://v.test/things"
    assert call.attributes["q2c.correlation_id"] == "corr-503"
    assert call.attributes["error.type"] == "RetriableError"
    assert call.status.status_code is StatusCode.ERROR


def test_tracing_section_of_q2c_yaml_is_validated_and_applied():
    base = yaml.safe_load(DEMO_CONFIG_YAML)
    config = parse_config(
        {**base, "observability": {"tracing": {"enabled": True, "exporter": "otlp",
                                               "endpoint": "http://collector:4318/v1/traces",
                                               "sample_ratio": 0.25}}},
        env={},
    )
    settings = config.observability.tracing
    provider = configure_tracing(settings)
    try:
        assert provider is not None and tracing_enabled()
        assert "0.25" in provider.sampler.get_description()
    finally:
        shutdown_tracing()
    assert configure_tracing(default_demo_config().observability.tracing) is None
    assert not tracing_enabled()
    with pytest.raises(ConfigError, match=r"observability\.tracing\.sample_ratio"):
        parse_config({**base, "observability": {"tracing": {"sample_ratio": 2}}}, env={})


def test_tracing_benchmark_runs_half_its_sagas_traced_and_switches_tracing_off(tmp_path):
    from q2c.bench import bench_tracing_overhead
    from q2c.runtime.metrics import REGISTRY

    labels = {"system": "benchvendor", "method": "POST", "status": "201"}
    calls_before = REGISTRY.get_sample_value("q2c_vendor_calls_total", labels) or 0.0
    result = bench_tracing_overhead(f"sqlite:///{tmp_path / 'b.db'}", 80, vendor_calls=True)
    assert result.count == 40  # claimed batches of 20 alternate traced / untraced
    assert result.ratio_to_baseline is not None and result.ratio_to_baseline > 0
    assert result.cpu_seconds is not None and result.cpu_seconds > 0
    assert REGISTRY.get_sample_value("q2c_vendor_calls_total", labels) == calls_before + 80 * 6
    assert not tracing_enabled()


def test_an_event_posted_with_a_traceparent_header_continues_the_callers_trace(db, clock,
                                                                               spans):
    from fastapi.testclient import TestClient

    from q2c.api.app import create_app
    from tests.api.conftest import api_config, bearer

    connections = Connections()
    connections.add("salesforce", ["crm"], InMemoryCrm(system="salesforce"))
    connections.add("netsuite", ["erp"], InMemoryErp(system="netsuite"))
    hub = bootstrap(api_config(), db=db, clock=clock, connections=connections, worker_id="t")
    try:
        app = create_app(hub)
        event = new_event("opportunity.closed_won",
                          {"opportunity_id": "006TRACE", "legal_entity": "US01"},
                          source="urn:test:crm", event_id="evt-trace-1")
        with TestClient(app) as client:
            response = client.post(
                "/v1/events", content=event.to_json(),
                headers={**bearer(app, "admin"), "traceparent": ORIGIN,
                         "content-type": "application/cloudevents+json"})
        assert response.status_code == 202, response.text
        [ingest] = _by_name(spans.get_finished_spans(), "q2c.inbox accept")
        assert _hex(ingest.context.trace_id, 32) == ORIGIN_TRACE
        assert ingest.parent is not None and _hex(ingest.parent.span_id, 16) == ORIGIN_SPAN
    finally:
        hub.close()
