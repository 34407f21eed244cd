"""The emulator's request vocabulary: routes, the call a handler receives, parameter checks.

Stripe validates parameters before doing anything and answers with one error naming the
parameter: ``parameter_unknown`` ("Received unknown parameter: x"), ``parameter_missing``
("Missing required param: x."), ``parameter_invalid_integer`` ("Invalid integer: x"), and
metadata limits (50 keys, keys up to 40 characters, values up to 500). These helpers give
every handler the same checks and the same words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from q2c.canonical.money import MINOR_UNITS
from q2c.connectors.stripe.state import StripeState
from q2c.connectors.stripe.wire import StripeApiError, stripe_exponent

__all__ = [
    "METADATA_MAX_KEYS",
    "METADATA_MAX_KEY_LENGTH",
    "METADATA_MAX_VALUE_LENGTH",
    "PAGING",
    "Call",
    "Handler",
    "Route",
    "boolean",
    "check_params",
    "created_filter",
    "currency",
    "decimal_value",
    "fields",
    "integer",
    "json_number",
    "merge_metadata",
    "required",
    "string",
    "string_list",
]

PAGING = frozenset({"limit", "starting_after", "ending_before"})
METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500


@dataclass
class Call:
    """One API request as a handler sees it."""

    state: StripeState
    method: str
    path: str
    params: dict[str, Any]
    path_args: dict[str, str]
    request_id: str
    idempotency_key: str | None = None
    expand: list[str] = field(default_factory=list)

    def arg(self, name: str) -> str:
        return self.path_args[name]

    def emit(self, event_type: str, obj: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.state.emit(
            event_type,
            obj,
            request_id=self.request_id,
            idempotency_key=self.idempotency_key,
            **kwargs,
        )


Handler = Callable[[Call], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str  # "/v1/invoices/{invoice}/finalize"
    handler: Handler
    params: frozenset[str] = frozenset()

    def compiled(self) -> re.Pattern[str]:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.pattern)
        return re.compile(f"^{regex}$")


def fields(names: str) -> frozenset[str]:
    """A route's parameter names, written as one space-separated string."""
    return frozenset(names.split())


def check_params(params: Mapping[str, Any], allowed: frozenset[str]) -> None:
    for name in params:
        if name not in allowed and name != "expand":
            raise StripeApiError(
                400,
                f"Received unknown parameter: {name}",
                code="parameter_unknown",
                param=name,
            )


def required(params: Mapping[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise StripeApiError(
            400, f"Missing required param: {name}.", code="parameter_missing", param=name
        )
    return value


def string(
    params: Mapping[str, Any], name: str, *, max_length: int = 5000, default: str | None = None
) -> str | None:
    value = params.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise StripeApiError(400, f"Invalid string: {value!r}", param=name)
    if len(value) > max_length:
        raise StripeApiError(
            400,
            f"Invalid string: {value[:20]}...; must be at most {max_length} characters",
            code="string_length_exceeds_maximum",
            param=name,
        )
    return value or None


def integer(params: Mapping[str, Any], name: str, *, minimum: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
            raise ValueError(value)
        number = int(value)
    except ValueError:
        raise StripeApiError(
            400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=name
        ) from None
    if minimum is not None and number < minimum:
        raise StripeApiError(
            400,
            f"This value must be greater than or equal to {minimum}.",
            code="parameter_invalid_integer",
            param=name,
        )
    return number


def boolean(params: Mapping[str, Any], name: str) -> bool | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if value in ("true", "false"):
        return bool(value == "true")
    raise StripeApiError(400, f"Invalid boolean: {value}", param=name)


def decimal_value(params: Mapping[str, Any], name: str) -> Decimal | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise StripeApiError(400, f"Invalid decimal: {value}", param=name) from None
    if not number.is_finite():
        raise StripeApiError(400, f"Invalid decimal: {value}", param=name)
    return number


def currency(params: Mapping[str, Any], name: str = "currency") -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    code = str(value)
    try:
        supported = code.upper() in MINOR_UNITS and stripe_exponent(code) >= 0
    except ValueError:
        supported = False
    if not supported or code != code.lower():
        raise StripeApiError(
            400,
            f"Invalid currency: {code}. Stripe currently supports these currencies: "
            "usd, aed, afn, ..., use lower-case three-letter ISO codes.",
            param=name,
        )
    return code


def string_list(params: Mapping[str, Any], name: str) -> list[str]:
    value = params.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        raise StripeApiError(400, f"Invalid array: {name} must be an array", param=name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise StripeApiError(400, f"Invalid array: {name}", param=name)
    return list(value)


def merge_metadata(existing: dict[str, str], update: Any) -> dict[str, str]:
    """Stripe's metadata update: merge keys, ``""`` unsets one key, ``metadata=`` unsets all."""
    if update is None:
        return existing
    if update == "":
        return {}
    if not isinstance(update, dict):
        raise StripeApiError(
            400, "Invalid metadata: metadata must be a hash of keys and values", param="metadata"
        )
    merged = dict(existing)
    for key, value in update.items():
        if not isinstance(value, str):
            raise StripeApiError(
                400,
                f"Invalid val: {value!r} must be a string under "
                f"{METADATA_MAX_VALUE_LENGTH} characters",
                param="metadata",
            )
        if len(key) > METADATA_MAX_KEY_LENGTH:
            raise StripeApiError(
                400,
                f"Invalid key: {key} must be a string under {METADATA_MAX_KEY_LENGTH} characters",
                param="metadata",
            )
        if len(value) > METADATA_MAX_VALUE_LENGTH:
            raise StripeApiError(
                400,
                f"Invalid val: {value[:40]}... must be a string under "
                f"{METADATA_MAX_VALUE_LENGTH} characters",
                param="metadata",
            )
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > METADATA_MAX_KEYS:
        raise StripeApiError(
            400,
            f"Metadata can have up to {METADATA_MAX_KEYS} keys, but you've set "
            f"{len(merged)}. Email us at support+metadata@stripe.com for more information.",
            param="metadata",
        )
    return merged


def created_filter(params: dict[str, Any], name: str = "created") -> Callable[[int], bool]:
    """``created=<ts>`` or ``created[gt|gte|lt|lte]=<ts>`` as a predicate on timestamps."""
    value = params.get(name)
    if value is None:
        return lambda _: True
    if isinstance(value, str):
        exact = integer(params, name)
        return lambda created: created == exact
    if not isinstance(value, dict) or not set(value) <= {"gt", "gte", "lt", "lte"}:
        raise StripeApiError(400, f"Invalid {name}: use gt, gte, lt or lte", param=name)
    bounds = {op: integer(value, op) for op in value}
    checks = {
        "gt": lambda c, b: c > b,
        "gte": lambda c, b: c >= b,
        "lt": lambda c, b: c < b,
        "lte": lambda c, b: c <= b,
    }
    return lambda created: all(
        checks[op](created, bound) for op, bound in bounds.items() if bound is not None
    )


def json_number(value: Decimal) -> int | float:
    """A Decimal for a JSON body: Stripe sends percentages as JSON numbers."""
    return int(value) if value == value.to_integral_value() else float(value)
