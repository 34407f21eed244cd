"""An emulated NetSuite account's REST web services, as an ASGI app (Starlette).

Endpoints, as the account serves them:

* ``POST /services/rest/auth/oauth2/v1/token`` - OAuth 2.0 client credentials (JWT assertion);
* ``/services/rest/record/v1/{type}[/{id}|/eid:{externalId}[/{sublist}]]`` - the record
  service: POST create (204 + Location), GET, PATCH (merge; ``?replace=item``), PUT on
  ``eid:`` (upsert), DELETE, and GET on a type for a paged list;
* ``POST /services/rest/query/v1/suiteql`` - SuiteQL with ``Prefer: transient``.

Every ``/services`` request is authenticated (bearer token or TBA) and counts against the
account's concurrency limit; NetSuite answers the excess with 429 ``CONCURRENCY_LIMIT_EXCEEDED``.
Errors are NetSuite's problem documents. ``/__sandbox__/*`` lets tests and ``q2c sandbox`` look
inside and reset the account; it is not part of NetSuite.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from q2c.connectors.netsuite import wire
from q2c.connectors.netsuite.render import (
    RECORD_PATH,
    collection,
    record_href,
    render_record,
    render_sublist,
)
from q2c.connectors.netsuite.schema import record_type
from q2c.connectors.netsuite.server_auth import AccountAuth, TokenRefusedError
from q2c.connectors.netsuite.state import NetSuiteState
from q2c.connectors.netsuite.wire import NetSuiteApiError
from q2c.connectors.sandbox import ASGIApp, Receive, Scope, Send

__all__ = ["ConcurrencyGovernor", "EmulatorConfig", "build_app", "netsuite_error_body"]

Access = Literal["read", "write"]

MAX_PAGE = 1000
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"


@dataclass
class EmulatorConfig:
    """Per-account behaviour a test may change: permissions the integration role lacks."""

    account_id: str
    denied: set[tuple[str, Access]] = field(default_factory=set)


def _json(body: Any, status: int = 200, content_type: str = wire.RECORD_CONTENT_TYPE) -> Response:
    return Response(wire.dumps(body), status_code=status, media_type=content_type)


def _problem(problem: NetSuiteApiError) -> Response:
    return _json(problem.body(), problem.status, wire.ERROR_CONTENT_TYPE)


def netsuite_error_body(status: int, kind: str) -> tuple[bytes, dict[str, str]]:
    """Body for an injected fault (``FaultInjector(error_body=...)``), as NetSuite words it."""
    if status == 429:
        body = wire.error_body(
            429, "CONCURRENCY_LIMIT_EXCEEDED", "Concurrent request limit exceeded. Request blocked."
        )
    else:
        body = wire.error_body(
            status, "UNEXPECTED_ERROR", f"An unexpected error occurred ({kind}). Try again later."
        )
    return wire.dumps(body), {"content-type": wire.ERROR_CONTENT_TYPE}


class ConcurrencyGovernor:
    """ASGI middleware: at most ``limit`` REST requests in flight for the account at once."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0
        self.peak = 0
        self.rejected = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/services/"):
            await self.app(scope, receive, send)
            return
        with self._lock:
            admitted = self.in_flight < self.limit
            if admitted:
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
            else:
                self.rejected += 1
        if not admitted:
            body, headers = netsuite_error_body(429, "concurrency")
            await _Responder(send).respond(429, body, headers)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            with self._lock:
                self.in_flight -= 1


@dataclass
class _Responder:
    send: Send

    async def respond(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        raw = [(k.encode(), v.encode()) for k, v in headers.items()]
        raw.append((b"content-length", str(len(body)).encode()))
        await self.send({"type": "http.response.start", "status": status, "headers": raw})
        await self.send({"type": "http.response.body", "body": body})


def build_app(state: NetSuiteState, auth: AccountAuth, config: EmulatorConfig) -> Starlette:
    """The account's REST web services over ``state``, authenticated by ``auth``."""
    service = _Service(state, auth, config)
    routes = [
        Route(TOKEN_PATH, service.token, methods=["POST"]),
        Route(SUITEQL_PATH, service.suiteql, methods=["POST"]),
        Route(
            RECORD_PATH + "/{rest:path}",
            service.records,
            methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        ),
        Route("/__sandbox__/state", service.admin_state, methods=["GET"]),
        Route("/__sandbox__/reset", service.admin_reset, methods=["POST"]),
        Route("/__sandbox__/tokens", service.admin_tokens, methods=["DELETE"]),
        Route("/__sandbox__/records/{type}", service.admin_insert, methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={
            NetSuiteApiError: service.on_problem,
            HTTPException: service.on_http_exception,
            Exception: service.on_crash,
        },
    )


def _base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _raw_path(request: Request) -> str:
    raw = request.scope.get("raw_path")
    # httpx's ASGI transport puts the query into raw_path; the ASGI spec does not.
    return raw.split(b"?", 1)[0].decode("latin-1") if raw else request.url.path


def _page_params(request: Request) -> tuple[int, int]:
    def number(name: str, default: int, low: int, high: int) -> int:
        raw = request.query_params.get(name)
        try:
            value = default if raw is None else int(raw)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise NetSuiteApiError(
                400,
                "INVALID_PARAMETER",
                f"Invalid query parameter value '{raw}' for '{name}': it must be an integer "
                f"between {low} and {high}.",
                query_param=name,
            )
        return value

    return number("limit", MAX_PAGE, 1, MAX_PAGE), number("offset", 0, 0, 10**9)


class _Service:
    def __init__(self, state: NetSuiteState, auth: AccountAuth, config: EmulatorConfig) -> None:
        self.state = state
        self.auth = auth
        self.config = config

    # --- errors ------------------------------------------------------------------------

    async def on_problem(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NetSuiteApiError)
        return _problem(exc)

    async def on_http_exception(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = "INVALID_METHOD" if exc.status_code == 405 else "NONEXISTENT_ID"
        detail = (
            f"The HTTP method {request.method} is not allowed for this resource."
            if exc.status_code == 405
            else f"The resource '{request.url.path}' does not exist."
        )
        return _problem(NetSuiteApiError(exc.status_code, code, detail))

    async def on_crash(self, request: Request, exc: Exception) -> Response:
        return _problem(
            NetSuiteApiError(
                500, "UNEXPECTED_ERROR", f"An unexpected error occurred: {type(exc).__name__}"
            )
        )

    # --- authentication and permissions --------------------------------------------------

    async def _login(self, request: Request, body: bytes) -> str:
        form: list[tuple[str, str]] = []
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = parse_qsl(body.decode(), keep_blank_values=True)
        query = request.scope.get("query_string", b"").decode("latin-1")
        url = f"{_base(request)}{_raw_path(request)}" + (f"?{query}" if query else "")
        return self.auth.authenticate(
            request.method, url, request.headers.get("authorization"), form
        )

    def _permit(self, type_name: str, access: Access) -> None:
        if (type_name, access) in self.config.denied:
            label = record_type(type_name).label
            raise NetSuiteApiError(
                403,
                "INSUFFICIENT_PERMISSION",
                f"Permission Violation: You need the '{label}' permission with level "
                f"'{'View' if access == 'read' else 'Edit'}' to access this resource. "
                "Please contact your account administrator.",
            )

    # --- OAuth 2.0 token endpoint --------------------------------------------------------

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        token_url = f"{_base(request)}{TOKEN_PATH}"
        try:
            answer = self.auth.issue_token(form, token_url)
        except TokenRefusedError as refused:
            return _json(
                {"error": refused.error, "error_description": refused.description},
                refused.status,
                "application/json",
            )
        return _json(answer, 200, "application/json")

    # --- record service ------------------------------------------------------------------

    async def records(self, request: Request) -> Response:
        body = await request.body()
        await self._login(request, body)
        segments = [unquote(s) for s in _raw_path(request)[len(RECORD_PATH) + 1 :].split("/")]
        if not segments or not segments[0] or len(segments) > 3:
            raise HTTPException(404)
        type_name = record_type(segments[0]).name
        method = request.method
        self._permit(type_name, "read" if method == "GET" else "write")
        if len(segments) == 1:
            if method == "GET":
                return self._list(request, type_name)
            if method == "POST":
                record_id = self.state.create(type_name, self._parse(body))
                return self._written(request, type_name, record_id)
            raise HTTPException(405)
        key = segments[1]
        if len(segments) == 3:
            if method != "GET":
                raise HTTPException(405)
            return self._sublist(request, type_name, self._resolve(type_name, key), segments[2])
        replace = {s for s in request.query_params.get("replace", "").split(",") if s}
        if method == "PUT":
            if not key.startswith("eid:"):
                raise NetSuiteApiError(
                    405,
                    "INVALID_METHOD",
                    "PUT (upsert) needs an external ID in the URL: "
                    f"{RECORD_PATH}/{type_name}/eid:<externalId>.",
                )
            record_id, _ = self.state.upsert(type_name, key[4:], self._parse(body), replace=replace)
            return self._written(request, type_name, record_id)
        record_id = self._resolve(type_name, key)
        if method == "GET":
            expand = request.query_params.get("expandSubResources", "").lower() == "true"
            rt = record_type(type_name)
            record = self.state.read(type_name, record_id)
            return _json(render_record(self.state, rt, record, _base(request), expand=expand))
        if method == "PATCH":
            self.state.update(type_name, record_id, self._parse(body), replace=replace)
            return self._written(request, type_name, record_id)
        if method == "DELETE":
            self.state.delete(type_name, record_id)
            return Response(status_code=204)
        raise HTTPException(405)

    def _resolve(self, type_name: str, key: str) -> str:
        if key.startswith("eid:"):
            return self.state.id_for_external_id(type_name, key[4:])
        return key

    @staticmethod
    def _parse(body: bytes) -> Any:
        try:
            return wire.loads(body or b"{}")
        except ValueError as exc:
            raise NetSuiteApiError(
                400, "INVALID_CONTENT", f"Invalid content in the request body: {exc}"
            ) from None

    def _written(self, request: Request, type_name: str, record_id: str) -> Response:
        location = record_href(_base(request), type_name, record_id)
        return Response(status_code=204, headers={"Location": location})

    def _list(self, request: Request, type_name: str) -> Response:
        limit, offset = _page_params(request)
        ids, total = self.state.page(type_name, limit, offset)
        base = _base(request)
        items = [
            {"links": [{"rel": "self", "href": record_href(base, type_name, i)}], "id": i}
            for i in ids
        ]
        href = f"{base}{RECORD_PATH}/{type_name}"
        page = collection(items, total, limit=limit, offset=offset, href=href)
        return _json(page, content_type=wire.COLLECTION_CONTENT_TYPE)

    def _sublist(self, request: Request, type_name: str, record_id: str, name: str) -> Response:
        rt = record_type(type_name)
        spec = rt.fields.get(name)
        if spec is None or spec.kind != "sublist":
            raise HTTPException(404)
        record = self.state.read(type_name, record_id)
        href = f"{record_href(_base(request), type_name, record_id)}/{name}"
        body = render_sublist(self.state, spec, record.get(name) or [], href, _base(request))
        return _json(body, content_type=wire.COLLECTION_CONTENT_TYPE)

    # --- SuiteQL ---------------------------------------------------------------------------

    async def suiteql(self, request: Request) -> Response:
        body = await request.body()
        await self._login(request, body)
        if "transient" not in request.headers.get("prefer", "").lower():
            raise NetSuiteApiError(
                400,
                "INVALID_HEADER",
                "SuiteQL queries need the request header 'Prefer: transient'.",
                header="Prefer",
            )
        limit, offset = _page_params(request)
        payload = self._parse(body)
        query = payload.get("q") if isinstance(payload, dict) else None
        rows = self.state.query(query)
        items = [{"links": [], **row} for row in rows[offset : offset + limit]]
        href = f"{_base(request)}{SUITEQL_PATH}"
        page = collection(items, len(rows), limit=limit, offset=offset, href=href)
        return _json(page, content_type=wire.COLLECTION_CONTENT_TYPE)

    # --- sandbox administration (not NetSuite) ---------------------------------------------

    async def admin_state(self, request: Request) -> Response:
        return _json(
            {
                "account": self.config.account_id,
                "records": self.state.snapshot(),
                "activeTokens": self.auth.active_tokens(),
                "tokenRequests": self.auth.token_requests,
                "loginAudit": [
                    {
                        "method": a.method,
                        "principal": a.principal,
                        "success": a.success,
                        "reason": a.reason,
                    }
                    for a in self.auth.audit[-50:]
                ],
            },
            content_type="application/json",
        )

    async def admin_reset(self, request: Request) -> Response:
        self.state.reset()
        self.auth.expire_tokens()
        return Response(status_code=204)

    async def admin_tokens(self, request: Request) -> Response:
        self.auth.expire_tokens()
        return Response(status_code=204)

    async def admin_insert(self, request: Request) -> Response:
        body = self._parse(await request.body())
        record_id = self.state.create(request.path_params["type"], body)
        return _json({"id": record_id}, 201, "application/json")
