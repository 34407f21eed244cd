"""Validating inbound CloudEvents for every door into the hub (HTTP API, webhooks, NATS):
each item as an event with valid data, or errors that name the field in business words."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError as PydanticValidationError

from q2c.canonical.events import INBOUND_TYPES, CloudEvent, validate_data

__all__ = ["describe_validation_error", "field_path", "validate_events"]


def field_path(prefix: str, loc: tuple[Any, ...]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("function-plain", "function-after", "function-before"):
            continue
        else:
            path += f".{part}"
    return path


def describe_validation_error(
    exc: PydanticValidationError | ValueError, *, index: int, prefix: str
) -> list[dict[str, Any]]:
    if not isinstance(exc, PydanticValidationError):
        return [{"index": index, "field": prefix, "message": f"{prefix}: {exc}"}]
    described = []
    for error in exc.errors(include_url=False, include_input=False):
        path = field_path(prefix, tuple(error["loc"]))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is required"
        elif error["type"] == "extra_forbidden":
            message = "is not a known field"
        described.append(
            {"index": index, "field": path, "type": error["type"], "message": f"{path}: {message}"}
        )
    return described


def validate_events(items: list[Any]) -> tuple[list[CloudEvent], list[dict[str, Any]]]:
    """Each item as an inbound CloudEvent with valid data, or an error naming the field."""
    events: list[CloudEvent] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        prefix = f"events[{index}]" if len(items) > 1 else "event"
        if not isinstance(item, dict):
            errors.append(
                {"index": index, "field": prefix, "message": f"{prefix} must be a JSON object"}
            )
            continue
        try:
            event = CloudEvent.model_validate(item)
        except (PydanticValidationError, ValueError) as exc:
            errors.extend(describe_validation_error(exc, index=index, prefix=prefix))
            continue
        if event.type not in INBOUND_TYPES:
            errors.append(
                {
                    "index": index,
                    "field": f"{prefix}.type",
                    "message": f"{prefix}.type: unknown event type {event.type!r}; "
                    f"q2c accepts {', '.join(sorted(INBOUND_TYPES))}",
                }
            )
            continue
        try:
            validate_data(event)
        except (PydanticValidationError, ValueError) as exc:
            errors.extend(describe_validation_error(exc, index=index, prefix=f"{prefix}.data"))
            continue
        events.append(event)
    return events, errors
