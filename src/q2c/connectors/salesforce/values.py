"""Field values in and out of the emulated org, with Salesforce's own errors.

A JSON value is coerced to the field's type (str, Decimal rounded to the field's scale, bool,
date, datetime, 18-character id) or refused with the error code Salesforce uses for that
mistake, so an adapter meets the same failures here as against a real org.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from q2c.connectors.salesforce.ids import normalize_id
from q2c.connectors.salesforce.schema import NUMBER_TYPES, STRING_TYPES, FieldDef
from q2c.connectors.salesforce.wire import ApiError, format_datetime, parse_date, parse_datetime

__all__ = ["coerce", "to_wire"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TYPE_NAMES = {
    "currency": "currency",
    "double": "double",
    "percent": "double",
    "int": "int",
    "boolean": "boolean",
    "date": "date",
    "datetime": "datetime",
}


def _parse_error(fdef: FieldDef, value: Any) -> ApiError:
    token = "VALUE_STRING" if isinstance(value, str) else f"{type(value).__name__.upper()} value"
    return ApiError.one(
        400,
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {_TYPE_NAMES.get(fdef.type, fdef.type)} from {token} "
        f"value {value} or request may be missing a required field",
        [fdef.name],
    )


def coerce(fdef: FieldDef, value: Any) -> Any:
    """The stored form of ``value`` for ``fdef``; None stays None (required is checked later)."""
    if value is None:
        return None
    if isinstance(value, dict | list):
        raise ApiError.one(
            400,
            "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of {fdef.type} from START_OBJECT value for field "
            f"{fdef.name}",
            [fdef.name],
        )
    if fdef.type in STRING_TYPES:
        return _string(fdef, value)
    if fdef.type in NUMBER_TYPES:
        return _number(fdef, value)
    if fdef.type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _parse_error(fdef, value)
    if fdef.type == "date":
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        try:
            return parse_date(str(value))
        except ValueError:
            raise _parse_error(fdef, value) from None
    if fdef.type == "datetime":
        if isinstance(value, datetime):
            return parse_datetime(format_datetime(value))
        try:
            return parse_datetime(str(value))
        except ValueError:
            raise _parse_error(fdef, value) from None
    if fdef.type in ("id", "reference"):
        normalized = normalize_id(value) if isinstance(value, str) else None
        if normalized is None:
            raise ApiError.one(
                400,
                "MALFORMED_ID",
                f"{fdef.label}: id value of incorrect type: {value}",
                [fdef.name],
            )
        return normalized
    raise _parse_error(fdef, value)


def _string(fdef: FieldDef, value: Any) -> str | None:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | Decimal):
        text = str(value)
    else:
        raise _parse_error(fdef, value)
    if text == "":
        return None  # Salesforce stores an empty text value as null
    if len(text) > fdef.length:
        raise ApiError.one(
            400,
            "STRING_TOO_LONG",
            f"{fdef.label}: data value too large: {text[:40]}... (max length={fdef.length})",
            [fdef.name],
        )
    if fdef.type == "picklist" and fdef.restricted and text not in fdef.picklist:
        raise ApiError.one(
            400,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{fdef.label}: bad value for restricted picklist field: {text}",
            [fdef.name],
        )
    if fdef.type == "email" and not _EMAIL.match(text):
        raise ApiError.one(
            400,
            "INVALID_EMAIL_ADDRESS",
            f"{fdef.label}: invalid email address: {text}",
            [fdef.name],
        )
    return text


def _number(fdef: FieldDef, value: Any) -> Decimal | int:
    if isinstance(value, bool | float):
        # floats are refused on purpose: the state API must not let binary money in
        raise _parse_error(fdef, value)
    try:
        number = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except (InvalidOperation, TypeError):
        raise _parse_error(fdef, value) from None
    if not number.is_finite():
        raise _parse_error(fdef, value)
    limit = Decimal(10) ** (fdef.precision - fdef.scale)
    if abs(number) >= limit:
        raise ApiError.one(
            400,
            "NUMBER_OUTSIDE_VALID_RANGE",
            f"{fdef.label}: value outside of valid range on numeric field: {value}",
            [fdef.name],
        )
    if fdef.type == "int":
        if number != number.to_integral_value():
            raise _parse_error(fdef, value)
        return int(number)
    return number.quantize(Decimal(1).scaleb(-fdef.scale), rounding=ROUND_HALF_UP)


def to_wire(fdef: FieldDef, value: Any) -> Any:
    """The JSON form of a stored value: dates as text, datetimes in Salesforce's format."""
    if value is None:
        return None
    if fdef.type == "datetime":
        return format_datetime(value)
    if fdef.type == "date":
        return value.isoformat()
    return value
