"""``POST /v1/webhooks/{connection}``: vendor-native webhooks, each checked by its signature.

- ``stripe``: ``Stripe-Signature`` (HMAC-SHA256 of ``"<t>.<body>"`` with the endpoint's
  ``whsec_...`` secret, timestamp tolerance). ``invoice.finalized``, ``invoice.paid`` and
  ``payment_intent.succeeded`` become the inbox events the BillingPoller makes, with the same
  source and ids, so a delivery and a poll of one record are one event. Like the poller, the
  receiver fetches the record's current state from Stripe rather than trusting the snapshot.
- ``kantata``: Kantata signs nothing, so its relay signs with the generic scheme below; the
  Subscribed Events shape becomes delivery events exactly as the DeliveryPoller makes them.
- ``hmac``: any sender of CloudEvents (one, or a JSON array) signing with the generic scheme.

Generic scheme: ``X-Q2C-Timestamp: <unix seconds>`` and ``X-Q2C-Signature:
sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` (several comma-separated signatures are
allowed while a secret is rolled; header names are configurable). A signature is checked
before the timestamp, so a forger never learns whether its timestamp would pass.

A bad or missing signature, or a timestamp outside the tolerance window (a replay), is 401.
Redelivery is harmless: events keep their ids and the inbox drops what it has seen.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from q2c.api.ingest import EventReceipt, read_body, receipts_of
from q2c.api.problems import ApiError, problem_responses
from q2c.bootstrap import Hub
from q2c.canonical.events import CloudEvent, new_event
from q2c.canonical.inbound import validate_events
from q2c.connectors.stripe.webhooks import (
    TimestampOutsideToleranceError,
    WebhookSignatureError,
    verify_signature,
)
from q2c.errors import BusinessFixError, Q2CError, RetriableError
from q2c.errors import ValidationError as Q2CValidationError

__all__ = [
    "SignatureRejectedError",
    "WebhookEndpoint",
    "WebhookReceipt",
    "sign_hmac",
    "verify_hmac",
    "webhook_endpoints",
    "webhooks_router",
]

_CHALLENGE = 'Signature realm="q2c-webhooks"'


class SignatureRejectedError(Exception):
    """A delivery whose signature or timestamp q2c refuses; the message is safe to return."""


def _digest(payload: bytes, secret: str, timestamp: str) -> str:
    signed = timestamp.encode() + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign_hmac(
    payload: bytes,
    secret: str,
    timestamp: int,
    *,
    signature_header: str = "X-Q2C-Signature",
    timestamp_header: str = "X-Q2C-Timestamp",
) -> dict[str, str]:
    """The headers a generic sender adds to ``payload`` (for senders, relays and tests)."""
    return {
        timestamp_header: str(timestamp),
        signature_header: f"sha256={_digest(payload, secret, str(timestamp))}",
    }


def verify_hmac(
    payload: bytes,
    *,
    signature: str | None,
    timestamp: str | None,
    secret: str,
    tolerance_seconds: int,
    now: int,
) -> None:
    """Raise ``SignatureRejectedError`` unless a ``sha256=`` signature matches within tolerance."""
    if not signature:
        raise SignatureRejectedError("the delivery carries no signature header")
    if not timestamp or not timestamp.strip().isdigit():
        raise SignatureRejectedError("the delivery's timestamp header is missing or not a number")
    candidates = [
        value.strip()
        for scheme, _, value in (part.strip().partition("=") for part in signature.split(","))
        if scheme == "sha256"
    ]
    if not candidates:
        raise SignatureRejectedError("the signature header carries no sha256=... signature")
    expected = _digest(payload, secret, timestamp.strip())
    matched = [hmac.compare_digest(expected, candidate) for candidate in candidates]
    if not any(matched):
        raise SignatureRejectedError("the delivery's signature does not match its body")
    age = now - int(timestamp)
    if abs(age) > tolerance_seconds:
        when = "old" if age > 0 else "far in the future"
        raise SignatureRejectedError(
            f"the delivery's timestamp is too {when} ({abs(age)} s, tolerance "
            f"{tolerance_seconds} s): refused as a possible replay"
        )


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    name: str
    kind: str
    system: str | None
    secret: Callable[[], str | None]  # late: a sandbox's secret exists once it is connected
    tolerance_seconds: int = 300
    signature_header: str = "X-Q2C-Signature"
    timestamp_header: str = "X-Q2C-Timestamp"


class WebhookReceipt(BaseModel):
    connection: str
    received: str
    ignored: bool
    accepted: int
    duplicates: int
    results: list[EventReceipt]


def webhook_endpoints(hub: Hub) -> dict[str, WebhookEndpoint]:
    """Configured endpoints (``api.webhooks``) plus one per Stripe system that has a secret."""
    config = hub.config

    def system_secret(system: str) -> Callable[[], str | None]:
        def resolve() -> str | None:
            auth = config.systems[system].auth
            held = auth.secrets.get("webhook_secret") if auth is not None else None
            if held is not None:
                return held.get_secret_value()
            sandbox = hub.connections.sandboxes.get(system)
            value = getattr(sandbox, "webhook_secret", None)
            return str(value) if value else None

        return resolve

    endpoints: dict[str, WebhookEndpoint] = {}
    for name, system in config.systems.items():
        if system.vendor == "stripe":
            endpoints[name] = WebhookEndpoint(name, "stripe", name, system_secret(name))
    for name, hook in config.api.webhooks.items():
        system_name = (hook.system or name) if hook.kind != "hmac" else None
        held = hook.secret
        secret = _fixed(held.get_secret_value()) if held else system_secret(str(system_name))
        endpoints[name] = WebhookEndpoint(
            name,
            hook.kind,
            system_name,
            secret,
            hook.tolerance_seconds,
            hook.signature_header,
            hook.timestamp_header,
        )
    return endpoints


def _fixed(value: str) -> Callable[[], str | None]:
    return lambda: value


def _rejected(detail: str) -> ApiError:
    return ApiError(
        401, detail, title="Signature rejected", headers={"WWW-Authenticate": _CHALLENGE}
    )


def _vendor_problem(error: Q2CError) -> ApiError:
    if isinstance(error, RetriableError):
        return ApiError(
            503,
            f"{error.message}; q2c could not fetch the record, send it again later",
            headers={"Retry-After": "60"},
        )
    if isinstance(error, BusinessFixError):
        return ApiError(422, error.message, title="Unprocessable delivery")
    return ApiError(502, error.message, title="Vendor call failed")


def _stripe_events(hub: Hub, endpoint: WebhookEndpoint, event: dict[str, Any]) -> list[CloudEvent]:
    """The canonical events of one Stripe event, as the BillingPoller would make them."""
    from q2c.connectors.stripe.polling import payments_from_event

    billing = hub.connections.by_system.get(endpoint.system or "")
    if billing is None:
        raise ApiError(404, f"no connected Stripe system {endpoint.system!r}")
    event_type = event.get("type")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise ApiError(422, "the Stripe event has no data.object with an id")
    system = billing.system
    source = f"urn:q2c:{system}:poller"
    if event_type == "invoice.finalized":
        if not (obj.get("lines") or {}).get("data"):
            return []  # an empty invoice: no money to post, as the poller skips it
        invoice = billing.fetch_invoice(obj["id"])
        key = invoice.xrefs.get(system, invoice.id)
        return [
            new_event(
                "invoice.finalized",
                invoice,
                source=source,
                subject=key,
                event_id=f"{key}:finalized",
            )
        ]
    payments = payments_from_event(billing.api, event, system=system)
    events = []
    for payment in payments:
        key = payment.xrefs.get(system, payment.id)
        events.append(
            new_event(
                "payment.received", payment, source=source, subject=key, event_id=f"{key}:received"
            )
        )
    return events


def _kantata_events(hub: Hub, endpoint: WebhookEndpoint, body: bytes) -> list[CloudEvent]:
    from q2c.connectors.kantata.webhooks import parse_change_events
    from q2c.runtime.poller import delivery_event

    psa = hub.connections.by_system.get(endpoint.system or "")
    if psa is None or not hasattr(psa, "delivery_for"):
        raise ApiError(404, f"no connected Kantata system {endpoint.system!r}")
    notices = parse_change_events(body)
    records = psa.delivery_for(notices)
    return [delivery_event(record, psa.system, hub.xref) for record in records]


def _generic_events(body: bytes) -> list[CloudEvent]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}", title="Malformed JSON") from None
    items = parsed if isinstance(parsed, list) else [parsed]
    if not items:
        raise ApiError(400, "the batch holds no events", title="Empty batch")
    events, errors = validate_events(items)
    if errors:
        raise ApiError(422, errors[0]["message"], title="Invalid event", errors=errors)
    return events


def webhooks_router(
    hub: Hub, *, max_body_bytes: int, now: Callable[[], float] = time.time
) -> APIRouter:
    router = APIRouter()
    endpoints = webhook_endpoints(hub)

    @router.post(
        "/v1/webhooks/{connection}",
        response_model=WebhookReceipt,
        tags=["webhooks"],
        summary="Vendor-native webhook, authenticated by the vendor's signature",
        responses=problem_responses(400, 401, 404, 413, 422, 502, 503),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {}}},
            }
        },
    )
    async def receive(connection: str, request: Request) -> WebhookReceipt:
        endpoint = endpoints.get(connection)
        if endpoint is None:
            raise ApiError(404, f"no webhook endpoint {connection!r} is configured")
        body = await read_body(request, max_body_bytes)
        secret = endpoint.secret()
        if not secret:
            raise _rejected(f"no signing secret is configured for webhook {connection!r}")
        received, ignored = "cloudevents", False
        try:
            if endpoint.kind == "stripe":
                event = verify_signature(
                    body,
                    request.headers.get("stripe-signature", ""),
                    secret,
                    tolerance_seconds=endpoint.tolerance_seconds,
                    now=int(now()),
                )
                received = str(event.get("type") or "unknown")
            else:
                verify_hmac(
                    body,
                    signature=request.headers.get(endpoint.signature_header),
                    timestamp=request.headers.get(endpoint.timestamp_header),
                    secret=secret,
                    tolerance_seconds=endpoint.tolerance_seconds,
                    now=int(now()),
                )
        except TimestampOutsideToleranceError as exc:
            raise _rejected(f"{exc.message}: refused as a possible replay") from None
        except WebhookSignatureError as exc:
            raise _rejected(exc.message) from None
        except SignatureRejectedError as exc:
            raise _rejected(str(exc)) from None
        except Q2CValidationError as exc:  # signed, but not a Stripe event object
            raise ApiError(400, exc.message, title="Malformed delivery") from None
        try:
            if endpoint.kind == "stripe":
                events = await run_in_threadpool(_stripe_events, hub, endpoint, event)
                ignored = not events
            elif endpoint.kind == "kantata":
                received = "kantata.subscribed_events"
                events = await run_in_threadpool(_kantata_events, hub, endpoint, body)
                ignored = not events
            else:
                events = _generic_events(body)
        except Q2CValidationError as exc:
            raise ApiError(422, exc.message, title="Unprocessable delivery") from None
        except Q2CError as exc:
            raise _vendor_problem(exc) from None
        receipts = await run_in_threadpool(hub.inbox.accept, events) if events else []
        await run_in_threadpool(
            hub.payloads.record_inbound,
            system=endpoint.system or connection,
            operation=f"POST /v1/webhooks/{connection} ({received})",
            body=body,
            correlation_id=events[0].correlationid if events else None,
            headers=dict(request.headers),
            status=200,
        )
        summary = receipts_of(receipts, events)
        return WebhookReceipt(
            connection=connection,
            received=received,
            ignored=ignored,
            accepted=summary.accepted,
            duplicates=summary.duplicates,
            results=summary.results,
        )

    return router
