"""Prometheus metrics of the hub (one registry, so tests can read it without globals leaking).

What the console charts and what operators alert on:

- ``q2c_step_seconds`` / ``q2c_step_outcomes_total``: every step run, by flow, step, the
  system it talks to and its outcome (``done`` or the error kind);
- ``q2c_transactions_total`` and ``q2c_transaction_latency_seconds``: runs ending completed,
  waiting for a retry or parked, and the time from acceptance to completion;
- ``q2c_exceptions_parked_total``: what lands in the exception queue, by flow, step and kind;
- ``q2c_flow_last_success_timestamp_seconds``: "time since the last success" per flow, the
  alert that fires when every panel stays green but nothing moves;
- ``q2c_vendor_calls_total`` / ``q2c_vendor_call_seconds``: every outbound HTTP call by system,
  method and status (an HTTP status code, ``timeout`` or ``unreachable``).
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = [
    "EVENTS_INGESTED",
    "EXCEPTIONS_PARKED",
    "FLOW_LAST_SUCCESS",
    "REGISTRY",
    "STEP_OUTCOMES",
    "STEP_SECONDS",
    "TRANSACTIONS_FINISHED",
    "TRANSACTION_LATENCY",
    "VENDOR_CALLS",
    "VENDOR_CALL_SECONDS",
    "observe_step",
    "observe_transaction",
    "observe_vendor_call",
]

REGISTRY = CollectorRegistry(auto_describe=True)

# Vendor calls and steps take milliseconds to tens of seconds (timeouts, slow ERPs).
_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Acceptance to completion spans retries with backoff: seconds to a day.
_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14_400, 86_400)

EVENTS_INGESTED = Counter(
    "q2c_events_ingested_total",
    "Inbound events by type and inbox outcome",
    ["type", "status"],
    registry=REGISTRY,
)

STEP_SECONDS = Histogram(
    "q2c_step_seconds",
    "Duration of flow steps by flow, step and outcome",
    ["flow", "step", "outcome"],
    buckets=_CALL_BUCKETS,
    registry=REGISTRY,
)

STEP_OUTCOMES = Counter(
    "q2c_step_outcomes_total",
    "Step runs by flow, step, the system the step talks to, and outcome (done or error kind)",
    ["flow", "step", "system", "outcome"],
    registry=REGISTRY,
)

TRANSACTIONS_FINISHED = Counter(
    "q2c_transactions_total",
    "Business transactions that reached an end state or a retry, by flow and outcome",
    ["flow", "outcome"],
    registry=REGISTRY,
)

TRANSACTION_LATENCY = Histogram(
    "q2c_transaction_latency_seconds",
    "Time from the inbox accepting a transaction to its completion, by flow",
    ["flow"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)

EXCEPTIONS_PARKED = Counter(
    "q2c_exceptions_parked_total",
    "Transactions parked in the exception queue, by flow, step and error kind",
    ["flow", "step", "kind"],
    registry=REGISTRY,
)

FLOW_LAST_SUCCESS = Gauge(
    "q2c_flow_last_success_timestamp_seconds",
    "Unix time at which a transaction of the flow last completed",
    ["flow"],
    registry=REGISTRY,
)

VENDOR_CALLS = Counter(
    "q2c_vendor_calls_total",
    "Outbound vendor API calls by system, HTTP method and status (code, timeout, unreachable)",
    ["system", "method", "status"],
    registry=REGISTRY,
)

VENDOR_CALL_SECONDS = Histogram(
    "q2c_vendor_call_seconds",
    "Duration of outbound vendor API calls by system, HTTP method and status",
    ["system", "method", "status"],
    buckets=_CALL_BUCKETS,
    registry=REGISTRY,
)


def observe_step(flow: str, step: str, system: str | None, outcome: str, seconds: float) -> None:
    STEP_SECONDS.labels(flow=flow, step=step, outcome=outcome).observe(seconds)
    STEP_OUTCOMES.labels(flow=flow, step=step, system=system or "q2c", outcome=outcome).inc()


def observe_transaction(
    flow: str,
    outcome: str,
    *,
    at: datetime,
    accepted_at: datetime | None = None,
    step: str | None = None,
    kind: str | None = None,
) -> None:
    """A run ended ``completed``, ``retry_wait`` or ``parked`` at ``at`` (the engine's clock)."""
    TRANSACTIONS_FINISHED.labels(flow=flow, outcome=outcome).inc()
    if outcome == "completed":
        FLOW_LAST_SUCCESS.labels(flow=flow).set(at.timestamp())
        if accepted_at is not None:
            if accepted_at.tzinfo is None and at.tzinfo is not None:  # SQLite drops the zone
                accepted_at = accepted_at.replace(tzinfo=at.tzinfo)
            elapsed = (at - accepted_at).total_seconds()
            TRANSACTION_LATENCY.labels(flow=flow).observe(max(elapsed, 0.0))
    elif outcome == "parked":
        EXCEPTIONS_PARKED.labels(flow=flow, step=step or "", kind=kind or "unknown").inc()


def observe_vendor_call(system: str, method: str, status: str, seconds: float) -> None:
    VENDOR_CALLS.labels(system=system, method=method, status=status).inc()
    VENDOR_CALL_SECONDS.labels(system=system, method=method, status=status).observe(seconds)
