"""Prometheus metrics of the hub (one registry, so tests can read it without globals leaking)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["EVENTS_INGESTED", "REGISTRY", "STEP_SECONDS", "TRANSACTIONS_FINISHED"]

REGISTRY = CollectorRegistry(auto_describe=True)

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
    registry=REGISTRY,
)

TRANSACTIONS_FINISHED = Counter(
    "q2c_transactions_total",
    "Business transactions that reached an end state or a retry, by flow and outcome",
    ["flow", "outcome"],
    registry=REGISTRY,
)
