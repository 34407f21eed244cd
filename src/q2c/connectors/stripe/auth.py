"""Stripe authentication: the secret key as a bearer token, and the pinned API version.

Stripe has no token exchange: the secret (or restricted) key is sent on every request. Keys
can be rolled in the Dashboard, after which the old key answers 401 ``api_key_expired``. When
the connection reads its key from a source (a secret store, an environment variable read at
call time), ``StripeKeyAuth`` asks the source again once on that answer and repeats the
request with the new key, so a rolled key is picked up without a restart.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Generator

import httpx

from q2c.connectors.stripe.wire import API_VERSION

__all__ = ["StripeKeyAuth"]


class StripeKeyAuth(httpx.Auth):
    requires_response_body = True

    def __init__(
        self,
        api_key: str | None = None,
        *,
        key_source: Callable[[], str] | None = None,
        api_version: str = API_VERSION,
    ) -> None:
        if api_key is None and key_source is None:
            raise ValueError("StripeKeyAuth needs an api_key or a key_source")
        self._source = key_source
        self._key = api_key if api_key is not None else self._fetch()
        self.api_version = api_version
        self._lock = threading.Lock()

    def _fetch(self) -> str:
        assert self._source is not None
        return self._source()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        key = self._key
        request.headers["Authorization"] = f"Bearer {key}"
        request.headers["Stripe-Version"] = self.api_version
        response = yield request
        if response.status_code != 401 or self._source is None or not _expired(response):
            return
        with self._lock:
            if self._key == key:  # another thread may have fetched it already
                self._key = self._fetch()
        if self._key != key:
            request.headers["Authorization"] = f"Bearer {self._key}"
            yield request


def _expired(response: httpx.Response) -> bool:
    try:
        error = json.loads(response.content or b"{}").get("error") or {}
    except (ValueError, AttributeError):
        return False
    return isinstance(error, dict) and error.get("code") == "api_key_expired"
