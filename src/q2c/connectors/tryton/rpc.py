"""A JSON-RPC client for trytond, as any external integration would write one.

No ``trytond`` import: the server is reached at ``{base_url}/{database}/rpc/`` and spoken to in
its JSON-RPC dialect (``wire.py``). Sign-in is ``common.db.login`` -> ``[user_id, key]``, sent
back as ``Authorization: Session base64("login:user_id:key")``. Sessions expire after the
server's ``[session] timeout`` of inactivity, and methods marked ``fresh_session`` (invoice
posting, the pay wizard) refuse older ones, both with HTTP 401: ``TrytonSessionAuth`` then logs
in again once and resends, the way ``NetSuiteM2MAuth`` refreshes a token.

Every model and wizard call carries the user's context (company, language) as its last
parameter, loaded from ``model.res.user.get_preferences``. Calls go through ``RestClient``
(correlation header, pacing, payload history, HTTP-level classification); JSON-RPC errors
(HTTP 200 with ``error``) are translated in ``errors.py``. ``CallStats`` keeps the latency of
each call by method, for BENCHMARKS.md.
"""

from __future__ import annotations

import base64
import itertools
import statistics
import threading
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from q2c.connectors.http import ExchangeRecorder, RestClient, TokenBucket, parse_retry_after
from q2c.connectors.tryton import wire
from q2c.connectors.tryton.errors import translate_http_error, translate_rpc_error
from q2c.errors import (
    AuthError,
    ConfigError,
    FatalError,
    RateLimitedError,
    RetriableError,
)

__all__ = [
    "CallStats",
    "Domain",
    "TrytonRpc",
    "TrytonSessionAuth",
    "Wizard",
    "connect_rpc",
    "rpc_url_for",
]

SYSTEM = "tryton"
Domain = list[Any]
_JSON = {"Content-Type": "application/json", "Accept": "application/json"}


def rpc_url_for(base_url: str, database: str) -> str:
    return f"{base_url.rstrip('/')}/{database}/rpc/"


class TrytonSessionAuth(httpx.Auth):
    """Log in on first use, send the session on every call, log in again once on a 401."""

    requires_response_body = True

    def __init__(self, *, rpc_url: str, username: str, password: str, language: str = "en"):
        self.rpc_url = rpc_url
        self.username = username
        self._password = password
        self.language = language
        self.logins = 0  # how many times a session was obtained (tests, metrics)
        self._lock = threading.Lock()
        self._session: tuple[int, str] | None = None

    @property
    def user_id(self) -> int | None:
        return self._session[0] if self._session else None

    def forget(self) -> None:
        with self._lock:
            self._session = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        session = self._session
        if session is None:
            session = yield from self._login()
        request.headers["Authorization"] = self._header(session)
        response = yield request
        if response.status_code == 401:
            with self._lock:
                if self._session == session:
                    self._session = None
            session = yield from self._login()
            request.headers["Authorization"] = self._header(session)
            yield request

    def _header(self, session: tuple[int, str]) -> str:
        user_id, key = session
        token = f"{self.username}:{user_id}:{key}".encode()
        return "Session " + base64.b64encode(token).decode("ascii")

    def _login(self) -> Generator[httpx.Request, httpx.Response, tuple[int, str]]:
        params = [self.username, {"password": self._password}, self.language]
        body = wire.request_body(0, "common.db.login", params)
        response = yield httpx.Request("POST", self.rpc_url, content=body, headers=_JSON)
        session = self._session_from(response)
        with self._lock:
            self._session = session
            self.logins += 1
        return session

    def _session_from(self, response: httpx.Response) -> tuple[int, str]:
        where = f"POST {self.rpc_url} common.db.login -> {response.status_code}"
        detail = f"{where}: {response.text[:500]}"
        if response.status_code == 401:
            raise AuthError(
                f"Tryton refused the login of user '{self.username}'",
                detail=detail,
                system=SYSTEM,
            )
        if response.status_code == 429:
            raise RateLimitedError(
                "Tryton is refusing logins for a while after failed attempts",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                detail=detail,
                system=SYSTEM,
            )
        if response.status_code == 404:
            raise ConfigError(
                "The Tryton database q2c is configured for does not exist on that server",
                detail=detail,
                system=SYSTEM,
                suggested_fix="Correct the Tryton database name (account_id) in q2c.yaml.",
            )
        if response.status_code >= 500:
            raise RetriableError(
                f"Tryton had a server error at login ({response.status_code})",
                detail=detail,
                system=SYSTEM,
            )
        try:
            reply = wire.loads(response.content)
        except ValueError as exc:
            raise FatalError(
                "Tryton's login answer is not JSON", detail=detail, system=SYSTEM
            ) from exc
        result = reply.get("result") if isinstance(reply, dict) else None
        if isinstance(result, list) and len(result) >= 2 and isinstance(result[0], int):
            return result[0], str(result[1])
        if isinstance(reply, dict) and "error" in reply:
            error = translate_rpc_error("common.db.login", reply["error"], detail=detail)
            if "'res.user'" in error.message:
                error.suggested_fix = (
                    "trytond 8.2.1 must be started with -d <database> (or "
                    "TRYTOND_DATABASE_NAMES) so the pool is loaded; restart it that way."
                )
            raise error
        raise FatalError("Tryton's login answer has no session", detail=detail, system=SYSTEM)


@dataclass
class CallStats:
    """Latency of each JSON-RPC call, by method (milliseconds)."""

    by_method: dict[str, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, method: str, elapsed_ms: float) -> None:
        with self._lock:
            self.by_method.setdefault(method, []).append(elapsed_ms)

    def summary(self) -> dict[str, dict[str, float]]:
        """count / median / p95 / max / total per method."""
        out: dict[str, dict[str, float]] = {}
        with self._lock:
            items = {k: sorted(v) for k, v in self.by_method.items()}
        for method, values in sorted(items.items()):
            p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
            out[method] = {
                "count": len(values),
                "median_ms": round(statistics.median(values), 2),
                "p95_ms": round(p95, 2),
                "max_ms": round(values[-1], 2),
                "total_ms": round(sum(values), 2),
            }
        return out


class TrytonRpc:
    """One signed-in connection to one Tryton database."""

    system = SYSTEM

    def __init__(
        self,
        rest: RestClient,
        *,
        rpc_url: str,
        auth: TrytonSessionAuth,
        stats: CallStats | None = None,
    ) -> None:
        self.rest = rest
        self.rpc_url = rpc_url
        self.auth = auth
        self.stats = stats or CallStats()
        self._ids = itertools.count(1)
        self._context: dict[str, Any] | None = None

    # --- raw calls -------------------------------------------------------------------------

    def call(self, method: str, params: Sequence[Any]) -> Any:
        """One JSON-RPC call; the result, or the translated Tryton error raised."""
        request_id = next(self._ids)
        body = wire.request_body(request_id, method, list(params))
        started = time.perf_counter()
        try:
            response = self.rest.request("POST", self.rpc_url, content=body, headers=_JSON)
        finally:
            self.stats.record(method, (time.perf_counter() - started) * 1000)
        try:
            reply = wire.loads(response.content)
        except ValueError as exc:
            raise FatalError(
                "Tryton answered with something that is not JSON",
                detail=f"{method}: {response.text[:500]}",
                system=SYSTEM,
            ) from exc
        if not isinstance(reply, dict):
            raise FatalError(
                "Tryton's answer is not a JSON-RPC reply",
                detail=f"{method}: {response.text[:500]}",
                system=SYSTEM,
            )
        if "error" in reply and reply["error"] is not None:
            detail = f"{method} {_short(params)} -> {response.text[:2000]}"
            raise translate_rpc_error(method, reply["error"], detail=detail)
        return reply.get("result")

    @property
    def context(self) -> dict[str, Any]:
        """The user's preferences as Tryton builds them (company, language, ...)."""
        if self._context is None:
            self.refresh_context()
        assert self._context is not None
        return self._context

    def refresh_context(self) -> dict[str, Any]:
        """Reload the context, e.g. after the user's company changed."""
        prefs = self.call("model.res.user.get_preferences", [True, {}])
        self._context = dict(prefs) if isinstance(prefs, dict) else {}
        return self._context

    def model(
        self, name: str, method: str, *args: Any, context: Mapping[str, Any] | None = None
    ) -> Any:
        """``model.<name>.<method>(*args, context)``, the context last as Tryton expects."""
        return self.call(f"model.{name}.{method}", [*args, self._with(context)])

    def _with(self, extra: Mapping[str, Any] | None) -> dict[str, Any]:
        return {**self.context, **(extra or {})}

    # --- ModelStorage ----------------------------------------------------------------------

    def search_read(
        self,
        name: str,
        domain: Domain,
        fields: Sequence[str],
        *,
        offset: int = 0,
        limit: int | None = None,
        order: Sequence[tuple[str, str]] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        order_param = [list(o) for o in order] if order else None
        rows = self.model(
            name, "search_read", domain, offset, limit, order_param, list(fields), context=context
        )
        return list(rows)

    def search(
        self,
        name: str,
        domain: Domain,
        *,
        offset: int = 0,
        limit: int | None = None,
        order: Sequence[tuple[str, str]] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[int]:
        order_param = [list(o) for o in order] if order else None
        return list(self.model(name, "search", domain, offset, limit, order_param, context=context))

    def search_count(
        self, name: str, domain: Domain, *, context: Mapping[str, Any] | None = None
    ) -> int:
        return int(self.model(name, "search_count", domain, context=context))

    def iter_search_read(
        self,
        name: str,
        domain: Domain,
        fields: Sequence[str],
        *,
        page_size: int = 500,
        order: Sequence[tuple[str, str]] = (("id", "ASC"),),
        context: Mapping[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every matching row, fetched ``page_size`` at a time (offset paging on ``order``)."""
        offset = 0
        while True:
            rows = self.search_read(
                name, domain, fields, offset=offset, limit=page_size, order=order, context=context
            )
            yield from rows
            if len(rows) < page_size:
                return
            offset += page_size

    def read(
        self,
        name: str,
        ids: Sequence[int],
        fields: Sequence[str],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        return list(self.model(name, "read", list(ids), list(fields), context=context))

    def create(
        self,
        name: str,
        values: Sequence[Mapping[str, Any]],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> list[int]:
        return list(self.model(name, "create", [dict(v) for v in values], context=context))

    def write(
        self,
        name: str,
        ids: Sequence[int],
        values: Mapping[str, Any],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        self.model(name, "write", list(ids), dict(values), context=context)

    def delete(
        self, name: str, ids: Sequence[int], *, context: Mapping[str, Any] | None = None
    ) -> None:
        self.model(name, "delete", list(ids), context=context)

    def button(
        self,
        name: str,
        button: str,
        ids: Sequence[int],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> Any:
        """A workflow button such as ``account.invoice.post``."""
        return self.model(name, button, list(ids), context=context)

    def get_id(self, module: str, xml_id: str) -> int:
        """Database id of a record shipped by a module (``ir.model.data.get_id``)."""
        return int(self.model("ir.model.data", "get_id", module, xml_id))

    # --- wizards ---------------------------------------------------------------------------

    @contextmanager
    def wizard(
        self,
        name: str,
        *,
        active_model: str | None = None,
        active_ids: Sequence[int] = (),
        context: Mapping[str, Any] | None = None,
    ) -> Iterator[Wizard]:
        """Run a wizard the way the client does: create, execute states, always delete."""
        extra = dict(context or {})
        if active_model:
            extra.update(
                active_model=active_model,
                active_id=active_ids[0] if active_ids else None,
                active_ids=list(active_ids),
            )
        ctx = self._with(extra)
        session_id, start, end = self.call(f"wizard.{name}.create", [ctx])
        wizard = Wizard(self, name, int(session_id), str(start), str(end), ctx)
        try:
            yield wizard
        finally:
            self.call(f"wizard.{name}.delete", [wizard.session_id, ctx])


class Wizard:
    """One running wizard session: ``view`` shows a state, ``press`` submits a button."""

    def __init__(
        self,
        rpc: TrytonRpc,
        name: str,
        session_id: int,
        start: str,
        end: str,
        context: dict[str, Any],
    ) -> None:
        self.rpc = rpc
        self.name = name
        self.session_id = session_id
        self.start = start
        self.end = end
        self.context = context
        self.values: dict[str, dict[str, Any]] = {}  # view state -> the form's values

    def execute(self, state: str) -> dict[str, Any]:
        """Run ``state`` with the forms filled so far; returns Tryton's answer as is."""
        result = self.rpc.call(
            f"wizard.{self.name}.execute", [self.session_id, self.values, state, self.context]
        )
        answer: dict[str, Any] = result if isinstance(result, dict) else {}
        view = answer.get("view")
        if isinstance(view, dict) and view.get("state"):
            # the client shows the defaults and sends them back with the user's changes;
            # the "<field>." keys are display data Tryton refuses to receive back
            defaults = {**dict(view.get("defaults") or {}), **dict(view.get("values") or {})}
            self.values[str(view["state"])] = {
                k: v for k, v in defaults.items() if not k.endswith(".")
            }
        return answer

    def fill(self, state: str, **values: Any) -> None:
        """Set form fields of a view state, as the user would before pressing a button."""
        self.values.setdefault(state, {}).update(values)


def _short(params: Sequence[Any]) -> str:
    text = repr(list(params)[:-1]) if params else "[]"
    return text if len(text) <= 300 else text[:297] + "..."


def connect_rpc(
    client: httpx.Client,
    *,
    base_url: str,
    database: str,
    username: str,
    password: str,
    language: str = "en",
    recorder: ExchangeRecorder | None = None,
    bucket: TokenBucket | None = None,
    stats: CallStats | None = None,
) -> TrytonRpc:
    """A ``TrytonRpc`` that signs in lazily on its first call."""
    url = rpc_url_for(base_url, database)
    auth = TrytonSessionAuth(rpc_url=url, username=username, password=password, language=language)
    rest = RestClient(
        system=SYSTEM,
        client=client,
        translate_error=translate_http_error,
        auth=auth,
        bucket=bucket,
        recorder=recorder,
    )
    return TrytonRpc(rest, rpc_url=url, auth=auth, stats=stats)
