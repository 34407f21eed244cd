"""Prometheus metrics move as flows run: steps, transactions, parked exceptions, last success,
vendor calls."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import generate_latest

from q2c.connectors.http import RestClient
from q2c.errors import Q2CError, RetriableError
from q2c.flows.opportunity_to_project import NAME as FLOW
from q2c.runtime.metrics import REGISTRY
from tests.flows.helpers import MAPPINGS, World, proposal


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_completed_run_counts_each_step_the_transaction_and_its_latency(db, clock):
    world = World(db, clock)
    steps = [(step.name, step.system or "q2c") for step in world.flow.steps]
    before_steps = {
        name: _value("q2c_step_outcomes_total", flow=FLOW, step=name, system=system,
                     outcome="done")
        for name, system in steps
    }
    before_durations = _value("q2c_step_seconds_count", flow=FLOW, step="create_project",
                              outcome="done")
    before_completed = _value("q2c_transactions_total", flow=FLOW, outcome="completed")
    before_latency = (_value("q2c_transaction_latency_seconds_count", flow=FLOW),
                      _value("q2c_transaction_latency_seconds_sum", flow=FLOW))

    world.submit(proposal("006M"))
    clock.advance(42)  # the worker picks it up 42 s after the inbox accepted it
    [outcome] = world.engine.run_due()

    assert outcome.status == "completed"
    for name, system in steps:
        after = _value("q2c_step_outcomes_total", flow=FLOW, step=name, system=system,
                       outcome="done")
        assert after == before_steps[name] + 1, name
    assert _value("q2c_step_seconds_count", flow=FLOW, step="create_project",
                  outcome="done") == before_durations + 1
    assert _value("q2c_transactions_total", flow=FLOW, outcome="completed") == (
        before_completed + 1)
    count, total = (_value("q2c_transaction_latency_seconds_count", flow=FLOW),
                    _value("q2c_transaction_latency_seconds_sum", flow=FLOW))
    assert (count - before_latency[0], total - before_latency[1]) == (1, pytest.approx(42))
    assert _value("q2c_flow_last_success_timestamp_seconds", flow=FLOW) == (
        clock().timestamp())


def test_a_parked_run_counts_the_exception_by_flow_step_and_kind(db, clock):
    unmapped = {**MAPPINGS, "department": {}}
    world = World(db, clock, mappings=unmapped)
    labels = {"flow": FLOW, "step": "enrich", "kind": "business_fix"}
    before_parked = _value("q2c_exceptions_parked_total", **labels)
    before_outcomes = _value("q2c_step_outcomes_total", flow=FLOW, step="enrich", system="erp",
                             outcome="business_fix")
    last_success = _value("q2c_flow_last_success_timestamp_seconds", flow=FLOW)

    world.submit(proposal("006N"))
    clock.advance(5)
    [outcome] = world.engine.run_due()

    assert (outcome.status, outcome.step) == ("parked", "enrich")
    assert _value("q2c_exceptions_parked_total", **labels) == before_parked + 1
    assert _value("q2c_step_outcomes_total", flow=FLOW, step="enrich", system="erp",
                  outcome="business_fix") == before_outcomes + 1
    assert _value("q2c_flow_last_success_timestamp_seconds", flow=FLOW) == last_success


def test_a_retry_is_counted_as_retry_wait_with_the_step_outcome_retriable(db, clock):
    world = World(db, clock)

    def flaky(operation: str) -> None:
        if operation == "upsert_project":
            world.erp.fault = None
            raise RetriableError("NetSuite had a server error (503)", system="netsuite")

    world.erp.fault = flaky
    before_wait = _value("q2c_transactions_total", flow=FLOW, outcome="retry_wait")
    before_step = _value("q2c_step_outcomes_total", flow=FLOW, step="create_project",
                         system="erp", outcome="retriable")
    world.submit(proposal("006R"))
    [outcome] = world.engine.run_due()
    assert outcome.status == "retry_wait"
    assert _value("q2c_transactions_total", flow=FLOW, outcome="retry_wait") == before_wait + 1
    assert _value("q2c_step_outcomes_total", flow=FLOW, step="create_project", system="erp",
                  outcome="retriable") == before_step + 1


def _vendor(handler: httpx.MockTransport) -> RestClient:
    return RestClient(
        system="metricsvendor",
        client=httpx.Client(transport=handler, base_url="https://vendor.test"),
        translate_error=lambda response: Q2CError("refused"),
    )


def test_vendor_calls_are_counted_and_timed_by_system_method_and_status():
    replies = iter([httpx.Response(201, json={"id": 1}), httpx.Response(503)])

    def answer(request: httpx.Request) -> httpx.Response:
        reply = next(replies, None)
        if reply is None:
            raise httpx.ConnectTimeout("too slow", request=request)
        return reply

    client = _vendor(httpx.MockTransport(answer))

    def calls(method: str, status: str) -> tuple[float, float]:
        labels = {"system": "metricsvendor", "method": method, "status": status}
        return (_value("q2c_vendor_calls_total", **labels),
                _value("q2c_vendor_call_seconds_count", **labels))

    before = {status: calls("POST", status) for status in ("201", "503", "timeout")}
    client.request("POST", "/things", json={"a": 1})
    with pytest.raises(RetriableError):
        client.request("POST", "/things", json={"a": 2})
    with pytest.raises(RetriableError):
        client.request("POST", "/things", json={"a": 3})
    for status, (count, timed) in before.items():
        assert calls("POST", status) == (count + 1, timed + 1), status
    assert calls("GET", "201") == (0, 0)


def test_the_exposition_names_every_metric_the_console_charts():
    text = generate_latest(REGISTRY).decode()
    for name in (
        "q2c_step_seconds",
        "q2c_step_outcomes_total",
        "q2c_transactions_total",
        "q2c_transaction_latency_seconds",
        "q2c_exceptions_parked_total",
        "q2c_flow_last_success_timestamp_seconds",
        "q2c_vendor_calls_total",
        "q2c_vendor_call_seconds",
    ):
        assert f"# TYPE {name} " in text, name
