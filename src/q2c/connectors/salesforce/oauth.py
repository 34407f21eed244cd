"""The emulated org's OAuth 2.0 token endpoint and session registry.

Two server-to-server flows, as a connected app offers them:
- client credentials: ``client_id`` + ``client_secret`` in the form (or HTTP Basic); the
  session runs as the app's "run as" user;
- JWT bearer: an RS256 assertion signed with the app's private key; Salesforce checks the
  signature against the uploaded certificate, ``iss`` = consumer key, ``sub`` = an active
  username, ``aud`` = the login URL, and ``exp`` in the future.
Failures answer 400 with ``{"error", "error_description"}`` exactly as Salesforce words them.
Sessions expire after ``session_seconds`` or when a test expires them all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

__all__ = ["ConnectedApp", "OAuthServer", "Session"]

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
STANDARD_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


@dataclass
class ConnectedApp:
    client_id: str
    client_secret: str | None
    public_key_pem: bytes | None = None
    run_as: str | None = None  # username for the client-credentials flow


@dataclass(frozen=True)
class Session:
    token: str
    client_id: str
    user_id: str
    username: str
    issued_at: float
    expires_at: float


class OAuthServer:
    """Token endpoint logic; the HTTP layer passes form fields and gets (status, body) back."""

    def __init__(
        self,
        *,
        org_id: str,
        user_lookup: Callable[[str], str | None],
        audiences: tuple[str, ...] = (),
        session_seconds: float = 7200.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.org_id = org_id
        self._user_lookup = user_lookup
        self.audiences = audiences
        self.session_seconds = session_seconds
        self._clock = clock
        self._apps: dict[str, ConnectedApp] = {}
        self._sessions: dict[str, Session] = {}
        self._issued: dict[str, int] = {}
        self._lock = threading.Lock()

    # --- configuration ----------------------------------------------------------------------

    def register(self, app: ConnectedApp) -> ConnectedApp:
        with self._lock:
            self._apps[app.client_id] = app
        return app

    def app(self, client_id: str) -> ConnectedApp | None:
        return self._apps.get(client_id)

    # --- sessions -----------------------------------------------------------------------------

    def session(self, token: str) -> Session | None:
        with self._lock:
            found = self._sessions.get(token)
            if found is not None and found.expires_at <= self._clock():
                del self._sessions[token]
                return None
            return found

    def expire_all(self) -> int:
        with self._lock:
            count = len(self._sessions)
            self._sessions.clear()
            return count

    def revoke(self, token: str) -> bool:
        with self._lock:
            return self._sessions.pop(token, None) is not None

    def issued(self, client_id: str | None = None) -> int:
        """Tokens issued so far (to one app, or in total)."""
        with self._lock:
            if client_id is not None:
                return self._issued.get(client_id, 0)
            return sum(self._issued.values())

    # --- token endpoint -----------------------------------------------------------------------

    def token(
        self,
        form: Mapping[str, str],
        *,
        authorization: str | None,
        origin: str,
        instance_url: str,
    ) -> tuple[int, dict[str, Any]]:
        grant = form.get("grant_type", "")
        if grant == "client_credentials":
            return self._client_credentials(form, authorization, origin, instance_url)
        if grant == JWT_GRANT:
            return self._jwt_bearer(form, origin, instance_url)
        return _fail("unsupported_grant_type", "grant type not supported")

    def _client_credentials(
        self, form: Mapping[str, str], authorization: str | None, origin: str, instance_url: str
    ) -> tuple[int, dict[str, Any]]:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:]).decode()
                client_id, _, secret = decoded.partition(":")
            except (ValueError, UnicodeDecodeError):
                return _fail("invalid_client", "invalid client credentials")
        app = self._apps.get(client_id or "")
        if app is None:
            return _fail("invalid_client_id", "client identifier invalid")
        expected = app.client_secret
        if not expected or not secret or not hmac.compare_digest(expected, secret):
            return _fail("invalid_client", "invalid client credentials")
        username = app.run_as
        user_id = self._user_lookup(username) if username else None
        if username is None or user_id is None:
            return _fail("invalid_grant", "no client credentials user enabled")
        return 200, self._issue(app, user_id, username, origin, instance_url)

    def _jwt_bearer(
        self, form: Mapping[str, str], origin: str, instance_url: str
    ) -> tuple[int, dict[str, Any]]:
        assertion = form.get("assertion", "")
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return _fail("invalid_grant", "invalid assertion")
        app = self._apps.get(str(claims.get("iss", "")))
        if app is None:
            return _fail("invalid_client_id", "client identifier invalid")
        if app.public_key_pem is None:
            return _fail("invalid_grant", "invalid assertion")
        audiences = [*STANDARD_AUDIENCES, *self.audiences, origin]
        try:
            verified = jwt.decode(
                assertion,
                app.public_key_pem,
                algorithms=["RS256"],
                audience=audiences,
                issuer=app.client_id,
                options={"require": ["exp", "iss", "sub", "aud"]},
            )
        except jwt.InvalidAudienceError:
            return _fail("invalid_grant", "audience is invalid")
        except jwt.ExpiredSignatureError:
            return _fail("invalid_grant", "expired authorization code")
        except jwt.PyJWTError:
            return _fail("invalid_grant", "invalid assertion")
        username = str(verified["sub"])
        user_id = self._user_lookup(username)
        if user_id is None:
            return _fail("invalid_grant", "user hasn't approved this consumer")
        return 200, self._issue(app, user_id, username, origin, instance_url)

    def _issue(
        self, app: ConnectedApp, user_id: str, username: str, origin: str, instance_url: str
    ) -> dict[str, Any]:
        now = self._clock()
        token = f"{self.org_id[:15]}!{secrets.token_urlsafe(48)}"
        issued_at = str(int(now * 1000))
        identity = f"{origin}/id/{self.org_id}/{user_id}"
        key = (app.client_secret or app.client_id).encode()
        signature = base64.b64encode(
            hmac.new(key, (identity + issued_at).encode(), hashlib.sha256).digest()
        ).decode()
        with self._lock:
            self._sessions[token] = Session(
                token, app.client_id, user_id, username, now, now + self.session_seconds
            )
            self._issued[app.client_id] = self._issued.get(app.client_id, 0) + 1
        return {
            "access_token": token,
            "scope": "api",
            "instance_url": instance_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
        }


def _fail(error: str, description: str) -> tuple[int, dict[str, Any]]:
    return 400, {"error": error, "error_description": description}
