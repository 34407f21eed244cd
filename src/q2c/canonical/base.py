"""Shared building blocks of the canonical model: the base class and exact-number types."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from q2c.canonical.money import MINOR_UNITS, parse_decimal

__all__ = [
    "SCHEMA_VERSION",
    "CanonicalModel",
    "CanonicalObject",
    "CurrencyCode",
    "ExactDecimal",
    "NonNegativeDecimal",
]

SCHEMA_VERSION = 1


def _exact(value: Any) -> Decimal:
    return parse_decimal(value, field="value")


def _non_negative(value: Any) -> Decimal:
    result = parse_decimal(value, field="value")
    if result < 0:
        raise ValueError(f"must not be negative, got {result}")
    return result


def _currency(value: Any) -> str:
    if not isinstance(value, str) or value not in MINOR_UNITS:
        raise ValueError(f"unknown currency {value!r}: use an active ISO-4217 code such as USD")
    return value


_DECIMAL_SCHEMA = WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$"})
# fixed-point, never exponent notation ("1E-7"), which the published schema refuses
_AS_STRING = PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="always")

ExactDecimal = Annotated[Decimal, BeforeValidator(_exact), _AS_STRING, _DECIMAL_SCHEMA]
"""A Decimal that arrives as a string or int, never a float, and leaves as a string."""

NonNegativeDecimal = Annotated[Decimal, BeforeValidator(_non_negative), _AS_STRING, _DECIMAL_SCHEMA]

CurrencyCode = Annotated[
    str, BeforeValidator(_currency), WithJsonSchema({"type": "string", "pattern": "^[A-Z]{3}$"})
]


class CanonicalModel(BaseModel):
    """Immutable, strict about unknown keys: a typo in a payload is an error, not a loss."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class CanonicalObject(CanonicalModel):
    """A business object that lives in several systems.

    ``xrefs`` maps system name to that system's id for this object (``{"netsuite": "1042"}``).
    """

    id: str = Field(min_length=1, max_length=200)
    schema_version: int = SCHEMA_VERSION
    xrefs: dict[str, str] = Field(default_factory=dict)
