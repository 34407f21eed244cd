"""Tryton's JSON-RPC wire format: typed values and the request/response envelope.

Tryton's JSON-RPC (``trytond/protocols/jsonrpc.py``) tags the values JSON cannot carry:
``{"__class__": "Decimal", "decimal": "12.50"}``, ``{"__class__": "date", "year": ..}``,
``datetime``, ``time``, ``timedelta`` (``seconds``) and ``bytes`` (``base64``). A request is
exactly ``{"id": n, "method": m, "params": [...]}``; the reply is ``{"id": n, "result": r}`` or
``{"id": n, "error": e}``. Plain JSON numbers with a fraction are parsed as ``Decimal`` so no
float ever reaches money (Tryton's own Float fields come back as Decimal too, harmlessly).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal
from typing import Any

__all__ = ["decode_value", "dumps", "encode_value", "loads", "request_body"]


def encode_value(value: Any) -> Any:
    """Tag one Python value the way trytond's ``JSONEncoder`` does (recursively)."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot send the non-finite decimal {value!r} to Tryton")
        return {"__class__": "Decimal", "decimal": format(value, "f")}
    if isinstance(value, float):
        raise TypeError("floats never go to Tryton: send a Decimal")
    if isinstance(value, dt.datetime):
        return {
            "__class__": "datetime",
            "year": value.year,
            "month": value.month,
            "day": value.day,
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, dt.time):
        return {
            "__class__": "time",
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, dt.timedelta):
        # exact: whole seconds as an int, a fraction as a Decimal (never a float)
        micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
        seconds = Decimal(micros).scaleb(-6).normalize()
        return {"__class__": "timedelta", "seconds": _plain(seconds)}
    if isinstance(value, bytes | bytearray):
        return {"__class__": "bytes", "base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {str(k): encode_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [encode_value(v) for v in value]
    return value


def _plain(value: Decimal) -> int | Decimal:
    return int(value) if value == value.to_integral_value() else value


def decode_value(obj: dict[str, Any]) -> Any:
    """``json.loads`` object hook: turn Tryton's tagged objects back into Python values."""
    kind = obj.get("__class__")
    if kind is None:
        return obj
    if kind == "Decimal":
        return Decimal(str(obj["decimal"]))
    if kind == "date":
        return dt.date(obj["year"], obj["month"], obj["day"])
    if kind == "datetime":
        return dt.datetime(
            obj["year"],
            obj["month"],
            obj["day"],
            obj["hour"],
            obj["minute"],
            obj["second"],
            obj["microsecond"],
        )
    if kind == "time":
        return dt.time(obj["hour"], obj["minute"], obj["second"], obj["microsecond"])
    if kind == "timedelta":
        seconds = Decimal(str(obj["seconds"]))
        return dt.timedelta(microseconds=int((seconds * 1_000_000).to_integral_value()))
    if kind == "bytes":
        return base64.b64decode(obj["base64"])
    return obj


def dumps(payload: Any) -> bytes:
    """Serialise a request body. A Decimal left untagged (a timedelta's fraction) is written as
    an exact JSON number, never rounded through a float."""
    tagged = encode_value(payload)
    return _write(tagged).encode("utf-8")


def _write(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        items = ",".join(f"{json.dumps(k)}:{_write(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list):
        return "[" + ",".join(_write(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def loads(data: bytes | str) -> Any:
    """Parse a response body: tagged values decoded, JSON fractions as Decimal."""
    return json.loads(data, object_hook=decode_value, parse_float=Decimal)


def request_body(request_id: int, method: str, params: list[Any]) -> bytes:
    """The exact envelope trytond accepts (any other key set makes it answer bare values)."""
    return dumps({"id": request_id, "method": method, "params": params})
