"""What both sides of the Stripe wire agree on: API version, error documents, amounts.

Errors are Stripe's error object ``{"error": {"type", "code", "message", "param", "doc_url",
"request_log_url"}}``. Amounts are integers in the currency's smallest unit *as Stripe
defines it*, which is not always ISO 4217's minor unit: Stripe treats MGA and UGX as
zero-decimal (ISO: two decimals) and represents ISK with two decimals (ISO: none), so
conversion goes through ``STRIPE_EXPONENTS`` and never through the ISO table alone.
Currency codes travel in lower case.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from q2c.canonical.money import MINOR_UNITS, Money

__all__ = [
    "API_VERSION",
    "THREE_DECIMAL_CURRENCIES",
    "ZERO_DECIMAL_CURRENCIES",
    "StripeApiError",
    "UnsupportedAmountError",
    "doc_url",
    "error_body",
    "from_stripe_amount",
    "stripe_error_body",
    "stripe_exponent",
    "to_stripe_amount",
]

# The version q2c's adapter was written against (sent as ``Stripe-Version``); the emulator
# answers in the shape of this version whatever the caller asks for.
API_VERSION = "2026-10-28.endive"

# https://docs.stripe.com/currencies#zero-decimal and #three-decimal (special cases below)
ZERO_DECIMAL_CURRENCIES = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()  # noqa: SIM905
)
THREE_DECIMAL_CURRENCIES = frozenset("BHD JOD KWD OMR TND".split())  # noqa: SIM905
# ISK is zero-decimal in ISO 4217 but Stripe keeps it two-decimal for backwards compatibility.
_SPECIAL_TWO_DECIMAL = frozenset({"ISK"})


class UnsupportedAmountError(ValueError):
    """An amount or currency Stripe cannot represent."""


def stripe_exponent(currency: str) -> int:
    """Decimal places of Stripe's smallest unit for ``currency`` (USD 2, JPY 0, KWD 3)."""
    code = currency.upper()
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    if code in _SPECIAL_TWO_DECIMAL:
        return 2
    iso = MINOR_UNITS.get(code)
    if iso is None or iso > 3:
        raise UnsupportedAmountError(f"Stripe does not support the currency {code}")
    return 2


def to_stripe_amount(money: Money) -> int:
    """``money`` as Stripe's integer amount; refuses precision Stripe cannot hold."""
    exponent = stripe_exponent(money.currency)
    scaled = money.amount.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise UnsupportedAmountError(
            f"{money} has more decimals than Stripe's smallest unit of {money.currency} "
            f"({exponent} decimal places)"
        )
    return int(scaled)


def from_stripe_amount(amount: int, currency: str) -> Money:
    """A Stripe integer amount in ``currency`` (any case) as exact Money."""
    code = currency.upper()
    return Money(Decimal(amount).scaleb(-stripe_exponent(code)), code)


def doc_url(code: str) -> str:
    return f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"


def error_body(
    error_type: str,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    request_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Stripe's error object; keys Stripe leaves out when empty are left out here too."""
    error: dict[str, Any] = {}
    if code:
        error["code"] = code
        error["doc_url"] = doc_url(code)
    error["message"] = message
    if param:
        error["param"] = param
    if request_id:
        error["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}?t=0"
    error["type"] = error_type
    error.update(extra or {})
    return {"error": error}


@dataclass
class StripeApiError(Exception):
    """Raised inside the emulator; becomes Stripe's error response."""

    status: int
    message: str
    error_type: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        return error_body(
            self.error_type,
            self.message,
            code=self.code,
            param=self.param,
            request_id=request_id,
            extra=self.extra,
        )


def stripe_error_body(status: int, kind: str) -> tuple[bytes, dict[str, str]]:
    """Body for an injected fault (``FaultInjector(error_body=...)``), as Stripe words it."""
    if status == 429:
        body = error_body(
            "invalid_request_error",
            "Request rate limit exceeded. Learn more about rate limits here "
            "https://stripe.com/docs/rate-limits.",
            code="rate_limit",
        )
    else:
        body = error_body(
            "api_error",
            f"An unknown error occurred ({kind}). Please try again later.",
        )
    headers = {"content-type": "application/json"}
    if status >= 500:
        headers["stripe-should-retry"] = "true"
    return json.dumps(body).encode(), headers
