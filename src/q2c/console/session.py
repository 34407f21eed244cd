"""Console sign-in: a signed, HttpOnly, SameSite=Strict session cookie and CSRF tokens.

The cookie carries the API token q2c issued to the signed-in client (so every page re-checks
it with the API's own ``ApiAuth.verify``: an expired token or a client removed from q2c.yaml
ends the session), the person's name for the audit trail, and the session's CSRF secret. The
whole value is signed with HMAC-SHA256, so neither the name nor the CSRF secret can be forged.

CSRF: SameSite=Strict keeps the cookie off cross-site requests; on top of that every POST must
carry the session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``), and the
sign-in form a signed one-time cookie of its own (double submit), since no session exists yet.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import orjson

from q2c.api.auth import SCOPES, ApiAuth, InvalidTokenError, Principal
from q2c.api.problems import ApiError

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "ConsoleUser",
    "SessionSigner",
    "new_session",
    "session_key",
    "user_of",
]

SESSION_COOKIE = "q2c_console"
LOGIN_COOKIE = "q2c_console_login"


def session_key(auth: ApiAuth) -> bytes:
    """Derived from the configured HS256 signing key, so every replica accepts the same
    sessions; random per process otherwise (sessions then end with the process, as its
    tokens do)."""
    configured = auth.config.token.key
    if auth.algorithm == "HS256" and configured is not None:
        secret = configured.get_secret_value().encode()
        return hmac.new(secret, b"q2c-console-session-v1", hashlib.sha256).digest()
    return secrets.token_bytes(32)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Signs and checks cookie values (``payload.signature``, both base64url)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def sign(self, value: dict[str, Any]) -> str:
        payload = _b64(orjson.dumps(value))
        return f"{payload}.{self._mac(payload)}"

    def unsign(self, signed: str | None) -> dict[str, Any] | None:
        if not signed or "." not in signed:
            return None
        payload, _, signature = signed.rpartition(".")
        if not hmac.compare_digest(self._mac(payload), signature):
            return None
        try:
            value = orjson.loads(_unb64(payload))
        except (ValueError, orjson.JSONDecodeError):
            return None
        return value if isinstance(value, dict) else None

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """The signed-in person: who they say they are, and what their client may do."""

    principal: Principal
    name: str
    csrf: str
    token: str | None  # the client's API token; None when API auth is disabled

    @property
    def can_operate(self) -> bool:
        return self.principal.allows("operate")

    @property
    def audit_name(self) -> str:
        """What replays and dismissals record: ``ada (client ops-console)``."""
        if not self.name or self.name == self.principal.client_id:
            return self.principal.client_id
        return f"{self.name} (client {self.principal.client_id})"

    def csrf_ok(self, offered: str | None) -> bool:
        return bool(offered) and hmac.compare_digest(self.csrf, offered or "")


def new_session(token: str | None, name: str) -> dict[str, Any]:
    return {"t": token, "n": name, "c": secrets.token_urlsafe(24)}


def user_of(auth: ApiAuth, session: dict[str, Any] | None) -> ConsoleUser | None:
    """The user behind a checked session value, or None (no session, expired, revoked)."""
    if session is None:
        return None
    name, csrf, token = session.get("n"), session.get("c"), session.get("t")
    if not isinstance(name, str) or not isinstance(csrf, str) or not csrf:
        return None
    if not auth.enabled:
        anonymous = Principal("anonymous", frozenset(SCOPES), "auth disabled")
        return ConsoleUser(anonymous, name, csrf, None)
    if not isinstance(token, str):
        return None
    try:
        principal = auth.verify(token)
    except (InvalidTokenError, ApiError):
        return None
    return ConsoleUser(principal, name, csrf, token)
