"""How q2c proves itself to NetSuite: ``httpx.Auth`` for OAuth 2.0 M2M and for TBA.

*M2M* (client credentials, NetSuite's preferred method): sign a short JWT with the private key
of the certificate mapped in NetSuite (header ``kid`` = certificate id; ``iss`` = client id;
``aud`` = token URL; ``scope`` = rest_webservices), trade it for a bearer token, keep the token
until shortly before it expires, and on a 401 fetch a new one once and resend - NetSuite
revokes tokens without notice (sandbox refresh, role change).

*TBA* (OAuth 1.0a): each request is signed with HMAC-SHA256 and ``realm`` = account id.
Signing uses authlib's RFC 5849 client (``ClientAuth``) with an HMAC-SHA256 method registered
on a private subclass, so authlib's class-wide table is not changed for anyone else; authlib
ships HMAC-SHA1 only, which NetSuite no longer accepts.

Failures at the token endpoint become ``q2c.errors``: refused credentials are an AuthError
(fatal: someone must fix them), 429 and 5xx are retriable like any other call.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterable
from typing import Any

import httpx
import jwt
from authlib.oauth1 import ClientAuth
from authlib.oauth1.rfc5849.signature import (
    generate_signature_base_string,
)
from authlib.oauth1.rfc5849.util import escape
from cryptography.hazmat.primitives import serialization

from q2c.connectors.http import parse_retry_after
from q2c.connectors.netsuite.wire import realm_for
from q2c.errors import AuthError, Q2CError, RateLimitedError, RetriableError

__all__ = ["NetSuiteM2MAuth", "NetSuiteTBAAuth", "token_url_for"]

SYSTEM = "netsuite"
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def token_url_for(base_url: str) -> str:
    return base_url.rstrip("/") + TOKEN_PATH


class NetSuiteM2MAuth(httpx.Auth):
    """OAuth 2.0 client credentials with a JWT client assertion; caches the access token."""

    requires_response_body = True

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        certificate_id: str,
        private_key_pem: bytes | str,
        algorithm: str = "PS256",
        scopes: Iterable[str] = ("rest_webservices",),
        assertion_lifetime: int = 300,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.certificate_id = certificate_id
        self._key_pem = (
            private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
        )
        self.algorithm = algorithm
        self.scopes = list(scopes)
        self.assertion_lifetime = assertion_lifetime
        self.refresh_margin = refresh_margin
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._cached()
        if token is None:
            token = yield from self._fetch()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            self._forget(token)
            token = yield from self._fetch()
            request.headers["Authorization"] = f"Bearer {token}"
            yield request

    def client_assertion(self) -> str:
        """The signed JWT NetSuite's token endpoint expects (The Request Token Structure)."""
        now = int(self._clock())
        claims = {
            "iss": self.client_id,
            "scope": ",".join(self.scopes),
            "aud": self.token_url,
            "iat": now,
            "exp": now + self.assertion_lifetime,
            "jti": str(uuid.uuid4()),
        }
        headers = {"typ": "JWT", "kid": self.certificate_id}
        key = _private_key(self._key_pem)
        return jwt.encode(claims, key, algorithm=self.algorithm, headers=headers)

    def _cached(self) -> str | None:
        with self._lock:
            if self._token and self._clock() < self._expires_at - self.refresh_margin:
                return self._token
            return None

    def _forget(self, token: str) -> None:
        with self._lock:
            if self._token == token:
                self._token = None

    def _fetch(self) -> Generator[httpx.Request, httpx.Response, str]:
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": JWT_BEARER,
            "client_assertion": self.client_assertion(),
        }
        response = yield httpx.Request("POST", self.token_url, data=form)
        if response.status_code != 200:
            raise _token_error(response)
        try:
            answer: dict[str, Any] = response.json()
            token = str(answer["access_token"])
            lifetime = float(answer.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthError(
                "NetSuite's token endpoint answered without a usable access token",
                detail=f"POST {self.token_url} -> 200: {response.text[:500]}",
                system=SYSTEM,
            ) from exc
        with self._lock:
            self._token = token
            self._expires_at = self._clock() + lifetime
        return token


@functools.lru_cache(maxsize=8)
def _private_key(pem: bytes) -> Any:
    """Parse a PEM key once per process: loading (and validating) a 3072-bit RSA key takes
    longer than signing with it, and every connection built from the same secret shares it."""
    return serialization.load_pem_private_key(pem, password=None)


def _token_error(response: httpx.Response) -> Q2CError:
    where = f"POST {response.request.url} -> {response.status_code}: {response.text[:500]}"
    if response.status_code == 429:
        return RateLimitedError(
            "NetSuite asked q2c to slow down while it was signing in",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            detail=where,
            system=SYSTEM,
        )
    if response.status_code >= 500:
        return RetriableError(
            f"NetSuite's sign-in service had a server error ({response.status_code})",
            detail=where,
            system=SYSTEM,
        )
    return AuthError(
        "NetSuite refused q2c's OAuth 2.0 client credentials (certificate, client id or role)",
        detail=where,
        suggested_fix=(
            "Check the NetSuite client id, certificate id and private key of this connection, "
            "and that the certificate is mapped in Setup > Integration > OAuth 2.0 Client "
            "Credentials (M2M) Setup for a role with REST Web Services permission."
        ),
        system=SYSTEM,
    )


# --- TBA -------------------------------------------------------------------------------------


def _sign_hmac_sha256(client: ClientAuth, request: Any) -> str:
    """RFC 5849 HMAC signature with SHA-256 in place of SHA-1 (NetSuite's TBA requirement)."""
    base_string = generate_signature_base_string(request)
    key = f"{escape(client.client_secret or '')}&{escape(client.token_secret or '')}"
    digest = hmac.new(key.encode(), base_string.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class _NetSuiteSigner(ClientAuth):  # type: ignore[misc]
    # A copy, so registering HMAC-SHA256 here leaves authlib's shared table untouched.
    SIGNATURE_METHODS = {**ClientAuth.SIGNATURE_METHODS, "HMAC-SHA256": _sign_hmac_sha256}


class NetSuiteTBAAuth(httpx.Auth):
    """Token-based authentication: OAuth 1.0a, HMAC-SHA256, realm = account id."""

    def __init__(
        self,
        *,
        account_id: str,
        consumer_key: str,
        consumer_secret: str,
        token_id: str,
        token_secret: str,
    ) -> None:
        self._signer = _NetSuiteSigner(
            client_id=consumer_key,
            client_secret=consumer_secret,
            token=token_id,
            token_secret=token_secret,
            signature_method="HMAC-SHA256",
            realm=realm_for(account_id),
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # JSON bodies are not part of an OAuth 1.0a signature; the URL and its query are.
        _, headers, _ = self._signer.sign(request.method, str(request.url), {}, b"")
        request.headers["Authorization"] = headers["Authorization"]
        yield request
