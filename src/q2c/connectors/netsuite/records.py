"""How the emulator checks a request body against a record type, with NetSuite's own errors.

A reference to a missing record (or to a record of the wrong type) is ``INVALID_VALUE`` on
that field, a wrong line reference is ``INVALID_CONTENT`` pointing into the sublist
(``item.items[1].item``), a missing mandatory field is ``USER_ERROR`` "Please enter value(s)
for: ...". ``derive`` fills what NetSuite computes: line numbers, line amounts, order totals.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from q2c.connectors.netsuite.schema import Field, RecordType, Resolver
from q2c.connectors.netsuite.wire import NetSuiteApiError

__all__ = ["check_required", "derive", "normalize_body"]


# --- checking a body ------------------------------------------------------------------------

_IGNORED = {"links", "id", "refName"}
_CUSTOM_PREFIXES = ("custentity", "custbody", "custcol", "custitem", "custrecord", "custevent")


def normalize_body(rt: RecordType, body: Any, resolve: Resolver) -> dict[str, Any]:
    """Check a create/update body; returns field -> stored value (None means "clear it")."""
    if not isinstance(body, dict):
        raise NetSuiteApiError(
            400, "INVALID_CONTENT", "Invalid content in the request body: expected a JSON object."
        )
    return _normalize_fields(rt.fields, body, resolve, prefix="")


def _normalize_fields(
    fields: Mapping[str, Field], body: Mapping[str, Any], resolve: Resolver, *, prefix: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in body.items():
        if name in _IGNORED:
            continue
        path = f"{prefix}{name}"
        spec = fields.get(name)
        if spec is None:
            if name.startswith(_CUSTOM_PREFIXES):  # custom fields are the account's own
                out[name] = value
                continue
            raise NetSuiteApiError(
                400,
                "INVALID_CONTENT",
                f"Error while accessing a resource. The field '{name}' is not defined "
                "for this record type.",
                path=path,
            )
        if spec.read_only:
            continue
        out[name] = None if value is None else _normalize_value(spec, value, resolve, path)
    return out


def _normalize_value(spec: Field, value: Any, resolve: Resolver, path: str) -> Any:
    if spec.kind == "text":
        if not isinstance(value, str):
            raise _invalid(path, value)
        return value
    if spec.kind in ("decimal", "int"):
        return _number(value, path, integral=spec.kind == "int")
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise _invalid(path, value)
        return value
    if spec.kind == "date":
        try:
            date.fromisoformat(value)
        except (TypeError, ValueError):
            raise _invalid(path, value) from None
        return value
    if spec.kind == "select":
        key = value.get("id") if isinstance(value, dict) else value
        if not isinstance(key, str) or key not in spec.choices:
            raise _invalid(path, key)
        return key
    if spec.kind == "ref":
        return _reference(spec, value, resolve, path)
    if spec.kind == "sublist":
        return _sublist(spec, value, resolve, path)
    return value


def _number(value: Any, path: str, *, integral: bool) -> Decimal | int:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise _invalid(path, value)
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise _invalid(path, value) from None
    if not number.is_finite():
        raise _invalid(path, value)
    if integral:
        if number != number.to_integral_value():
            raise _invalid(path, value)
        return int(number)
    return number


def _reference(spec: Field, value: Any, resolve: Resolver, path: str) -> dict[str, str]:
    if isinstance(value, str | int) and not isinstance(value, bool):
        value = {"id": str(value)}
    if not isinstance(value, dict) or not ({"id", "externalId"} & value.keys()):
        raise _invalid_reference(path)
    internal_id = resolve(spec.targets, value)
    if internal_id is None:
        raise _invalid_reference(path)
    return {"id": internal_id}


def _sublist(spec: Field, value: Any, resolve: Resolver, path: str) -> list[dict[str, Any]]:
    if not isinstance(value, dict) or not isinstance(value.get("items"), list):
        raise NetSuiteApiError(
            400,
            "INVALID_CONTENT",
            f"Invalid content in the request body: sublist '{path}' must be an object "
            'with an "items" array.',
            path=path,
        )
    lines: list[dict[str, Any]] = []
    for index, line in enumerate(value["items"]):
        prefix = f"{path}.items[{index}]."
        if not isinstance(line, dict):
            raise NetSuiteApiError(
                400, "INVALID_CONTENT", "A sublist line must be an object.", path=prefix[:-1]
            )
        keyed = line.get("line")
        try:
            normalized = _normalize_fields(spec.lines, line, resolve, prefix=prefix)
        except NetSuiteApiError as problem:
            if problem.code == "INVALID_VALUE" and problem.path:
                # NetSuite words invalid line references differently from body fields.
                line_field = problem.path.rsplit(".", 1)[-1]
                bad = _raw_ref(line.get(line_field))
                raise NetSuiteApiError(
                    400,
                    "INVALID_CONTENT",
                    "Error while accessing resource: You have entered an Invalid Field Value "
                    f"{bad} for the following field: {line_field}",
                    path=problem.path,
                ) from None
            raise
        if keyed is not None:
            normalized["line"] = _number(keyed, f"{prefix}line", integral=True)
        for name, line_spec in spec.lines.items():
            if line_spec.required and normalized.get(name) is None and keyed is None:
                raise _missing(line_spec.label or name)
        lines.append(normalized)
    return lines


def _raw_ref(value: Any) -> Any:
    return value.get("id", value.get("externalId")) if isinstance(value, dict) else value


def _invalid(path: str, value: Any) -> NetSuiteApiError:
    return NetSuiteApiError(
        400,
        "INVALID_VALUE",
        f"Invalid value '{value}' for the field '{path}'.",
        path=path,
    )


def _invalid_reference(path: str) -> NetSuiteApiError:
    return NetSuiteApiError(
        400,
        "INVALID_VALUE",
        f"Invalid value for the resource or sub-resource field '{path}'. Provide a valid value.",
        path=path,
    )


def _missing(label: str) -> NetSuiteApiError:
    return NetSuiteApiError(
        400, "USER_ERROR", f"Error while accessing a resource. Please enter value(s) for: {label}."
    )


# --- whole-record rules ---------------------------------------------------------------------


def check_required(rt: RecordType, record: Mapping[str, Any]) -> None:
    """Mandatory fields, checked on the record as it will be stored."""
    missing = [
        spec.label or name
        for name, spec in rt.fields.items()
        if spec.required and record.get(name) in (None, "")
    ]
    if rt.name == "customer":  # a company needs its name, a person their first and last name
        if not record.get("isPerson"):
            person_fields = {"companyName": "Company Name"}
        else:
            person_fields = {"firstName": "First Name", "lastName": "Last Name"}
        missing += [label for name, label in person_fields.items() if not record.get(name)]
    if missing:
        raise _missing(", ".join(missing))
    for sublist in rt.required_lines:
        if not record.get(sublist):
            raise NetSuiteApiError(
                400,
                "USER_ERROR",
                "Error while accessing a resource. You must enter at least one line item "
                "for this transaction.",
                path=sublist,
            )


_CENT = Decimal("0.01")


def derive(rt: RecordType, record: dict[str, Any]) -> None:
    """Computed fields: line numbers, line amounts from quantity x rate, the order total."""
    for name, spec in rt.fields.items():
        if spec.kind != "sublist" or not isinstance(record.get(name), list):
            continue
        used = {line["line"] for line in record[name] if isinstance(line.get("line"), int)}
        next_line = max(used, default=0) + 1
        for line in record[name]:
            if not isinstance(line.get("line"), int):
                line["line"] = next_line
                next_line += 1
    if rt.name == "salesOrder":
        total = Decimal(0)
        for line in record.get("item") or []:
            if line.get("amount") is None and line.get("rate") is not None:
                quantity = line.get("quantity", Decimal(1))
                line["amount"] = (quantity * line["rate"]).quantize(_CENT, ROUND_HALF_UP)
            total += line.get("amount") or Decimal(0)
        record["total"] = total
