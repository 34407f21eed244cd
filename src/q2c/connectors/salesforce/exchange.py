"""One REST call inside the emulator, independent of ASGI so composite can replay sub-requests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

__all__ = ["ApiRequest", "ApiResponse", "split_path"]


@dataclass(frozen=True)
class ApiRequest:
    method: str
    raw_path: str  # still percent-encoded, so an external id may contain '/'
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: Any = None
    user_id: str | None = None
    force_all_or_none: bool = False  # set inside a composite allOrNone request


@dataclass
class ApiResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def split_path(raw_path: str) -> list[str]:
    """Decoded path segments without empty ones (Salesforce ignores trailing slashes)."""
    return [unquote(part) for part in raw_path.split("/") if part]
