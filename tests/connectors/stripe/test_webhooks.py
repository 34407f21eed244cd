"""Stripe-Signature: signing and verification as Stripe documents, checked against stripe."""

from __future__ import annotations

import json

import pytest
import stripe

from q2c.connectors.stripe.sandbox import StripeSandbox
from q2c.connectors.stripe.webhooks import (
    MalformedSignatureError,
    SignatureMismatchError,
    TimestampOutsideToleranceError,
    WebhookSignatureError,
    sign_payload,
    verify_signature,
)
from q2c.errors import AuthError, ValidationError
from tests.connectors.stripe.helpers import Clock, Wire

SECRET = "whsec_test_secret_for_q2c"
NOW = 1_767_300_000
PAYLOAD = json.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid"}).encode()


def test_good_signature_returns_the_event() -> None:
    header = sign_payload(PAYLOAD, SECRET, NOW)
    assert header.startswith(f"t={NOW},v1=")
    event = verify_signature(PAYLOAD, header, SECRET, now=NOW + 10)
    assert event["type"] == "invoice.paid"


def test_signature_agrees_with_the_official_library() -> None:
    ours = sign_payload(PAYLOAD, SECRET, NOW)
    theirs = stripe.WebhookSignature.generate_signature_header(
        PAYLOAD.decode(), SECRET, timestamp=NOW
    )
    assert ours == theirs
    stripe.WebhookSignature.verify_header(PAYLOAD, ours, SECRET, tolerance=None)


def test_tampered_payload_or_wrong_secret_is_refused() -> None:
    header = sign_payload(PAYLOAD, SECRET, NOW)
    with pytest.raises(SignatureMismatchError):
        verify_signature(PAYLOAD.replace(b"paid", b"void"), header, SECRET, now=NOW)
    with pytest.raises(SignatureMismatchError) as info:
        verify_signature(PAYLOAD, header, "whsec_other", now=NOW)
    assert isinstance(info.value, AuthError)
    assert info.value.message and info.value.detail


def test_stale_and_future_timestamps_are_refused() -> None:
    header = sign_payload(PAYLOAD, SECRET, NOW)
    verify_signature(PAYLOAD, header, SECRET, now=NOW + 300)  # at the edge: accepted
    with pytest.raises(TimestampOutsideToleranceError) as stale:
        verify_signature(PAYLOAD, header, SECRET, now=NOW + 301)
    assert "too old" in stale.value.message
    with pytest.raises(TimestampOutsideToleranceError) as future:
        verify_signature(PAYLOAD, header, SECRET, now=NOW - 301)
    assert "future" in future.value.message
    verify_signature(PAYLOAD, header, SECRET, now=NOW + 900, tolerance_seconds=900)


def test_signature_checked_before_timestamp() -> None:
    forged = sign_payload(PAYLOAD, "whsec_forger", NOW - 10_000)
    with pytest.raises(SignatureMismatchError):
        verify_signature(PAYLOAD, forged, SECRET, now=NOW)


def test_any_matching_v1_among_several_is_enough() -> None:
    good = sign_payload(PAYLOAD, SECRET, NOW).split(",")[1]
    old = sign_payload(PAYLOAD, "whsec_rolled_away", NOW).split(",")[1]
    header = (
        f"t={NOW},{old},{good},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
    )
    assert verify_signature(PAYLOAD, header, SECRET, now=NOW)["id"] == "evt_1"
    with pytest.raises(SignatureMismatchError):
        verify_signature(PAYLOAD, f"t={NOW},{old}", SECRET, now=NOW)


@pytest.mark.parametrize(
    "header",
    ["", "garbage", f"v1={'0' * 64}", f"t=soon,v1={'0' * 64}", f"t={NOW},v0={'0' * 64}"],
)
def test_malformed_headers_are_refused(header: str) -> None:
    with pytest.raises(MalformedSignatureError) as info:
        verify_signature(PAYLOAD, header, SECRET, now=NOW)
    assert isinstance(info.value, WebhookSignatureError)


def test_signed_non_json_is_a_validation_error() -> None:
    header = sign_payload(b"not json", SECRET, NOW)
    with pytest.raises(ValidationError):
        verify_signature(b"not json", header, SECRET, now=NOW)


def test_sandbox_deliveries_verify(sandbox: StripeSandbox, wire: Wire, clock: Clock) -> None:
    wire.ok(wire.post("/v1/customers", {"name": "Hook Ltd"}))
    event = sandbox.events("customer.created")[0]
    body, headers = sandbox.webhook_delivery(event)
    verified = verify_signature(
        body, headers["Stripe-Signature"], sandbox.webhook_secret, now=int(clock.now) + 5
    )
    assert verified["id"] == event["id"]
    assert verified["data"]["object"]["name"] == "Hook Ltd"
    stripe.Webhook.construct_event(
        body, headers["Stripe-Signature"], sandbox.webhook_secret, tolerance=10**10
    )
