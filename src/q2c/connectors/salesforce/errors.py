"""Salesforce error responses translated into ``q2c.errors`` at the edge.

Salesforce answers errors with a list of ``{"message", "errorCode", "fields"}``. The code says
what the runtime should do:

    REQUEST_LIMIT_EXCEEDED, UNABLE_TO_LOCK_ROW ........ retriable (rate limit / lock contention)
    INVALID_SESSION_ID ................................ AuthError (the auth already refreshed once)
    INSUFFICIENT_ACCESS*, API_DISABLED_FOR_ORG ........ AuthError (a permission problem)
    NOT_FOUND, ENTITY_IS_DELETED, MALFORMED_ID ........ NotFoundError
    field / data problems (REQUIRED_FIELD_MISSING ...). ValidationError naming the fields
    MALFORMED_QUERY, INVALID_TYPE, anything unknown ... FatalError (q2c or the org is broken)

Messages are written for the operator ("Salesforce rejected the Account: Required fields are
missing: [Name]") and keep the raw body as the technical detail.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from q2c.connectors.http import parse_retry_after
from q2c.connectors.salesforce.wire import loads
from q2c.errors import (
    AuthError,
    FatalError,
    NotFoundError,
    Q2CError,
    RateLimitedError,
    RetriableError,
    ValidationError,
)

__all__ = ["error_from_body", "translate_error"]

SYSTEM = "salesforce"

_DATA_CODES = {
    "INVALID_FIELD",
    "REQUIRED_FIELD_MISSING",
    "STRING_TOO_LONG",
    "DUPLICATE_VALUE",
    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
    "JSON_PARSER_ERROR",
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    "NUMBER_OUTSIDE_VALID_RANGE",
    "FIELD_INTEGRITY_EXCEPTION",
    "INVALID_CROSS_REFERENCE_KEY",
    "INVALID_FIELD_FOR_INSERT_UPDATE",
    "INVALID_EMAIL_ADDRESS",
    "DUPLICATE_EXTERNAL_ID",
    "INVALID_QUERY_FILTER_OPERATOR",
    "MISSING_ARGUMENT",
    "FIELD_FILTER_VALIDATION_EXCEPTION",
    "DUPLICATES_DETECTED",
    "INVALID_ID_FIELD",
}
_NOT_FOUND_CODES = {"NOT_FOUND", "ENTITY_IS_DELETED", "MALFORMED_ID"}
_AUTH_CODES = {
    "INVALID_SESSION_ID",
    "INSUFFICIENT_ACCESS",
    "INSUFFICIENT_ACCESS_OR_READONLY",
    "API_DISABLED_FOR_ORG",
    "INVALID_AUTH_HEADER",
}
_RETRY_CODES = {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "QUERY_TIMEOUT"}


def translate_error(response: httpx.Response) -> Q2CError:
    """``RestClient``'s translator for every non-success answer it does not classify itself."""
    try:
        body = loads(response.text) if response.text else None
    except ValueError:
        body = None
    request = response.request
    where = f"{request.method} {request.url.path} -> {response.status_code}"
    return error_from_body(
        response.status_code,
        body,
        where=where,
        sobject=_sobject_of(request.url.path),
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        raw=response.text[:2000],
    )


def error_from_body(
    status: int,
    body: Any,
    *,
    where: str,
    sobject: str | None = None,
    retry_after: float | None = None,
    raw: str | None = None,
) -> Q2CError:
    """Translate one Salesforce error body (also used for composite sub-responses)."""
    detail = f"{where}: {raw if raw is not None else body}"
    if status == 300 and isinstance(body, list):
        return ValidationError(
            f"Salesforce found {len(body)} {sobject or 'record'}s with the same external id; "
            "q2c cannot tell which one to update",
            detail=detail,
            system=SYSTEM,
            context={"matches": body},
        )
    errors = [e for e in body if isinstance(e, dict)] if isinstance(body, list) else []
    if not errors:
        return FatalError(
            f"Salesforce answered {status} without an error description",
            detail=detail,
            system=SYSTEM,
        )
    first = errors[0]
    code = str(first.get("errorCode") or first.get("statusCode") or "UNKNOWN_EXCEPTION")
    message = " ".join(str(e.get("message", "")).strip() for e in errors).strip()
    fields = [str(f) for e in errors for f in (e.get("fields") or [])]
    what = f"the {sobject}" if sobject else "the request"
    context = {"error_code": code, "fields": fields}
    if code == "REQUEST_LIMIT_EXCEEDED":
        return RateLimitedError(
            "Salesforce's API request limit for the org is exhausted; q2c will retry later",
            retry_after=retry_after,
            detail=detail,
            system=SYSTEM,
            context=context,
        )
    if code in _RETRY_CODES:
        return RetriableError(
            f"Salesforce could not process {what} right now ({code})",
            detail=detail,
            system=SYSTEM,
            context=context,
        )
    if code in _AUTH_CODES:
        return AuthError(
            f"Salesforce refused q2c's access: {message}",
            detail=detail,
            system=SYSTEM,
            context=context,
        )
    if code in _NOT_FOUND_CODES:
        return NotFoundError(
            f"Salesforce has no such {sobject or 'record'} ({_clean(message)})",
            detail=detail,
            system=SYSTEM,
            context=context,
        )
    if code in _DATA_CODES:
        named = f" (field {', '.join(fields)})" if fields else ""
        return ValidationError(
            f"Salesforce rejected {what}{named}: {_clean(message)}",
            detail=detail,
            system=SYSTEM,
            field=fields[0] if fields else None,
            context=context,
        )
    return FatalError(
        f"Salesforce refused {what} ({code}): {_clean(message)}",
        detail=detail,
        system=SYSTEM,
        context=context,
    )


def _clean(message: str) -> str:
    """SOQL errors carry the query and a caret drawing; the last line is the explanation."""
    lines = [line for line in message.splitlines() if line.strip()]
    return lines[-1].strip() if lines else message


def _sobject_of(path: str) -> str | None:
    match = re.search(r"/sobjects/([A-Za-z0-9_]+)", path)
    return match.group(1) if match else None
