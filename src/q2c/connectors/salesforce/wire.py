"""Salesforce's wire conventions, shared by the emulator and the adapter.

Salesforce sends money as bare JSON numbers (``"Amount": 150000.0``). Parsed the ordinary way
they become floats and lose cents, so both sides read JSON with ``parse_float=Decimal`` and the
emulator writes Decimals back as exact JSON numbers. Datetimes travel in Salesforce's own
format (``2026-11-26T10:00:00.000+0000``), which is neither Python's ``isoformat`` nor what
SOQL literals accept, hence the helpers here.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson

__all__ = [
    "ApiError",
    "dumps",
    "format_date",
    "format_datetime",
    "loads",
    "parse_date",
    "parse_datetime",
    "soql_datetime",
]

_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)


def loads(text: str | bytes) -> Any:
    """Parse JSON keeping every non-integer number as an exact Decimal (never a float)."""
    return json.loads(text, parse_float=Decimal)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f"))
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> bytes:
    """Serialise to JSON; Decimals become exact JSON numbers, as Salesforce writes them."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME)


def format_datetime(value: datetime) -> str:
    """``2026-11-26T10:00:00.000+0000``: the format of every datetime in Salesforce JSON."""
    utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def soql_datetime(value: datetime) -> str:
    """A datetime as a SOQL literal (``2026-11-26T10:00:00.000Z``); SOQL rejects ``+0000``."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_datetime(text: str) -> datetime:
    """Read Salesforce, ISO-8601 and SOQL datetimes; a missing offset means UTC."""
    match = _DATETIME.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a datetime such as 2026-11-26T10:00:00.000+0000")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    tz: timezone = UTC
    if offset and offset != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    parsed = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, tz
    )
    return parsed.astimezone(UTC)


def format_date(value: date) -> str:
    return value.isoformat()


def parse_date(text: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        raise ValueError(f"{text!r} is not a date such as 2026-11-26")
    return date.fromisoformat(text.strip())


class ApiError(Exception):
    """A Salesforce REST error response: HTTP status plus the list of error objects.

    Salesforce answers errors with ``[{"message": ..., "errorCode": ..., "fields": [...]}]``;
    the emulator raises this anywhere in a request and the HTTP layer renders it.
    """

    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["message"] if errors else f"HTTP {status}")
        self.status = status
        self.errors = errors

    @classmethod
    def one(
        cls, status: int, code: str, message: str, fields: list[str] | tuple[str, ...] = ()
    ) -> ApiError:
        return cls(status, [{"message": message, "errorCode": code, "fields": list(fields)}])

    @property
    def code(self) -> str:
        return str(self.errors[0]["errorCode"]) if self.errors else "UNKNOWN_EXCEPTION"

    def as_save_errors(self) -> list[dict[str, Any]]:
        """The shape used inside SaveResults (collections, tree): ``statusCode`` not errorCode."""
        return [
            {"statusCode": e["errorCode"], "message": e["message"], "fields": e.get("fields", [])}
            for e in self.errors
        ]
