"""Kantata OX's error bodies translated into q2c errors, at the edge.

Kantata answers errors with ``{"errors": [{"type", "message", "field"?}]}``: ``validation``
(422, one entry per failing attribute, ``field`` named), ``oauth`` (401) and ``system``
(account or platform). The translation keeps Kantata's own words and says what to fix:

    422 / type validation        -> ValidationError (every message; first field named)
    401 / type oauth             -> AuthError
    403                          -> AuthError (the Kantata user lacks a permission)
    404                          -> NotFoundError
    429                          -> RateLimitedError (Retry-After when sent)
    5xx (503 outage, 504 timeout)-> RetriableError
    400                          -> FatalError (q2c built a request Kantata cannot process)
    anything else                -> BusinessFixError
"""

from __future__ import annotations

from typing import Any

import httpx

from q2c.connectors.http import parse_retry_after
from q2c.connectors.kantata import wire
from q2c.errors import (
    AuthError,
    BusinessFixError,
    FatalError,
    NotFoundError,
    Q2CError,
    RateLimitedError,
    RetriableError,
    ValidationError,
)

__all__ = ["error_entries", "translate_error"]

SYSTEM = "kantata"
_SUBJECTS = {
    "workspaces": "project",
    "workspace_groups": "client group",
    "time_entries": "time entry",
    "expenses": "expense",
    "stories": "task",
    "users": "user",
    "roles": "role",
    "subscribed_events": "change feed",
    "token": "sign-in",
}


def error_entries(response: httpx.Response) -> list[dict[str, Any]]:
    """The ``errors`` list of a Kantata error response (empty if the body is not one)."""
    try:
        body = wire.loads(response.content)
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _subject(url: httpx.URL) -> str:
    """What the call was about, in words: ``/api/v1/time_entries.json`` -> "time entry"."""
    parts = [p.removesuffix(".json") for p in url.path.split("/") if p]
    for part in reversed(parts):
        if part in _SUBJECTS:
            return _SUBJECTS[part]
    return "request"


def translate_error(response: httpx.Response) -> Q2CError:
    """Map one Kantata error response to the q2c error the runtime knows how to handle."""
    status = response.status_code
    entries = error_entries(response)
    messages = [str(e.get("message") or "").strip() for e in entries if e.get("message")]
    text = "; ".join(messages) or response.reason_phrase or "no detail given"
    kinds = {str(e.get("type", "")) for e in entries}
    field = next((str(e["field"]) for e in entries if e.get("field")), None)
    subject = _subject(response.request.url)
    common: dict[str, Any] = {
        "detail": f"{response.request.method} {response.request.url} -> {status}: "
        f"{response.text[:2000]}",
        "system": SYSTEM,
        "context": {"kantata_error_types": sorted(kinds), "subject": subject},
    }
    if status == 429:
        return RateLimitedError(
            "Kantata asked q2c to slow down (rate limit); q2c will retry",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            **common,
        )
    if status >= 500:
        return RetriableError(f"Kantata had a server error ({status}): {text}", **common)
    if status == 401 or "oauth" in kinds:
        return AuthError(f"Kantata rejected q2c's credentials: {text}", **common)
    if status == 403:
        return AuthError(
            f"The Kantata user q2c signs in as may not do this with the {subject}: {text}",
            suggested_fix="Give the integration user the access Kantata names (access group, "
            "project participation or financial access), then replay.",
            **common,
        )
    if status == 404:
        return NotFoundError(f"Kantata has no such {subject}: {text}", **common)
    if status == 422 or "validation" in kinds:
        where = f" (field '{field}')" if field else ""
        return ValidationError(
            f"Kantata refused the {subject}{where}: {text}", field=field, **common
        )
    if status == 400:
        return FatalError(
            f"q2c sent Kantata a {subject} request it cannot process: {text}", **common
        )
    return BusinessFixError(f"Kantata refused the {subject}: {text}", field=field, **common)
