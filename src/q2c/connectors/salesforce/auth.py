"""OAuth 2.0 for Salesforce as ``httpx.Auth``: client credentials and JWT bearer.

The auth obtains a token on first use and caches it; Salesforce sessions end silently (timeout,
admin revoke), so a 401 invalidates the token, fetches a fresh one and resends the request
once. A second 401 reaches ``RestClient`` which reports it as ``AuthError``.

Salesforce also says *where* the org lives: the token response's ``instance_url``. API requests
are built relative (``/services/data/...``) and sent to that instance, so the same adapter
works for a My Domain login URL, login.salesforce.com, or the emulator.

A refused token request (400 ``invalid_client`` / ``invalid_grant``) is an ``AuthError``
carrying Salesforce's ``error_description``; a 429 or 5xx from the token endpoint is retriable,
because credentials are not the problem then.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from dataclasses import dataclass

import httpx
import jwt

from q2c.connectors.http import parse_retry_after
from q2c.errors import AuthError, ConfigError, RateLimitedError, RetriableError

__all__ = ["ClientCredentialsAuth", "JwtBearerAuth", "SalesforceAuth", "SalesforceToken"]

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True, slots=True)
class SalesforceToken:
    access_token: str
    instance_url: str
    identity_url: str | None
    issued_at: float


class SalesforceAuth(httpx.Auth):
    """Shared token cache, refresh-once-on-401 and instance routing; subclasses build the grant."""

    requires_response_body = True

    def __init__(self, login_url: str, client_id: str) -> None:
        self.login_url = login_url.rstrip("/")
        self.client_id = client_id
        self._token: SalesforceToken | None = None
        self._lock = threading.Lock()
        self.tokens_fetched = 0

    @property
    def token_url(self) -> str:
        return f"{self.login_url}/services/oauth2/token"

    @property
    def token(self) -> SalesforceToken | None:
        return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def grant(self) -> dict[str, str]:
        """The form fields of the token request."""
        raise NotImplementedError

    def token_request(self) -> httpx.Request:
        return httpx.Request(
            "POST", self.token_url, data=self.grant(), headers={"Accept": "application/json"}
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._token
        if token is None:
            token = yield from self._fetch()
        self._prepare(request, token)
        response = yield request
        if response.status_code != 401:
            return
        with self._lock:
            if self._token is token:
                self._token = None
        token = yield from self._fetch()
        self._prepare(request, token)
        yield request

    def _fetch(self) -> Generator[httpx.Request, httpx.Response, SalesforceToken]:
        response = yield self.token_request()
        token = self._parse(response)
        with self._lock:
            self._token = token
            self.tokens_fetched += 1
        return token

    def _prepare(self, request: httpx.Request, token: SalesforceToken) -> None:
        """Bearer header, and API paths routed to the org's instance URL."""
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        if request.url.path.startswith("/services/"):
            instance = httpx.URL(token.instance_url)
            if (request.url.scheme, request.url.netloc) != (instance.scheme, instance.netloc):
                request.url = instance.copy_with(raw_path=request.url.raw_path)
                request.headers["Host"] = request.url.netloc.decode("ascii")

    def _parse(self, response: httpx.Response) -> SalesforceToken:
        where = f"POST {self.token_url} -> {response.status_code}"
        if response.status_code == 429:
            raise RateLimitedError(
                "Salesforce's login service asked q2c to slow down",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                detail=f"{where}: {response.text[:500]}",
                system="salesforce",
            )
        if response.status_code >= 500:
            raise RetriableError(
                f"Salesforce's login service had a server error ({response.status_code})",
                detail=f"{where}: {response.text[:500]}",
                system="salesforce",
            )
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            error = body.get("error", "unknown_error") if isinstance(body, dict) else "unknown"
            description = (
                body.get("error_description") if isinstance(body, dict) else None
            ) or response.text[:200]
            raise AuthError(
                f"Salesforce refused q2c's login for connected app {self.client_id}: {description}",
                detail=f"{where}: {error}: {description}",
                system="salesforce",
            )
        return SalesforceToken(
            access_token=str(body["access_token"]),
            instance_url=str(body.get("instance_url") or self.login_url).rstrip("/"),
            identity_url=body.get("id"),
            issued_at=time.time(),
        )


class ClientCredentialsAuth(SalesforceAuth):
    """Client credentials flow: the connected app's consumer key and secret, no user password.

    Salesforce requires the My Domain URL as ``login_url`` for this flow; the session runs as
    the app's configured "run as" user.
    """

    def __init__(self, login_url: str, client_id: str, client_secret: str) -> None:
        super().__init__(login_url, client_id)
        self._client_secret = client_secret

    def grant(self) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
        }

    def __repr__(self) -> str:  # never show the secret
        return f"ClientCredentialsAuth(login_url={self.login_url!r}, client_id={self.client_id!r})"


class JwtBearerAuth(SalesforceAuth):
    """JWT bearer flow: an assertion signed with the connected app's private key (RS256).

    ``aud`` is the login URL (``https://login.salesforce.com``, ``https://test.salesforce.com``
    or the My Domain URL); the assertion lives for ``lifetime`` seconds, Salesforce allows at
    most three minutes.
    """

    def __init__(
        self,
        login_url: str,
        client_id: str,
        username: str,
        private_key_pem: str | bytes,
        *,
        audience: str | None = None,
        lifetime: int = 180,
    ) -> None:
        super().__init__(login_url, client_id)
        self.username = username
        self._private_key = private_key_pem
        self.audience = audience or self.login_url
        self.lifetime = lifetime

    def assertion(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.username,
            "aud": self.audience,
            "exp": now + self.lifetime,
        }
        try:
            return jwt.encode(claims, self._private_key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise ConfigError(
                f"The private key for Salesforce connected app {self.client_id} cannot sign a "
                "JWT (expected an RSA private key in PEM format)",
                detail=f"{type(exc).__name__}: {exc}",
                system="salesforce",
            ) from exc

    def grant(self) -> dict[str, str]:
        return {"grant_type": JWT_GRANT, "assertion": self.assertion()}

    def __repr__(self) -> str:
        return (
            f"JwtBearerAuth(login_url={self.login_url!r}, client_id={self.client_id!r}, "
            f"username={self.username!r})"
        )
