"""NetSuite's error documents translated into q2c errors, at the edge.

NetSuite puts the reason in ``o:errorDetails[].o:errorCode`` and names the offending field in
``o:errorPath``. The translation keeps NetSuite's own words (an operator searching NetSuite's
help finds them) and says which record and field to fix:

    INVALID_VALUE / INVALID_CONTENT / INVALID_FLD_VALUE  -> ValidationError (field named)
    INVALID_KEY_OR_REF                                    -> ValidationError (field named)
    USER_ERROR, TRANS_UNBALNCD                            -> ValidationError
    DUP_ENTITY, DUP_RCRD, UNIQUE_CUST_ID_REQD             -> ValidationError
    NONEXISTENT_ID (404)                                  -> NotFoundError
    CONCURRENCY_LIMIT_EXCEEDED (429)                      -> RateLimitedError
    INSUFFICIENT_PERMISSION (403), INVALID_LOGIN (401)    -> AuthError
    INVALID_PARAMETER / INVALID_HEADER / INVALID_METHOD   -> FatalError (q2c built a bad call)
    5xx                                                   -> RetriableError
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import httpx

from q2c.connectors.http import parse_retry_after
from q2c.connectors.netsuite import wire
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

__all__ = ["error_details", "translate_error", "where_in_record"]

SYSTEM = "netsuite"
_FIELD_CODES = {"INVALID_VALUE", "INVALID_CONTENT", "INVALID_FLD_VALUE", "INVALID_KEY_OR_REF"}
_RECORD_CODES = {"USER_ERROR", "TRANS_UNBALNCD"}
_DUPLICATE_CODES = {"DUP_ENTITY", "DUP_RCRD", "UNIQUE_CUST_ID_REQD"}
_CALL_CODES = {"INVALID_PARAMETER", "INVALID_HEADER", "INVALID_METHOD"}
_LABELS = {
    "customer": "customer",
    "job": "project",
    "salesOrder": "sales order",
    "invoice": "invoice",
    "customerPayment": "customer payment",
    "journalEntry": "journal entry",
}
# What one line of a sublist is called, by sublist name.
_LINE_WORDS = {"item": "line", "line": "line", "apply": "application", "addressBook": "address"}
_SUBLIST_PATH = re.compile(r"^(?P<sublist>\w+)\.items\[(?P<index>\d+)\](?:\.(?P<field>\w+))?$")


def error_details(response: httpx.Response) -> list[dict[str, Any]]:
    """The ``o:errorDetails`` list of a NetSuite error response (empty if not one)."""
    try:
        body = wire.loads(response.content)
    except ValueError:
        return []
    details = body.get("o:errorDetails") if isinstance(body, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _subject(url: httpx.URL) -> str:
    """What the call was about, in words: "customer", "sales order", "SuiteQL query"."""
    parts = [unquote(p) for p in url.path.split("/") if p]
    if "record" in parts and len(parts) > parts.index("record") + 2:
        record_type = parts[parts.index("record") + 2]
        return _LABELS.get(record_type, record_type)
    if "suiteql" in parts:
        return "SuiteQL query"
    return "request"


def where_in_record(path: str | None) -> str:
    """Words for an ``o:errorPath``: " field 'department'", " line 2 field 'taxCode'"."""
    if not path:
        return ""
    match = _SUBLIST_PATH.match(path)
    if match is None:
        return f" field '{path}'"
    line = f" {_LINE_WORDS.get(match['sublist'], 'line')} {int(match['index']) + 1}"
    return f"{line} field '{match['field']}'" if match["field"] else line


def translate_error(response: httpx.Response) -> Q2CError:
    """Map one NetSuite error response to the q2c error the runtime knows how to handle."""
    status = response.status_code
    details = error_details(response)
    first = details[0] if details else {}
    code = str(first.get("o:errorCode", ""))
    text = str(first.get("detail") or response.reason_phrase or "no detail given")
    path = first.get("o:errorPath")
    subject = _subject(response.request.url)
    common: dict[str, Any] = {
        "detail": f"{response.request.method} {response.request.url} -> {status} {code}: "
        f"{response.text[:2000]}",
        "system": SYSTEM,
        "context": {"netsuite_code": code, "subject": subject},
    }
    if code == "CONCURRENCY_LIMIT_EXCEEDED" or status == 429:
        return RateLimitedError(
            "NetSuite's concurrency limit for the account was reached; q2c will retry",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            **common,
        )
    if code == "INVALID_LOGIN" or status == 401:
        return AuthError("NetSuite rejected q2c's credentials", **common)
    if code == "INSUFFICIENT_PERMISSION" or status == 403:
        return AuthError(
            f"The NetSuite role q2c signs in with may not access this {subject}: {text}",
            suggested_fix="Give the integration role the permission NetSuite names, then replay.",
            **common,
        )
    if code == "NONEXISTENT_ID" or status == 404:
        return NotFoundError(f"NetSuite has no such {subject}: {text}", **common)
    if code in _FIELD_CODES:
        return ValidationError(
            f"NetSuite rejected the {subject}{where_in_record(path)}: {text}", field=path, **common
        )
    if code in _DUPLICATE_CODES:
        return ValidationError(
            f"NetSuite already has a {subject} with the same identifier: {text}",
            field=path,
            suggested_fix=(
                "Link the existing NetSuite record (set its External ID) or change the "
                "identifier at the source, then replay."
            ),
            **common,
        )
    if code in _RECORD_CODES:
        # a record-level refusal names a place only when it points into a line
        where = where_in_record(path) if path and _SUBLIST_PATH.match(path) else ""
        return ValidationError(
            f"NetSuite refused the {subject}{where}: {text}", field=path, **common
        )
    if code in _CALL_CODES:
        return FatalError(f"q2c sent NetSuite a malformed {subject}: {text}", **common)
    if status >= 500:
        return RetriableError(f"NetSuite had a server error ({status}): {text}", **common)
    return BusinessFixError(f"NetSuite refused the {subject}: {text}", field=path, **common)
