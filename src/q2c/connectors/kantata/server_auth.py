"""The emulated account's OAuth server side: registered application, issued tokens.

Kantata's OAuth server is Doorkeeper: ``POST /oauth/token`` with ``grant_type`` of
``refresh_token`` or ``client_credentials`` and the application's ``client_id`` /
``client_secret`` (form fields or HTTP Basic). Success is ``{"access_token", "token_type":
"Bearer", "expires_in", "refresh_token", "created_at"}``; failure is
``{"error": "invalid_client" | "invalid_grant" | ..., "error_description": ...}`` (401 for a
bad client, 400 otherwise). API calls without a live token get Kantata's 401 body
``{"errors": [{"type": "oauth", "message": "Invalid OAuth 2 Request"}]}``.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OAuthApplication", "TokenRefusedError", "TokenStore"]

TOKEN_LIFETIME = 7200


class TokenRefusedError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.body = {"error": error, "error_description": description}


@dataclass(frozen=True)
class OAuthApplication:
    client_id: str
    client_secret: str


@dataclass
class TokenStore:
    """Tokens the account accepts, and how many were handed out through ``/oauth/token``."""

    application: OAuthApplication
    tokens: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=set)
    token_requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def issue(self) -> tuple[str, str]:
        """A fresh access token and refresh token, as an administrator would obtain them."""
        access, refresh = secrets.token_hex(32), secrets.token_hex(32)
        with self._lock:
            self.tokens.add(access)
            self.refresh_tokens.add(refresh)
        return access, refresh

    def valid(self, authorization: str | None) -> bool:
        if not authorization or not authorization.lower().startswith("bearer "):
            return False
        with self._lock:
            return authorization[7:].strip() in self.tokens

    def expire_tokens(self) -> None:
        """Forget every access token (refresh tokens survive, as after an expiry)."""
        with self._lock:
            self.tokens.clear()

    def grant(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:]).decode()
                client_id, _, client_secret = decoded.partition(":")
            except ValueError:
                client_id = client_secret = None
        app = self.application
        if client_id != app.client_id or not secrets.compare_digest(
            client_secret or "", app.client_secret
        ):
            raise TokenRefusedError(
                401,
                "invalid_client",
                "Client authentication failed due to unknown client, no client authentication "
                "included, or unsupported authentication method.",
            )
        grant_type = form.get("grant_type")
        with self._lock:
            if grant_type == "refresh_token":
                presented = form.get("refresh_token") or ""
                if presented not in self.refresh_tokens:
                    raise TokenRefusedError(
                        400,
                        "invalid_grant",
                        "The provided authorization grant is invalid, expired, revoked, does "
                        "not match the redirection URI used in the authorization request, or was "
                        "issued to another client.",
                    )
            elif grant_type != "client_credentials":
                raise TokenRefusedError(
                    400,
                    "unsupported_grant_type",
                    "The authorization grant type is not supported by the authorization server.",
                )
            access = secrets.token_hex(32)
            self.tokens.add(access)
            self.token_requests += 1
            body: dict[str, Any] = {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME,
                "scope": "api_only",
            }
            if grant_type == "refresh_token":
                body["refresh_token"] = form.get("refresh_token")
            return body
