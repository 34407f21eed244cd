"""Kantata OX's wire format, shared by the adapter and the emulator.

Every GET answers with the same normalised envelope::

    {"count": 2, "meta": {"count": 2, "page_count": 1, "page_number": 1, "page_size": 20},
     "results": [{"key": "time_entries", "id": "7"}, ...],
     "time_entries": {"7": {...}}, "roles": {"3": {...}}}

``results`` holds the canonical matches in order; the top-level collections also carry
side-loaded associations (``include=``), so callers must read through ``results``. Errors are
``{"errors": [{"type": "validation" | "oauth" | "system", "message": ..., "field": ...}]}``.
Timestamps are ISO 8601 with seconds; money is integer subunits (``*_in_cents``) plus an ISO
currency code and its ``currency_base_unit``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "API_PREFIX",
    "DEFAULT_BASE_URL",
    "MAX_PER_PAGE",
    "dumps",
    "error_body",
    "format_timestamp",
    "loads",
    "page_count",
    "parse_date",
    "parse_timestamp",
    "result_records",
    "token_url_for",
]

DEFAULT_BASE_URL = "https://api.mavenlink.com/api/v1"
API_PREFIX = "/api/v1"
TOKEN_PATH = "/oauth/token"
MAX_PER_PAGE = 200


def loads(content: bytes | str) -> Any:
    """JSON with every non-integer number as a Decimal (custom field values, rates)."""
    return json.loads(content, parse_float=Decimal)


def dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), default=_encode).encode()


def _encode(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def format_timestamp(when: datetime) -> str:
    """``2025-01-06T09:00:00Z``: UTC, whole seconds, as Kantata prints ``updated_at``."""
    if when.tzinfo is None:
        raise ValueError("Kantata timestamps are time-zone aware")
    return when.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 timestamp (``Z`` or an offset) as an aware UTC datetime."""
    parsed = datetime.fromisoformat(text.strip())
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return parsed.astimezone(UTC)


def parse_date(text: str) -> date:
    return date.fromisoformat(text.strip()[:10])


def error_body(errors: Iterable[Mapping[str, str]]) -> dict[str, Any]:
    return {"errors": [dict(e) for e in errors]}


def result_records(body: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """The canonical matches of one response, in order (side-loads of the same type skipped)."""
    table = body.get(key) or {}
    out: list[dict[str, Any]] = []
    for ref in body.get("results") or []:
        if ref.get("key") == key and str(ref.get("id")) in table:
            out.append(table[str(ref["id"])])
    return out


def page_count(body: Mapping[str, Any], per_page: int) -> int:
    """Pages in the whole result: ``meta.page_count``, else derived from ``count``."""
    meta = body.get("meta") or {}
    if isinstance(meta.get("page_count"), int):
        return int(meta["page_count"])
    count = int(body.get("count") or 0)
    return max(1, -(-count // per_page))


def token_url_for(base_url: str) -> str:
    """The OAuth token endpoint on the API host (``/oauth/token``, per OIDC discovery)."""
    base = base_url.rstrip("/")
    if base.endswith(API_PREFIX):
        base = base[: -len(API_PREFIX)]
    return base + TOKEN_PATH
