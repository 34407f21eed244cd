"""Turn pydantic validation errors into business-readable messages that name the field."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError as PydanticValidationError

__all__ = ["describe_validation_error", "field_path"]


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
