"""A Salesforce org as an ASGI app: OAuth token endpoint, REST API, and sandbox admin.

``SalesforceSandbox`` bundles what a test or the demo needs: the org's ``state``, its OAuth
``oauth`` server with one registered connected app (client secret and, on first use, an RSA key
pair for the JWT bearer flow), the fault ``faults`` plan, the fault-wrapped ``app``, and
``client()`` for an in-process ``httpx.Client``. Run standalone (``uvicorn``), the admin
endpoints under ``/__sandbox__/`` dump, reset and seed the org and expire tokens; they are not
subject to injected faults, so a test can always look inside.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast
from urllib.parse import parse_qsl

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from q2c.connectors.salesforce.exchange import ApiRequest, ApiResponse
from q2c.connectors.salesforce.oauth import ConnectedApp, OAuthServer
from q2c.connectors.salesforce.rest import LATEST_VERSION, RestApi, version_label
from q2c.connectors.salesforce.state import SalesforceState
from q2c.connectors.salesforce.wire import ApiError, dumps, loads
from q2c.connectors.sandbox import (
    ASGIApp,
    FaultInjector,
    FaultPlan,
    InProcessTransport,
    Receive,
    Scope,
    Send,
)

__all__ = [
    "DEFAULT_URL",
    "SalesforceSandbox",
    "SalesforceState",
    "build_app",
    "salesforce_error_body",
]

DEFAULT_URL = "https://q2c-sandbox.my.salesforce.com"
_JSON = "application/json;charset=UTF-8"
_ALL_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"]


def salesforce_error_body(status: int, kind: str) -> tuple[bytes, dict[str, str]]:
    """Injected faults answer like Salesforce: its error list, not a generic JSON blob."""
    if status == 429 or kind == "rate_limit":
        code = "REQUEST_LIMIT_EXCEEDED"
        message = "Too many requests: the org's API request rate was exceeded."
    elif status == 503:
        code, message = "SERVER_UNAVAILABLE", "Server temporarily unavailable. Please retry."
    else:
        code = "UNKNOWN_EXCEPTION"
        message = (
            f"An unexpected error occurred. Please include this ErrorId if you contact "
            f"support: {secrets.randbelow(10**9)}-{secrets.randbelow(10**5)} ({status})"
        )
    body = dumps([{"message": message, "errorCode": code}])
    return body, {"content-type": _JSON}


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    if body is None:
        return Response(status_code=status, headers=headers)
    return Response(dumps(body), status_code=status, headers=headers, media_type=_JSON)


def _error(error: ApiError) -> Response:
    return _json(error.status, error.errors)


def build_app(
    state: SalesforceState,
    oauth: OAuthServer,
    api: RestApi,
    *,
    instance_url: str | None = None,
) -> Starlette:
    """The org itself (no faults, no admin): token endpoint and REST API."""

    def origin_of(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}"

    async def token(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        origin = origin_of(request)
        status, body = oauth.token(
            form,
            authorization=request.headers.get("authorization"),
            origin=origin,
            instance_url=instance_url or origin,
        )
        return _json(status, body, {"Cache-Control": "no-cache,must-revalidate,max-age=0"})

    async def revoke(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        oauth.revoke(form.get("token") or request.query_params.get("token", ""))
        return Response(status_code=200)

    async def versions(request: Request) -> Response:
        latest = int(float(LATEST_VERSION))
        return _json(
            200,
            [
                {"label": version_label(v), "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
                for v in range(31, latest + 1)
            ],
        )

    def session_of(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not token:
            return None
        found = oauth.session(token.strip())
        return found.user_id if found else None

    async def rest(request: Request) -> Response:
        user_id = session_of(request)
        if user_id is None:
            return _unauthorized()
        raw = await request.body()
        try:
            body = loads(raw) if raw.strip() else None
        except ValueError as exc:
            return _json(
                400, [{"message": f"Unexpected character: {exc}", "errorCode": "JSON_PARSER_ERROR"}]
            )
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        response: ApiResponse = api.handle(
            ApiRequest(
                method=request.method,
                raw_path=raw_path.decode("latin-1").split("?", 1)[0],
                query=dict(request.query_params),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                user_id=user_id,
            )
        )
        return _json(response.status, response.body, response.headers)

    async def apexrest(request: Request) -> Response:
        if session_of(request) is None:
            return _unauthorized()
        return _json(404, [{"errorCode": "NOT_FOUND", "message": "Could not find a match for URL"}])

    async def unknown(request: Request) -> Response:
        return _json(
            404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
        )

    return Starlette(
        routes=[
            Route("/services/oauth2/token", token, methods=["POST"]),
            Route("/services/oauth2/revoke", revoke, methods=["GET", "POST"]),
            Route("/services/data", versions, methods=["GET"]),
            Route("/services/data/", versions, methods=["GET"]),
            Route("/services/data/{rest:path}", rest, methods=_ALL_METHODS),
            Route("/services/apexrest/{rest:path}", apexrest, methods=_ALL_METHODS),
            Route("/{rest:path}", unknown, methods=_ALL_METHODS),
        ]
    )


def _unauthorized() -> Response:
    return _json(
        401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    )


class _SandboxApp:
    """Admin paths go straight to the admin app; everything else passes the fault injector."""

    def __init__(self, admin: ASGIApp, faulted: FaultInjector) -> None:
        self.admin = admin
        self.faulted = faulted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] == "http"
            and path.startswith("/__sandbox__/")
            and not path.startswith(FaultInjector.ADMIN_PREFIX)
        ):
            await self.admin(scope, receive, send)
        else:
            await self.faulted(scope, receive, send)


class SalesforceSandbox:
    """An emulated org with its connected app, ready for tests and the demo."""

    def __init__(
        self,
        *,
        page_size: int = 2000,
        min_batch_size: int = 200,
        instance_url: str | None = None,
        login_url: str = DEFAULT_URL,
        client_id: str = "q2c-connected-app",
        client_secret: str | None = None,
        username: str = "integration@q2c.example",
        daily_api_requests: int = 100_000,
        session_seconds: float = 7200.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.login_url = login_url.rstrip("/")
        self.instance_url = instance_url.rstrip("/") if instance_url else None
        self.username = username
        self.state = SalesforceState(clock=clock, username=username)
        self.oauth = OAuthServer(
            org_id=self.state.org_id,
            user_lookup=self.user_id,
            audiences=(self.login_url,),
            session_seconds=session_seconds,
        )
        self.api = RestApi(
            self.state,
            page_size=page_size,
            min_batch_size=min_batch_size,
            daily_api_requests=daily_api_requests,
        )
        self.faults = FaultPlan()
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.oauth.register(ConnectedApp(client_id, self.client_secret, run_as=username))
        self._private_key_pem: str | None = None
        self._clients: list[httpx.Client] = []
        org = build_app(self.state, self.oauth, self.api, instance_url=self.instance_url)
        # Starlette types scopes as MutableMapping; the sandbox kit as dict: same protocol
        self.app: ASGIApp = _SandboxApp(
            cast(ASGIApp, self._admin_app()),
            FaultInjector(cast(ASGIApp, org), self.faults, error_body=salesforce_error_body),
        )

    # --- connecting -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.instance_url or self.login_url

    def client(self, timeout: float = 5.0) -> httpx.Client:
        """An httpx client calling this org in-process (with real read timeouts)."""
        client = httpx.Client(
            transport=InProcessTransport(self.app), base_url=self.base_url, timeout=timeout
        )
        self._clients.append(client)
        return client

    def close(self) -> None:
        """Close every client handed out (each holds an event-loop thread)."""
        while self._clients:
            self._clients.pop().close()

    def __enter__(self) -> SalesforceSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def jwt_private_key_pem(self) -> str:
        """PEM private key of the connected app's certificate (generated on first use)."""
        if self._private_key_pem is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self._private_key_pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
            public = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            app = self.oauth.app(self.client_id)
            assert app is not None
            app.public_key_pem = public
        return self._private_key_pem

    def register_client(
        self,
        client_id: str,
        *,
        client_secret: str | None = None,
        public_key_pem: bytes | None = None,
        run_as: str | None = None,
    ) -> ConnectedApp:
        return self.oauth.register(
            ConnectedApp(client_id, client_secret, public_key_pem, run_as or self.username)
        )

    def user_id(self, username: str) -> str | None:
        """Id of the active user with this username (JWT ``sub`` must name one)."""
        matches = [u for u in self.state.find("User", "Username", username) if u["IsActive"]]
        return matches[0]["Id"] if matches else None

    def add_user(self, username: str, name: str | None = None) -> str:
        return self.state.insert(
            "User", {"Username": username, "Name": name or username, "Email": username}
        )

    def expire_tokens(self) -> int:
        return self.oauth.expire_all()

    def tokens_issued(self, client_id: str | None = None) -> int:
        return self.oauth.issued(client_id)

    def reset(self) -> None:
        self.state.reset()
        self.oauth.expire_all()
        self.faults.clear()

    # --- admin endpoints ------------------------------------------------------------------------

    def _admin_app(self) -> Starlette:
        async def state(request: Request) -> Response:
            return _json(
                200,
                {
                    "orgId": self.state.org_id,
                    "records": self.state.dump(),
                    "changeEvents": len(self.state.change_events),
                },
            )

        async def reset(request: Request) -> Response:
            self.reset()
            return _json(200, {"reset": True})

        async def tokens(request: Request) -> Response:
            return _json(200, {"expired": self.expire_tokens()})

        async def events(request: Request) -> Response:
            return _json(200, self.state.change_events)

        async def seed(request: Request) -> Response:
            try:
                payload = loads(await request.body())
                items = payload if isinstance(payload, list) else [payload]
                with self.state.atomic():
                    ids = [
                        self.state.insert(request.path_params["sobject"], item) for item in items
                    ]
            except ApiError as error:
                return _error(error)
            except ValueError as exc:
                return _json(400, [{"message": str(exc), "errorCode": "JSON_PARSER_ERROR"}])
            return _json(201, {"ids": ids})

        return Starlette(
            routes=[
                Route("/__sandbox__/state", state, methods=["GET"]),
                Route("/__sandbox__/reset", reset, methods=["POST"]),
                Route("/__sandbox__/tokens", tokens, methods=["DELETE"]),
                Route("/__sandbox__/events", events, methods=["GET"]),
                Route("/__sandbox__/records/{sobject}", seed, methods=["POST"]),
            ]
        )
