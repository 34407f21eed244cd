"""An emulated Stripe API (v1), as an ASGI app.

Every request goes through what Stripe does before and around an endpoint:

* authentication with the secret key, as ``Authorization: Bearer sk_test_...`` or HTTP Basic
  with the key as user name; a missing, unknown or expired (rolled) key is a 401 in Stripe's
  words;
* ``Stripe-Version`` is checked for form (the emulator answers in the shape of
  ``wire.API_VERSION`` whichever version is asked for);
* parameters are read from the query (GET, DELETE) or the form body (POST); unknown ones are
  refused (``parameter_unknown``); ``expand[]`` expands ids in the response;
* ``Idempotency-Key`` on POST: the first response (2xx, 402 and 5xx; not a request refused
  by validation) is stored for 24 hours; the same key with the same endpoint and parameters
  replays it with ``Idempotent-Replayed: true``; with other parameters or another endpoint
  it is a 400 ``idempotency_error``; while the first request is still running, a 409
  ``idempotency_key_in_use``;
* every response carries ``Request-Id`` and ``Stripe-Version``.

Faults (429, 5xx, timeouts) are injected around this app by ``FaultInjector`` (see
``sandbox.py``), with Stripe's error bodies.
"""

from __future__ import annotations

import base64
import json
import re
import string
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response

from q2c.connectors.stripe import (
    catalog,
    customers,
    events,
    forms,
    invoice_items,
    invoicing,
    payments,
    subscriptions,
)
from q2c.connectors.stripe.api import Call, Route, check_params, string_list
from q2c.connectors.stripe.state import IdempotentResult, StripeState
from q2c.connectors.stripe.wire import API_VERSION, StripeApiError

__all__ = ["ApiKeys", "StripeApi", "all_routes"]

_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")
_STORED_STATUSES = {200, 402}
MAX_IDEMPOTENCY_KEY_LENGTH = 255
_REQUEST_ID_ALPHABET = string.ascii_letters + string.digits


def all_routes() -> list[Route]:
    return [
        *customers.routes(),
        *catalog.routes(),
        *events.routes(),
        *invoice_items.routes(),
        *invoicing.routes(),
        *payments.routes(),
        *subscriptions.routes(),
    ]


@dataclass
class ApiKeys:
    """The account's secret keys: the active ones and those rolled (expired)."""

    active: set[str] = field(default_factory=set)
    expired: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def roll(self, old: str, new: str) -> None:
        """Stripe's "roll key": the old key stops working, a new one takes its place."""
        with self._lock:
            self.active.discard(old)
            self.expired.add(old)
            self.active.add(new)


def _redacted(key: str) -> str:
    return f"{key[:8]}{'*' * 12}{key[-4:]}" if len(key) > 12 else "****"


@dataclass
class _Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class StripeApi:
    """The ASGI app: authentication, parameters, idempotency, routing, Stripe's errors."""

    def __init__(self, state: StripeState, keys: ApiKeys, routes: list[Route] | None = None):
        self.state = state
        self.keys = keys
        self.routes = [(route, route.compiled()) for route in (routes or all_routes())]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        response = self.handle(
            request.method,
            request.url.path,
            request.url.query,
            {k.lower(): v for k, v in request.headers.items()},
            body,
        )
        await response(scope, receive, send)

    # --- the request pipeline --------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> Response:
        state = self.state
        with state.lock:
            state.requests += 1
        request_id = f"req_{state.token(14, _REQUEST_ID_ALPHABET)}"
        key = headers.get("idempotency-key") if method == "POST" else None
        try:
            self._authenticate(headers)
            version = self._version(headers)
            route, args = self._route(method, path)
            params = forms.decode(query) if query else {}
            if method == "POST" and body:
                params.update(forms.decode(body))
            check_params(params, route.params)
            expand = string_list(params, "expand")
            params.pop("expand", None)
        except forms.FormError as exc:
            return self._error(
                StripeApiError(400, str(exc), param=exc.field), request_id, API_VERSION, key
            )
        except StripeApiError as exc:
            return self._error(exc, request_id, API_VERSION, key)
        call = Call(state, method, path, params, args, request_id, key, expand)
        if key is None:
            return self._respond(self._run(route, call), request_id, version, None)
        return self._idempotent(route, call, key, version)

    def _authenticate(self, headers: dict[str, str]) -> None:
        header = headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = credential.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(credential).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                key = ""
        auth_headers = {"www-authenticate": 'Bearer realm="Stripe"'}
        if not key:
            raise StripeApiError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for "
                "details, or we can help at https://support.stripe.com/.",
                headers=auth_headers,
            )
        if key in self.keys.expired:
            raise StripeApiError(
                401,
                f"Expired API Key provided: {_redacted(key)}",
                code="api_key_expired",
                headers=auth_headers,
            )
        if key not in self.keys.active:
            raise StripeApiError(
                401, f"Invalid API Key provided: {_redacted(key)}", headers=auth_headers
            )

    @staticmethod
    def _version(headers: dict[str, str]) -> str:
        version = headers.get("stripe-version")
        if version is None:
            return API_VERSION
        if not _VERSION.match(version):
            raise StripeApiError(
                400,
                f"Invalid Stripe API version: {version}",
                code="api_version_invalid",
            )
        return version

    def _route(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        for route, pattern in self.routes:
            if route.method != method:
                continue
            match = pattern.match(path)
            if match:
                return route, {k: unquote(v) for k, v in match.groupdict().items()}
        raise StripeApiError(
            404,
            f"Unrecognized request URL ({method}: {path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/.",
        )

    def _run(self, route: Route, call: Call) -> _Reply:
        """Run the endpoint; one at a time, so the account changes like a serial ledger."""
        try:
            with self.state.lock:
                return _Reply(200, self.state.expand(route.handler(call), call.expand))
        except StripeApiError as exc:
            return _Reply(exc.status, exc.body(call.request_id), exc.headers)
        except Exception as exc:  # a bug in the emulator looks like Stripe's api_error
            error = StripeApiError(
                500,
                f"An unknown error occurred ({type(exc).__name__}: {exc})",
                error_type="api_error",
            )
            return _Reply(500, error.body(call.request_id))

    def _idempotent(self, route: Route, call: Call, key: str, version: str) -> Response:
        state = self.state
        if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
            return self._error(
                StripeApiError(
                    400,
                    f"Idempotency keys can be at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters "
                    "long.",
                    error_type="idempotency_error",
                ),
                call.request_id,
                version,
                key,
            )
        with state.lock:
            found = state.idempotent_result(key)
            if found is None:
                state.idempotency[key] = IdempotentResult(
                    call.method, call.path, call.params, call.request_id, state.clock()
                )
        if found is not None:
            return self._replay(found, call, key, version)
        reply = self._run(route, call)
        with state.lock:
            if reply.status in _STORED_STATUSES or reply.status >= 500:
                record = state.idempotency[key]
                record.status = reply.status
                record.body = json.dumps(reply.body).encode()
                record.headers = dict(reply.headers)
            else:  # refused before the endpoint did anything: nothing is kept
                state.idempotency.pop(key, None)
        return self._respond(reply, call.request_id, version, key)

    def _replay(self, found: IdempotentResult, call: Call, key: str, version: str) -> Response:
        if found.method != call.method or found.path != call.path:
            error = StripeApiError(
                400,
                "Keys for idempotent requests can only be used for the same endpoint they "
                f"were first used for ('{call.path}' vs '{found.path}'). Try using a key "
                f"other than '{key}' if you meant to execute a different request.",
                error_type="idempotency_error",
            )
            return self._error(error, call.request_id, version, key)
        if found.params != call.params:
            error = StripeApiError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
                error_type="idempotency_error",
            )
            return self._error(error, call.request_id, version, key)
        if found.status is None:
            error = StripeApiError(
                409,
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still "
                f"going through): {key}. Please try again later.",
                code="idempotency_key_in_use",
                headers={"stripe-should-retry": "true"},
            )
            return self._error(error, call.request_id, version, key)
        headers = {
            **found.headers,
            **self._standard_headers(call.request_id, version, key),
            "idempotent-replayed": "true",
            "original-request": found.request_id,
        }
        return Response(
            found.body, status_code=found.status, headers=headers, media_type="application/json"
        )

    # --- responses -------------------------------------------------------------------------

    @staticmethod
    def _standard_headers(request_id: str, version: str, key: str | None) -> dict[str, str]:
        headers = {"request-id": request_id, "stripe-version": version}
        if key is not None:
            headers["idempotency-key"] = key
        return headers

    def _respond(self, reply: _Reply, request_id: str, version: str, key: str | None) -> Response:
        headers = {**reply.headers, **self._standard_headers(request_id, version, key)}
        return Response(
            json.dumps(reply.body),
            status_code=reply.status,
            headers=headers,
            media_type="application/json",
        )

    def _error(
        self, error: StripeApiError, request_id: str, version: str, key: str | None
    ) -> Response:
        return self._respond(
            _Reply(error.status, error.body(request_id), error.headers), request_id, version, key
        )
