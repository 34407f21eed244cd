"""How q2c proves itself to Kantata OX: an OAuth 2.0 bearer token, renewed when refused.

Kantata's classic tokens (authorization-code grant, issued to a registered application) do not
expire; they die when someone revokes the application. Its OAuth server (Doorkeeper, per the
OIDC discovery document) also offers the ``refresh_token`` and ``client_credentials`` grants at
``/oauth/token``. ``KantataAuth`` therefore:

* sends ``Authorization: Bearer <token>`` on every request;
* with no token yet and a grant configured, obtains one first;
* on a 401, obtains a new token once (refresh token if it has one, else client credentials)
  and resends; without a grant the 401 goes up and becomes an AuthError.

A rotated refresh token (Doorkeeper may return a new one) is kept in memory for this process.
Failures at the token endpoint become ``q2c.errors``: refused credentials are an AuthError,
429 and 5xx are retriable like any other call.
"""

from __future__ import annotations

import threading
from collections.abc import Generator

import httpx

from q2c.connectors.http import parse_retry_after
from q2c.connectors.kantata import wire
from q2c.errors import AuthError, Q2CError, RateLimitedError, RetriableError

__all__ = ["KantataAuth"]

SYSTEM = "kantata"


class KantataAuth(httpx.Auth):
    """Bearer-token auth for Kantata, optionally able to obtain a new token."""

    requires_response_body = True

    def __init__(
        self,
        access_token: str | None = None,
        *,
        token_url: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        refresh_token: str | None = None,
    ) -> None:
        if access_token is None and not (client_id and client_secret and token_url):
            raise ValueError("Kantata needs an access token or client credentials and a token URL")
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self._refresh_token = refresh_token
        self._token = access_token
        self._lock = threading.Lock()
        self.tokens_obtained = 0

    @property
    def can_renew(self) -> bool:
        return bool(self.token_url and self.client_id and self.client_secret)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        with self._lock:
            token = self._token
        if token is None:
            token = yield from self._obtain()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and self.can_renew:
            token = yield from self._obtain(refused=token)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request

    def _obtain(self, refused: str | None = None) -> Generator[httpx.Request, httpx.Response, str]:
        with self._lock:
            if self._token is not None and self._token != refused:
                return self._token  # another thread renewed it meanwhile
            refresh_token = self._refresh_token
        assert self.token_url and self.client_id and self.client_secret
        form = (
            {"grant_type": "refresh_token", "refresh_token": refresh_token}
            if refresh_token
            else {"grant_type": "client_credentials"}
        )
        form |= {"client_id": self.client_id, "client_secret": self.client_secret}
        response = yield httpx.Request("POST", self.token_url, data=form)
        body = _token_body(response)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthError(
                "Kantata's sign-in answered without an access token",
                detail=f"POST {self.token_url} -> {response.status_code}: {response.text[:500]}",
                system=SYSTEM,
            )
        with self._lock:
            self._token = token
            rotated = body.get("refresh_token")
            if isinstance(rotated, str) and rotated:
                self._refresh_token = rotated
            self.tokens_obtained += 1
        return token


def _token_body(response: httpx.Response) -> dict[str, object]:
    status = response.status_code
    where = f"POST {response.request.url} -> {status}: {response.text[:500]}"
    if status == 429:
        raise RateLimitedError(
            "Kantata's sign-in asked q2c to slow down",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            detail=where,
            system=SYSTEM,
        )
    if status >= 500:
        raise RetriableError(
            f"Kantata's sign-in had a server error ({status})", detail=where, system=SYSTEM
        )
    try:
        body = wire.loads(response.content)
    except ValueError:
        body = {}
    if status != 200 or not isinstance(body, dict):
        reason = (
            (body.get("error_description") or body.get("error")) if isinstance(body, dict) else None
        )
        error: Q2CError = AuthError(
            f"Kantata refused q2c's sign-in: {reason or 'no reason given'}",
            detail=where,
            suggested_fix="Check the Kantata OAuth application's client id, secret and refresh "
            "token (environment variables named in q2c.yaml), then replay.",
            system=SYSTEM,
        )
        raise error
    return body
