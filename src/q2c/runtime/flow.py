"""How a flow is declared: named steps, read top to bottom, each with its retry policy.

A step function receives a ``StepContext`` and returns a ``StepResult`` (or a plain dict as
its output). Steps do the vendor I/O; what the hub itself must remember (xref links, outbound
events) is *returned*, and the engine writes it in the same database transaction that marks
the step done, so a crash can never leave half of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Connection

from q2c.canonical.events import CloudEvent
from q2c.runtime.retry import RetryPolicy

__all__ = [
    "Flow",
    "FlowKey",
    "HubWrite",
    "Mode",
    "Step",
    "StepContext",
    "StepResult",
    "XrefLink",
]

Mode = Literal["live", "shadow"]


@dataclass(frozen=True, slots=True)
class XrefLink:
    canonical_id: str
    object_type: str
    system: str
    external_id: str


HubWrite = Callable[[Connection], None]
"""A write to the hub's own ledgers (inclusion, ledger documents, master records), run by the
engine inside the commit that marks the step done — never half-applied."""


@dataclass(slots=True)
class StepResult:
    output: dict[str, Any] = field(default_factory=dict)
    events: list[CloudEvent] = field(default_factory=list)
    xrefs: list[XrefLink] = field(default_factory=list)
    writes: list[HubWrite] = field(default_factory=list)


@dataclass(slots=True)
class StepContext:
    transaction_id: str
    flow: str
    business_key: str
    version: int
    step: str
    attempt: int
    correlation_id: str
    mode: Mode
    event: CloudEvent
    data: BaseModel
    results: dict[str, dict[str, Any]]
    services: Any

    @property
    def idempotency_key(self) -> str:
        return step_key(self.flow, self.business_key, self.version, self.step)

    def output_of(self, step: str) -> dict[str, Any]:
        try:
            return self.results[step]
        except KeyError:
            raise RuntimeError(f"step {self.step!r} needs the output of {step!r}") from None


def step_key(flow: str, business_key: str, version: int, step: str) -> str:
    return f"{flow}:{business_key}:v{version}:{step}"


StepFunction = Callable[[StepContext], "StepResult | dict[str, Any] | None"]


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    run: StepFunction
    system: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True, slots=True)
class FlowKey:
    """What identifies one business transaction of a flow."""

    business_key: str
    version: int
    partition_key: str | None


@dataclass(frozen=True, slots=True)
class Flow:
    name: str
    triggers: tuple[str, ...]
    steps: tuple[Step, ...]
    key: Callable[[CloudEvent, BaseModel], FlowKey]

    def __post_init__(self) -> None:
        names = [s.name for s in self.steps]
        if len(names) != len(set(names)):
            raise ValueError(f"flow {self.name} has duplicate step names")

    def position(self, step: str) -> int:
        for index, candidate in enumerate(self.steps):
            if candidate.name == step:
                return index
        raise KeyError(step)
