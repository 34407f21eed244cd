"""The emulated account's side of authentication: OAuth 2.0 M2M and token-based auth (TBA).

*M2M* (client credentials): the integration maps a certificate to its client id; the client
signs a JWT with the certificate's private key (header ``kid`` = certificate id, ``iss`` =
client id, ``aud`` = the token URL, ``exp`` at most an hour after ``iat``, ``scope`` including
``rest_webservices``) and trades it at the token endpoint for a bearer token. Verified here
with PyJWT against the registered public key.

*TBA* is OAuth 1.0a with HMAC-SHA256 and ``realm`` = the account id. The signature base string
is built here from RFC 5849 section 3.4.1 directly, not through authlib, so that the client
(which signs with authlib) and this verifier are two independent implementations: a bug in
one cannot hide in the other. A nonce may be used once per timestamp window.

Every refusal answers NetSuite's ``INVALID_LOGIN`` (which deliberately says nothing about the
cause) and leaves the real reason in ``audit``, the emulator's Login Audit Trail.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import jwt

from q2c.connectors.netsuite.wire import NetSuiteApiError, realm_for

__all__ = [
    "AccountAuth",
    "LoginAttempt",
    "M2MClient",
    "TbaToken",
    "TokenRefusedError",
    "parse_oauth_header",
    "signature_base_string",
    "tba_signature",
]

JWT_ALGORITHMS = ("PS256", "PS384", "PS512", "RS256", "ES256", "ES384", "ES512")
INVALID_LOGIN_DETAIL = (
    "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI "
    "at Setup > Users/Roles > User Management > View Login Audit Trail."
)


@dataclass(frozen=True)
class M2MClient:
    """An integration record with a certificate mapped for the client credentials flow."""

    client_id: str
    certificate_id: str
    public_key_pem: bytes
    scopes: frozenset[str] = frozenset({"rest_webservices"})


@dataclass(frozen=True)
class TbaToken:
    """A consumer (integration record) and an access token issued to a user and role."""

    consumer_key: str
    consumer_secret: str
    token_id: str
    token_secret: str


@dataclass(frozen=True)
class LoginAttempt:
    at: float
    method: str
    principal: str | None
    success: bool
    reason: str


class TokenRefusedError(Exception):
    """The token endpoint's OAuth 2.0 error (RFC 6749 section 5.2)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.error = error
        self.description = description


@dataclass
class _Issued:
    client_id: str
    expires_at: float


@dataclass
class AccountAuth:
    """Who may call the account, the tokens it issued, and its login audit trail."""

    account_id: str
    clock: Callable[[], float] = time.time
    token_lifetime: int = 3600
    timestamp_window: int = 300
    m2m_clients: dict[str, M2MClient] = field(default_factory=dict)
    tba_tokens: dict[tuple[str, str], TbaToken] = field(default_factory=dict)
    audit: list[LoginAttempt] = field(default_factory=list)
    token_requests: int = 0
    _tokens: dict[str, _Issued] = field(default_factory=dict)
    _nonces: dict[tuple[str, str], float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register_m2m(self, client: M2MClient) -> None:
        self.m2m_clients[client.certificate_id] = client

    def register_tba(self, token: TbaToken) -> None:
        self.tba_tokens[(token.consumer_key, token.token_id)] = token

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def active_tokens(self) -> int:
        with self._lock:
            return sum(1 for t in self._tokens.values() if t.expires_at > self.clock())

    # --- OAuth 2.0 client credentials ----------------------------------------------------

    def issue_token(self, form: Mapping[str, str], token_url: str) -> dict[str, Any]:
        if form.get("grant_type") != "client_credentials":
            raise self._refuse_token(
                400, "unsupported_grant_type", "grant_type must be client_credentials", None
            )
        if form.get("client_assertion_type") != (
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ) or not form.get("client_assertion"):
            raise self._refuse_token(
                400,
                "invalid_request",
                "a JWT client_assertion of type jwt-bearer is required",
                None,
            )
        client = self._verify_assertion(form["client_assertion"], token_url)
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = _Issued(client.client_id, self.clock() + self.token_lifetime)
            self.token_requests += 1
        self._log("oauth2-m2m", client.client_id, True, "access token issued")
        return {
            "access_token": token,
            "expires_in": str(self.token_lifetime),
            "token_type": "bearer",
        }

    def _verify_assertion(self, assertion: str, token_url: str) -> M2MClient:
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise self._refuse_token(400, "invalid_grant", f"malformed JWT: {exc}", None) from None
        client = self.m2m_clients.get(str(header.get("kid")))
        if client is None:
            raise self._refuse_token(
                400, "invalid_grant", f"no certificate mapped with id {header.get('kid')!r}", None
            )
        algorithm = header.get("alg")
        if algorithm not in JWT_ALGORITHMS:
            raise self._refuse_token(
                400, "invalid_grant", f"algorithm {algorithm!r} is not accepted", client.client_id
            )
        try:
            claims = jwt.decode(
                assertion,
                client.public_key_pem,
                algorithms=[algorithm],
                audience=token_url,
                issuer=client.client_id,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise self._refuse_token(
                400, "invalid_grant", f"JWT rejected: {exc}", client.client_id
            ) from None
        if float(claims["exp"]) - float(claims["iat"]) > 3600:
            raise self._refuse_token(
                400, "invalid_grant", "exp must be at most 60 minutes after iat", client.client_id
            )
        scopes = _scopes(claims.get("scope"))
        if not scopes & client.scopes:
            raise self._refuse_token(
                400,
                "invalid_grant",
                f"scope {sorted(scopes)} does not include {sorted(client.scopes)}",
                client.client_id,
            )
        return client

    def _refuse_token(
        self, status: int, error: str, description: str, principal: str | None
    ) -> TokenRefusedError:
        self._log("oauth2-m2m", principal, False, description)
        return TokenRefusedError(status, error, description)

    # --- every REST request --------------------------------------------------------------

    def authenticate(
        self, method: str, url: str, authorization: str | None, form: Iterable[tuple[str, str]]
    ) -> str:
        """Return who is calling, or raise NetSuite's 401 ``INVALID_LOGIN``."""
        if not authorization:
            raise self._refuse("none", None, "no Authorization header")
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer":
            return self._bearer(credentials.strip())
        if scheme.lower() == "oauth":
            return self._tba(method, url, credentials, list(form))
        raise self._refuse("unknown", None, f"unsupported authorization scheme {scheme!r}")

    def _bearer(self, token: str) -> str:
        with self._lock:
            issued = self._tokens.get(token)
        if issued is None:
            raise self._refuse("oauth2", None, "unknown or revoked access token")
        if issued.expires_at <= self.clock():
            raise self._refuse("oauth2", issued.client_id, "access token expired")
        return issued.client_id

    def _tba(self, method: str, url: str, header: str, form: list[tuple[str, str]]) -> str:
        params = parse_oauth_header(header)
        if params.get("realm") != realm_for(self.account_id):
            raise self._refuse("tba", None, f"realm {params.get('realm')!r} is not this account")
        if params.get("oauth_signature_method") != "HMAC-SHA256":
            raise self._refuse("tba", None, "signature method must be HMAC-SHA256")
        if params.get("oauth_version", "1.0") != "1.0":
            raise self._refuse("tba", None, "oauth_version must be 1.0")
        key = (params.get("oauth_consumer_key", ""), params.get("oauth_token", ""))
        token = self.tba_tokens.get(key)
        if token is None:
            raise self._refuse("tba", key[0] or None, "unknown consumer key or token")
        try:
            timestamp = int(params.get("oauth_timestamp", ""))
        except ValueError:
            raise self._refuse("tba", token.consumer_key, "oauth_timestamp missing") from None
        if abs(self.clock() - timestamp) > self.timestamp_window:
            raise self._refuse("tba", token.consumer_key, "timestamp outside the allowed window")
        nonce = params.get("oauth_nonce", "")
        if not nonce:
            raise self._refuse("tba", token.consumer_key, "oauth_nonce missing")
        oauth = [(k, v) for k, v in params.items() if k.startswith("oauth_")]
        base = signature_base_string(method, url, [*oauth, *form])
        expected = tba_signature(base, token.consumer_secret, token.token_secret)
        if not hmac.compare_digest(expected, params.get("oauth_signature", "")):
            raise self._refuse("tba", token.consumer_key, "signature does not match")
        with self._lock:
            self._forget_old_nonces()
            if (token.token_id, nonce) in self._nonces:
                replay = True
            else:
                replay = False
                self._nonces[(token.token_id, nonce)] = float(timestamp)
        if replay:
            raise self._refuse("tba", token.consumer_key, "nonce already used (replay)")
        return token.consumer_key

    def _forget_old_nonces(self) -> None:
        horizon = self.clock() - 2 * self.timestamp_window
        for key in [k for k, seen in self._nonces.items() if seen < horizon]:
            del self._nonces[key]

    def _refuse(self, method: str, principal: str | None, reason: str) -> NetSuiteApiError:
        self._log(method, principal, False, reason)
        return NetSuiteApiError(401, "INVALID_LOGIN", INVALID_LOGIN_DETAIL)

    def _log(self, method: str, principal: str | None, success: bool, reason: str) -> None:
        with self._lock:
            self.audit.append(LoginAttempt(self.clock(), method, principal, success, reason))


def _scopes(value: Any) -> set[str]:
    if isinstance(value, str):
        return {s.strip() for s in value.replace(" ", ",").split(",") if s.strip()}
    if isinstance(value, list):
        return {str(s) for s in value}
    return set()


# --- RFC 5849 signature (independent of the client's authlib implementation) ---------------

_HEADER_PARAM = re.compile(r'([A-Za-z0-9_]+)\s*=\s*"([^"]*)"')


def parse_oauth_header(credentials: str) -> dict[str, str]:
    """``realm="X", oauth_nonce="..."`` -> dict with percent-decoded values (RFC 5849 3.5.1)."""
    return {name: unquote(value) for name, value in _HEADER_PARAM.findall(credentials)}


def _encode(value: str) -> str:
    """RFC 5849 3.6: percent-encode everything but ALPHA, DIGIT, '-', '.', '_', '~'."""
    return quote(value, safe="-._~")


def signature_base_string(method: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """RFC 5849 3.4.1: METHOD & base string URI & normalized parameters.

    ``url`` is the request URL as sent (percent-encoded path, query included); ``params`` are
    the protocol parameters and any form-encoded body parameters. ``realm`` and
    ``oauth_signature`` are left out, query parameters are added from ``url``.
    """
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    base_uri = f"{scheme}://{host}{parts.path or '/'}"
    pairs = [
        *parse_qsl(parts.query, keep_blank_values=True),
        *((k, v) for k, v in params if k not in ("realm", "oauth_signature")),
    ]
    normalized = "&".join(f"{k}={v}" for k, v in sorted((_encode(k), _encode(v)) for k, v in pairs))
    return "&".join((_encode(method.upper()), _encode(base_uri), _encode(normalized)))


def tba_signature(base_string: str, consumer_secret: str, token_secret: str) -> str:
    """HMAC-SHA256 over the base string, keyed ``consumer_secret&token_secret`` (RFC 5849 3.4.2)."""
    key = f"{_encode(consumer_secret)}&{_encode(token_secret)}"
    digest = hmac.new(key.encode(), base_string.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()
