"""API authentication: OAuth2 client-credentials tokens (JWT), scopes and per-client rate limits.

q2c issues its own tokens at ``POST /v1/token`` to the clients listed under ``api.clients`` in
q2c.yaml, and may also accept tokens of an external issuer (``api.external_issuer``), verified
against its JWKS. Scopes nest: ``admin`` holds ``operate`` and ``ingest``, ``operate`` holds
``read``. ``ingest`` (POST /v1/events) is apart from ``read`` so that a sending system cannot
read transactions.

Order of checks on a protected route: token (401), rate limit (429), scope (403). Secrets and
tokens are never logged: log lines carry the client id and scopes only.

The console (or any other caller) verifies a bearer token with ``ApiAuth.verify(token)``, or
runs the whole check with ``ApiAuth.authorize(authorization_header, scope)``; the app's
instance is ``app.state.auth``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

import jwt
import structlog
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from fastapi import APIRouter, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2
from pydantic import BaseModel

from q2c.api.problems import ApiError, problem_responses
from q2c.config import ApiClientConfig, ApiConfig, ApiRateLimit

__all__ = [
    "SCOPES",
    "ApiAuth",
    "InvalidTokenError",
    "IssuedToken",
    "Principal",
    "RateLimiter",
    "expand_scopes",
    "require",
    "token_router",
]

log = structlog.get_logger("q2c.api.auth")

SCOPES: dict[str, str] = {
    "read": "read transactions, exceptions, cross-references and payloads",
    "operate": "replay, edit-and-replay and dismiss exceptions (includes read)",
    "ingest": "send events to POST /v1/events",
    "admin": "everything (includes operate and ingest)",
}
_IMPLIED: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "operate": frozenset({"operate", "read"}),
    "ingest": frozenset({"ingest"}),
    "admin": frozenset(SCOPES),
}
_REALM = 'Bearer realm="q2c"'
_MAX_TOKEN_REQUEST_BYTES = 8 * 1024
_ANONYMOUS_LIMIT = ApiRateLimit()


def expand_scopes(granted: Iterable[str]) -> frozenset[str]:
    """Every scope the granted ones hold (``admin`` -> all); unknown names are ignored."""
    held: set[str] = set()
    for scope in granted:
        held |= _IMPLIED.get(scope, frozenset())
    return frozenset(held)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the client id, the scopes it holds (expanded) and the token's issuer."""

    client_id: str
    scopes: frozenset[str]
    issuer: str
    expires_at: datetime | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str


class InvalidTokenError(Exception):
    """A bearer token q2c does not accept; the message is safe to show to the caller."""


class TokenResponse(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    scope: str


class RateLimiter:
    """Token buckets per key, refilled continuously; thread-safe (sync routes run in threads)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)
        self._lock = threading.Lock()

    def take(self, key: str, limit: ApiRateLimit) -> float:
        """Spend one request; returns 0 if allowed, else the seconds until one is available."""
        rate = limit.requests_per_minute / 60.0
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(key, (float(limit.burst), now))
            tokens = min(float(limit.burst), tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / rate


def _too_many(wait: float, who: str) -> ApiError:
    seconds = max(1, math.ceil(wait))
    return ApiError(
        429,
        f"client {who!r} is over its rate limit; retry in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


def _unauthorized(detail: str, *, error: str | None = "invalid_token") -> ApiError:
    challenge = _REALM
    if error is not None:
        description = detail.replace('"', "'")
        challenge += f', error="{error}", error_description="{description}"'
    return ApiError(401, detail, headers={"WWW-Authenticate": challenge})


class ApiAuth:
    """Issues and verifies the API's tokens and enforces scopes and rate limits."""

    def __init__(
        self,
        config: ApiConfig,
        *,
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        jwks_client: jwt.PyJWKClient | None = None,
    ) -> None:
        self.config = config
        self.enabled = config.auth == "enabled"
        self.now = now
        self.limiter = RateLimiter(monotonic)
        self.clients: dict[str, ApiClientConfig] = {c.id: c for c in config.clients}
        token = config.token
        self.algorithm = token.algorithm
        self._signing_key: Any
        self._verifying_key: Any
        if token.algorithm == "HS256":
            key = token.key.get_secret_value().encode() if token.key else secrets.token_bytes(32)
            self._signing_key = self._verifying_key = key
            self.ephemeral_key = token.key is None
        else:
            if token.key is None:
                raise ValueError(f"api.token: {token.algorithm} needs private_key_file")
            private = load_pem_private_key(token.key.get_secret_value().encode(), password=None)
            self._signing_key, self._verifying_key = private, private.public_key()
            self.ephemeral_key = False
        external = config.external_issuer
        self._jwks = jwks_client
        if external is not None and jwks_client is None:
            self._jwks = jwt.PyJWKClient(external.jwks_url, cache_keys=True, lifespan=300)

    # --- clients and tokens -----------------------------------------------------------------

    def client(self, client_id: str, secret: str) -> ApiClientConfig | None:
        """The configured client if ``secret`` is its secret (compared in constant time)."""
        known = self.clients.get(client_id)
        expected = known.secret.get_secret_value() if known and known.secret else ""
        # compare even for unknown ids, so timing does not tell which ids exist
        matches = hmac.compare_digest(
            (expected or "\0unknown").encode("utf-8"), secret.encode("utf-8")
        )
        return known if known is not None and expected and matches else None

    def issue(self, client_id: str, scopes: Iterable[str] | None = None) -> IssuedToken:
        """A signed token for a configured client; ``scopes`` must be among the client's."""
        client = self.clients.get(client_id)
        if client is None:
            raise ValueError(f"no API client {client_id!r} in q2c.yaml")
        allowed = expand_scopes(client.scopes)
        wanted = list(dict.fromkeys(scopes)) if scopes is not None else list(client.scopes)
        refused = [s for s in wanted if s not in allowed]
        if refused or not wanted:
            raise ValueError(f"scope {' '.join(refused) or '(none)'} is not granted to {client_id}")
        issued_at = int(self.now())
        ttl = self.config.token.ttl_seconds
        claims = {
            "iss": self.config.token.issuer,
            "aud": self.config.token.audience,
            "sub": client_id,
            "client_id": client_id,
            "scope": " ".join(wanted),
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + ttl,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._signing_key, algorithm=self.algorithm)
        log.info("api.token_issued", client_id=client_id, scope=claims["scope"], ttl=ttl)
        return IssuedToken(token, ttl, " ".join(wanted))

    def verify(self, token: str) -> Principal:
        """The principal behind a bearer token, or ``InvalidTokenError`` saying why not."""
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise InvalidTokenError("the bearer token is not a JWT") from None
        issuer = unverified.get("iss")
        external = self.config.external_issuer
        try:
            if issuer == self.config.token.issuer:
                return self._own(token)
            if external is not None and issuer == external.issuer:
                return self._external(token)
        except jwt.ExpiredSignatureError:
            raise InvalidTokenError("the bearer token has expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidTokenError("the bearer token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise InvalidTokenError("the bearer token is for another audience") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidTokenError(f"the bearer token lacks the {exc.claim!r} claim") from None
        except jwt.PyJWKClientConnectionError:
            raise ApiError(
                503,
                "the external token issuer's keys cannot be fetched right now",
                headers={"Retry-After": "30"},
            ) from None
        except jwt.PyJWTError:
            raise InvalidTokenError("the bearer token's signature is not valid") from None
        raise InvalidTokenError("the bearer token is from an issuer q2c does not trust")

    def _own(self, token: str) -> Principal:
        claims = jwt.decode(
            token,
            self._verifying_key,
            algorithms=[self.algorithm],
            audience=self.config.token.audience,
            issuer=self.config.token.issuer,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
        client = self.clients.get(str(claims["sub"]))
        if client is None:  # removed from q2c.yaml: its tokens die with it
            raise InvalidTokenError("the bearer token's client is no longer configured")
        granted = str(claims.get("scope", "")).split()
        scopes = expand_scopes(granted) & expand_scopes(client.scopes)
        return Principal(client.id, scopes, self.config.token.issuer, _when(claims["exp"]))

    def _external(self, token: str) -> Principal:
        external = self.config.external_issuer
        assert external is not None and self._jwks is not None
        signing_key = self._jwks.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            signing_key.key,
            algorithms=list(external.algorithms),
            audience=external.audience,
            issuer=external.issuer,
            options={"require": ["exp", "iss", "aud"]},
        )
        raw = claims.get(external.scope_claim, "")
        granted = raw.split() if isinstance(raw, str) else [str(s) for s in raw or []]
        client_id = (
            claims.get(external.client_claim) or claims.get("client_id") or claims.get("sub")
        )
        if not client_id:
            raise InvalidTokenError("the bearer token names no client")
        return Principal(
            str(client_id), expand_scopes(granted), external.issuer, _when(claims["exp"])
        )

    # --- the whole check of a protected route -----------------------------------------------

    def authorize(self, authorization: str | None, scope: str) -> Principal:
        """401 without a valid bearer token, 429 over the client's rate, 403 without the scope."""
        if not self.enabled:
            return Principal("anonymous", frozenset(SCOPES), "auth disabled")
        if not authorization:
            raise _unauthorized("a bearer token is required (POST /v1/token)", error=None)
        kind, _, token = authorization.strip().partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise _unauthorized("the Authorization header must be 'Bearer <token>'")
        try:
            principal = self.verify(token.strip())
        except InvalidTokenError as exc:
            raise _unauthorized(str(exc)) from None
        self.throttle(principal)
        if not principal.allows(scope):
            challenge = f'{_REALM}, error="insufficient_scope", scope="{scope}"'
            raise ApiError(
                403,
                f"client {principal.client_id!r} lacks the {scope!r} scope",
                headers={"WWW-Authenticate": challenge},
            )
        return principal

    def throttle(self, principal: Principal) -> None:
        wait = self.limiter.take(
            f"{principal.issuer}|{principal.client_id}", self._limit(principal)
        )
        if wait > 0:
            raise _too_many(wait, principal.client_id)

    def _limit(self, principal: Principal) -> ApiRateLimit:
        client = self.clients.get(principal.client_id)
        if principal.issuer == self.config.token.issuer and client is not None:
            return client.rate_limit
        external = self.config.external_issuer
        return external.rate_limit if external is not None else _ANONYMOUS_LIMIT


def _when(exp: Any) -> datetime:
    return datetime.fromtimestamp(int(exp), UTC)


# --- FastAPI wiring --------------------------------------------------------------------------

_oauth2 = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(tokenUrl="/v1/token", scopes=SCOPES)
    ),
    scheme_name="q2c",
    auto_error=False,
)


def require(scope: str) -> Any:
    """Dependency of a route that needs ``scope``; it resolves to the caller's ``Principal``."""

    def check(request: Request, authorization: str | None = Security(_oauth2)) -> Principal:
        auth: ApiAuth = request.app.state.auth
        principal = auth.authorize(authorization, scope)
        request.state.principal = principal
        return principal

    return Security(check, scopes=[scope])


def _form(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise _token_error(400, "invalid_request", "the body is not form-encoded") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise _token_error(400, "invalid_request", f"parameter {key!r} is repeated")
        form[key] = value
    return form


def _token_error(status: int, error: str, detail: str) -> ApiError:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="q2c"'
    return ApiError(status, detail, headers=headers, oauth_error=error)


def _basic(header: str) -> tuple[str, str]:
    kind, _, encoded = header.strip().partition(" ")
    if kind.lower() != "basic":
        raise _token_error(401, "invalid_client", "client authentication must use HTTP Basic")
    try:
        raw = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _token_error(401, "invalid_client", "the Basic credentials are not base64") from None
    client_id, sep, secret = raw.partition(":")
    if not sep:
        raise _token_error(401, "invalid_client", "the Basic credentials lack a ':'")
    # RFC 6749 section 2.3.1: both parts are form-urlencoded before base64
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


def token_router() -> APIRouter:
    router = APIRouter()

    @router.post(
        "/v1/token",
        response_model=TokenResponse,
        tags=["auth"],
        summary="OAuth2 client-credentials token",
        responses=problem_responses(400, 401, 413, 415, 429),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "required": ["grant_type"],
                            "properties": {
                                "grant_type": {"type": "string", "enum": ["client_credentials"]},
                                "scope": {"type": "string"},
                                "client_id": {"type": "string"},
                                "client_secret": {"type": "string"},
                            },
                        }
                    }
                },
            }
        },
    )
    async def token(request: Request) -> JSONResponse:
        """Client id and secret by HTTP Basic (preferred) or in the form; ``scope`` is a
        space-separated subset of the client's scopes (omitted: all of them)."""
        auth: ApiAuth = request.app.state.auth
        if not auth.enabled:
            raise _token_error(400, "invalid_request", "API authentication is disabled")
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/x-www-form-urlencoded":
            raise ApiError(
                415,
                f"send application/x-www-form-urlencoded, not {media or 'nothing'}",
                oauth_error="invalid_request",
            )
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > _MAX_TOKEN_REQUEST_BYTES:
                raise ApiError(413, "the token request is too large")
        form = _form(body)
        grant = form.get("grant_type")
        if not grant:
            raise _token_error(400, "invalid_request", "grant_type is required")
        if grant != "client_credentials":
            raise _token_error(
                400, "unsupported_grant_type", f"grant_type {grant!r}: only client_credentials"
            )
        header = request.headers.get("authorization")
        in_form = "client_id" in form or "client_secret" in form
        if header and in_form:
            raise _token_error(400, "invalid_request", "use either HTTP Basic or form credentials")
        if header:
            client_id, secret = _basic(header)
        elif in_form:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        else:
            raise _token_error(401, "invalid_client", "client credentials are required")
        if client_id in auth.clients:  # throttles guessing at a known client's secret too
            wait = auth.limiter.take(f"token|{client_id}", auth.clients[client_id].rate_limit)
            if wait > 0:
                raise _too_many(wait, client_id)
        client = auth.client(client_id, secret)
        if client is None:
            log.warning("api.token_refused", client_id=client_id[:100])
            raise _token_error(401, "invalid_client", "unknown client or wrong secret")
        requested = form.get("scope")
        try:
            issued = auth.issue(client.id, requested.split() if requested is not None else None)
        except ValueError as exc:
            raise _token_error(400, "invalid_scope", str(exc)) from None
        return JSONResponse(
            TokenResponse(
                access_token=issued.access_token,
                token_type="Bearer",
                expires_in=issued.expires_in,
                scope=issued.scope,
            ).model_dump(),
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    return router
