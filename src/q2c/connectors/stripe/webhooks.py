"""Stripe webhook signatures (``Stripe-Signature``), signed and verified as Stripe documents.

Stripe signs each delivery with the endpoint's secret (``whsec_...``): the header is
``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``, possibly with several ``v1``
entries (while a secret is being rolled) and ``v0`` entries (test-mode legacy scheme, ignored).
Verification:

1. parse the header: one integer ``t`` and at least one ``v1`` (else ``MalformedSignatureError``);
2. compare the expected signature with each ``v1`` in constant time
   (else ``SignatureMismatchError``);
3. check the timestamp is within ``tolerance_seconds`` of ``now`` (else
   ``TimestampOutsideToleranceError``). Stripe's libraries only refuse old timestamps; q2c also
   refuses ones from further in the future than the tolerance, since a sender whose clock
   runs that far ahead is as suspect as a replay.

The order is Stripe's (signature before timestamp), so a forged request never learns
whether its timestamp would have passed. ``now`` is passed in: no clock in this module.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from q2c.errors import AuthError, ValidationError

__all__ = [
    "MalformedSignatureError",
    "SignatureMismatchError",
    "TimestampOutsideToleranceError",
    "WebhookSignatureError",
    "sign_payload",
    "verify_signature",
]

SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


class WebhookSignatureError(AuthError):
    """A webhook delivery whose ``Stripe-Signature`` does not prove it came from Stripe."""

    default_fix = (
        "Check that the connection's webhook signing secret (whsec_...) matches the endpoint "
        "in the Stripe Dashboard, and that this server's clock is correct."
    )


class MalformedSignatureError(WebhookSignatureError):
    """The header is missing, unreadable, or carries no ``v1`` signature."""


class SignatureMismatchError(WebhookSignatureError):
    """No ``v1`` signature matches the payload under the configured secret."""


class TimestampOutsideToleranceError(WebhookSignatureError):
    """The signed timestamp is too old (a replay) or too far in the future."""


def _signature(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign_payload(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header value Stripe would send for ``payload``."""
    return f"t={timestamp},{SCHEME}={_signature(payload, secret, timestamp)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise MalformedSignatureError(
                "The Stripe-Signature header is not in Stripe's format (t=...,v1=...)",
                detail=f"item {item!r} has no '='",
                field="Stripe-Signature",
                system="stripe",
            )
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise MalformedSignatureError(
                    "The Stripe-Signature header has a timestamp that is not a number",
                    detail=f"t={value!r}",
                    field="Stripe-Signature",
                    system="stripe",
                ) from None
        elif key == SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise MalformedSignatureError(
            "The Stripe-Signature header carries no timestamp (t=...)",
            detail=f"header {header[:200]!r}",
            field="Stripe-Signature",
            system="stripe",
        )
    if not signatures:
        raise MalformedSignatureError(
            f"The Stripe-Signature header carries no {SCHEME} signature",
            detail=f"header {header[:200]!r}: no signatures found with expected scheme {SCHEME}",
            field="Stripe-Signature",
            system="stripe",
        )
    return timestamp, signatures


def verify_signature(
    payload: bytes,
    header: str,
    secret: str,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: int,
) -> dict[str, Any]:
    """Check a delivery's signature and age; return the event it carries (parsed JSON)."""
    if tolerance_seconds <= 0:
        raise ValueError("tolerance_seconds must be positive")
    if not secret:
        raise MalformedSignatureError(
            "No webhook signing secret is configured for this Stripe connection",
            system="stripe",
        )
    if not header:
        raise MalformedSignatureError(
            "The webhook delivery has no Stripe-Signature header",
            field="Stripe-Signature",
            system="stripe",
        )
    timestamp, signatures = _parse(header)
    expected = _signature(payload, secret, timestamp)
    # every candidate is compared (no early exit), each in constant time
    matched = [hmac.compare_digest(expected, candidate) for candidate in signatures]
    if not any(matched):
        raise SignatureMismatchError(
            "The webhook delivery's signature does not match its payload",
            detail=f"no signatures found matching the expected signature for payload "
            f"({len(signatures)} {SCHEME} signature(s) checked, t={timestamp})",
            field="Stripe-Signature",
            system="stripe",
        )
    age = now - timestamp
    if abs(age) > tolerance_seconds:
        when = "old" if age > 0 else "far in the future"
        raise TimestampOutsideToleranceError(
            f"The webhook delivery's timestamp is too {when} "
            f"({abs(age)} s, tolerance {tolerance_seconds} s)",
            detail=f"timestamp outside the tolerance zone (t={timestamp}, now={now})",
            field="Stripe-Signature",
            system="stripe",
        )
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise ValidationError(
            "The signed webhook delivery is not JSON",
            detail=str(exc),
            system="stripe",
        ) from exc
    if not isinstance(event, dict):
        raise ValidationError(
            "The signed webhook delivery is not a Stripe event object", system="stripe"
        )
    return event
