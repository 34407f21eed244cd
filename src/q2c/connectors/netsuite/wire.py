"""NetSuite's wire format, shared by the adapter and the emulator.

Three facts live here so both sides agree on them:

* JSON numbers carry money. NetSuite sends and accepts amounts as JSON numbers, so bodies are
  parsed with ``parse_float=Decimal`` and written by a small serializer that prints a Decimal
  as a number without ever passing through float (the stdlib encoder cannot).
* Error bodies are RFC 9457 problem details with NetSuite's ``o:errorDetails`` list.
* The REST host is derived from the account id: ``1234567_SB1`` -> ``1234567-sb1``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = [
    "COLLECTION_CONTENT_TYPE",
    "ERROR_CONTENT_TYPE",
    "RECORD_CONTENT_TYPE",
    "NetSuiteApiError",
    "base_url_for",
    "dumps",
    "error_body",
    "loads",
    "plain_decimal",
    "realm_for",
]

RECORD_CONTENT_TYPE = "application/vnd.oracle.resource+json; type=singular"
COLLECTION_CONTENT_TYPE = "application/vnd.oracle.resource+json; type=collection"
ERROR_CONTENT_TYPE = "application/vnd.oracle.resource+json; type=error"

_RFC9110 = "https://www.rfc-editor.org/rfc/rfc9110.html#section-"
_PROBLEM_TYPES: dict[int, tuple[str, str]] = {
    400: (_RFC9110 + "15.5.1", "Bad Request"),
    401: (_RFC9110 + "15.5.2", "Unauthorized"),
    403: (_RFC9110 + "15.5.4", "Forbidden"),
    404: (_RFC9110 + "15.5.5", "Not Found"),
    405: (_RFC9110 + "15.5.6", "Method Not Allowed"),
    415: (_RFC9110 + "15.5.16", "Unsupported Media Type"),
    429: ("https://www.rfc-editor.org/rfc/rfc6585.html#section-4", "Too Many Requests"),
    500: (_RFC9110 + "15.6.1", "Internal Server Error"),
    502: (_RFC9110 + "15.6.3", "Bad Gateway"),
    503: (_RFC9110 + "15.6.4", "Service Unavailable"),
    504: (_RFC9110 + "15.6.5", "Gateway Timeout"),
}


def base_url_for(account_id: str) -> str:
    """REST host of an account: NetSuite lowercases the id and turns ``_`` into ``-``."""
    host = account_id.strip().lower().replace("_", "-")
    return f"https://{host}.suitetalk.api.netsuite.com"


def realm_for(account_id: str) -> str:
    """TBA realm: the account id in NetSuite's canonical form (``1234567_SB1``)."""
    return account_id.strip().upper().replace("-", "_")


def loads(raw: bytes | str) -> Any:
    """Parse JSON keeping every non-integer number as an exact Decimal."""
    return json.loads(raw, parse_float=Decimal)


def plain_decimal(value: Decimal) -> str:
    """A Decimal as a plain numeral (``1500``, ``0.1``), never in exponent form."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def dumps(value: Any) -> bytes:
    """Serialize to JSON, writing Decimals as exact JSON numbers."""
    return _encode(value).encode()


def _encode(value: Any) -> str:
    if value is None or isinstance(value, bool | str):
        return json.dumps(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value!r} cannot be written as a JSON number")
        return format(value, "f")  # keeps the scale: 1000.00 stays 1000.00
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise TypeError("floats never go on the NetSuite wire; use Decimal")
    if isinstance(value, Mapping):
        pairs = (f"{json.dumps(str(k))}:{_encode(v)}" for k, v in value.items())
        return "{" + ",".join(pairs) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def error_body(
    status: int,
    code: str,
    detail: str,
    *,
    path: str | None = None,
    header: str | None = None,
    query_param: str | None = None,
) -> dict[str, Any]:
    """A NetSuite REST error document (problem details + ``o:errorDetails``)."""
    problem_type, title = _PROBLEM_TYPES.get(status, (_RFC9110 + "15", "Error"))
    item: dict[str, Any] = {"detail": detail, "o:errorCode": code}
    if path is not None:
        item["o:errorPath"] = path
    if header is not None:
        item["o:errorHeader"] = header
    if query_param is not None:
        item["o:errorQueryParam"] = query_param
    return {"type": problem_type, "title": title, "status": status, "o:errorDetails": [item]}


class NetSuiteApiError(Exception):
    """Raised inside the emulator; rendered as a NetSuite error response."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        path: str | None = None,
        header: str | None = None,
        query_param: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.path = path
        self.header = header
        self.query_param = query_param

    def body(self) -> dict[str, Any]:
        return error_body(
            self.status,
            self.code,
            self.detail,
            path=self.path,
            header=self.header,
            query_param=self.query_param,
        )
