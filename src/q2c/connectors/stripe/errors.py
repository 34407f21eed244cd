"""Stripe's error objects translated into q2c errors, at the edge.

Stripe answers every failure with ``{"error": {"type", "code", "message", "param", ...}}``.
The translation keeps Stripe's own words (an operator searching Stripe's docs finds them) and
names the parameter to fix:

    400 invalid_request_error              -> ValidationError (param named)
    400 idempotency_error                  -> IdempotencyConflictError (a FatalError: q2c
                                              reused a key for a different request)
    402 card_error                         -> BusinessFixError (decline code named)
    404 resource_missing                   -> NotFoundError
    401                                    -> AuthError
    403 (restricted key lacks permission)  -> AuthError
    409 (idempotency key in use, lock)     -> RetriableError
    429 rate_limit / lock_timeout          -> RateLimitedError (Retry-After when sent)
    5xx, api_error                         -> RetriableError

``RestClient`` classifies 401, 429 and 5xx itself before calling ``translate_error``; the
translator handles them too so it is complete on its own.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from q2c.connectors.http import parse_retry_after
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

__all__ = ["IdempotencyConflictError", "stripe_error", "translate_error"]

SYSTEM = "stripe"
_SUBJECTS = {
    "customers": "customer",
    "invoiceitems": "invoice item",
    "invoices": "invoice",
    "tax_rates": "tax rate",
    "products": "product",
    "prices": "price",
    "subscriptions": "subscription",
    "payment_intents": "payment intent",
    "meter_events": "meter event",
    "events": "event list",
    "invoice_payments": "invoice payment",
}


class IdempotencyConflictError(FatalError):
    """Stripe saw an Idempotency-Key again with different parameters or another endpoint."""

    default_fix = (
        "The request differs from the one first sent under the same key; q2c looks the "
        "record up before retrying. If this persists, contact the integration team."
    )


def stripe_error(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of a Stripe error response (empty if the body is not one)."""
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _subject(url: httpx.URL) -> str:
    """What the call was about, in words: "invoice", "invoice item", "customer"."""
    parts = [p for p in url.path.split("/") if p]
    for part in reversed(parts):
        if part in _SUBJECTS:
            return _SUBJECTS[part]
    return "request"


def translate_error(response: httpx.Response) -> Q2CError:
    """Map one Stripe error response to the q2c error the runtime knows how to handle."""
    status = response.status_code
    error = stripe_error(response)
    error_type = str(error.get("type") or "")
    code = str(error.get("code") or "")
    param = error.get("param")
    text = str(error.get("message") or response.reason_phrase or "no message given")
    subject = _subject(response.request.url)
    request_id = response.headers.get("Request-Id", "")
    common: dict[str, Any] = {
        "detail": f"{response.request.method} {response.request.url} -> {status} "
        f"{error_type}/{code or '-'} (request {request_id or '?'}): {response.text[:2000]}",
        "system": SYSTEM,
        "field": str(param) if param else None,
        "context": {
            "stripe_type": error_type,
            "stripe_code": code,
            "stripe_param": param,
            "request_id": request_id,
            "doc_url": error.get("doc_url"),
            "subject": subject,
        },
    }
    where = f" (parameter '{param}')" if param else ""
    if status == 429 or code in ("rate_limit", "lock_timeout"):
        return RateLimitedError(
            "Stripe asked q2c to slow down (rate limit); q2c will retry",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            **common,
        )
    if status >= 500 or error_type == "api_error":
        return RetriableError(f"Stripe had a server error ({status}): {text}", **common)
    if status == 409:
        return RetriableError(
            f"Stripe was busy with the same {subject} in another request: {text}", **common
        )
    if status == 401:
        return AuthError(f"Stripe rejected q2c's API key: {text}", **common)
    if status == 403:
        return AuthError(
            f"The Stripe API key q2c uses may not access this {subject}: {text}",
            suggested_fix="Give the restricted key the permission Stripe names, then replay.",
            **common,
        )
    if error_type == "idempotency_error":
        return IdempotencyConflictError(
            f"Stripe refused to repeat the {subject} request: {text}", **common
        )
    if status == 404 or code == "resource_missing":
        return NotFoundError(f"Stripe has no such {subject}: {text}", **common)
    if status == 402 or error_type == "card_error":
        decline = error.get("decline_code")
        return BusinessFixError(
            f"Stripe could not collect the payment{where}: {text}"
            + (f" (decline code {decline})" if decline else ""),
            suggested_fix="Ask the customer to update their payment method in Stripe, then replay.",
            **common,
        )
    if error_type == "invalid_request_error":
        return ValidationError(f"Stripe rejected the {subject}{where}: {text}", **common)
    return BusinessFixError(f"Stripe refused the {subject}{where}: {text}", **common)
