"""The operations console under /console: server-rendered pages (Jinja2) made lively with
htmx (vendored, served from /console/static), mounted in the API's FastAPI app.

Pages need a signed-in user (``session``); anything that changes state is a POST that needs
the ``operate`` scope, checked here on the server whatever the page showed, and the session's
CSRF token.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import func, select

from q2c.api.auth import ApiAuth
from q2c.api.operations import ExceptionSelection
from q2c.api.problems import ApiError
from q2c.bootstrap import CONFIG_SECTION, Hub
from q2c.console import charts
from q2c.console.actions import (
    MappingFix,
    Operations,
    blocked_by,
    final_states,
    mapping_fix_of,
    run_now,
)
from q2c.console.dashboard import AGING_BUCKETS, WINDOWS, build_dashboard
from q2c.console.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    ConsoleUser,
    SessionSigner,
    new_session,
    session_key,
    user_of,
)
from q2c.console.timeline import search_transactions, thread_of
from q2c.runtime.exception_queue import ExceptionFilter
from q2c.runtime.jsonutil import loads
from q2c.store.schema import exceptions, steps, transactions

__all__ = ["console_router", "mount_console"]

_HERE = Path(__file__).parent
_MAX_FORM_BYTES = 1024 * 1024
_STATUSES = ["pending", "running", "retry_wait", "completed", "parked", "dismissed"]
_EXCEPTION_STATUSES = ["open", "replaying", "resolved", "dismissed"]
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class _SignInRequiredError(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class _RefusedError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


@dataclass
class Console:
    hub: Hub
    auth: ApiAuth
    signer: SessionSigner
    operations: Operations
    templates: Jinja2Templates
    stale_after: dict[str, timedelta]

    def page(
        self,
        request: Request,
        template: str,
        user: ConsoleUser | None,
        status: int = 200,
        **context: Any,
    ) -> Response:
        response = self.templates.TemplateResponse(
            request,
            template,
            {"user": user, "charts": charts, **context},
            status_code=status,
        )
        response.headers.update(_SECURITY_HEADERS)
        return response

    def enabled_flows(self) -> set[str]:
        settings = self.hub.config.flows
        enabled = set()
        for flow in self.hub.flows:
            section = getattr(settings, CONFIG_SECTION.get(flow, flow), None)
            if section is not None and (section.enabled_for or section.shadow_for):
                enabled.add(flow)
        return enabled


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def _signed_in(request: Request) -> ConsoleUser:
    console = _console(request)
    user = user_of(console.auth, console.signer.unsign(request.cookies.get(SESSION_COOKIE)))
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise _SignInRequiredError(target if request.method == "GET" else "/console/")
    return user


SignedIn = Annotated[ConsoleUser, Depends(_signed_in)]


async def _form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise _RefusedError(413, "The form is too large.")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and media != "application/x-www-form-urlencoded":
        raise _RefusedError(415, "Send the form as application/x-www-form-urlencoded.")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise _RefusedError(400, "The form could not be read.") from None


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:  # not a browser, or one that sends no Origin: CSRF token still needed
        return True
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


async def _operator_form(request: Request, user: SignedIn) -> tuple[ConsoleUser, dict[str, str]]:
    """A state-changing POST: operate scope, same origin, and the session's CSRF token."""
    form = await _form(request)
    offered = request.headers.get("x-csrf-token") or form.get("csrf_token")
    if not _same_origin(request) or not user.csrf_ok(offered):
        raise _RefusedError(403, "The form expired or came from another site; reload and retry.")
    if not user.can_operate:
        raise _RefusedError(
            403, f"Client {user.principal.client_id} may only read: replaying, editing, "
            "dismissing and fixing mappings need the operate scope."
        )
    return user, form


Operator = Annotated[tuple[ConsoleUser, dict[str, str]], Depends(_operator_form)]


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console/"


def _as_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


def console_router() -> APIRouter:
    router = APIRouter(prefix="/console", include_in_schema=False)

    # --- sign-in -------------------------------------------------------------------------
    @router.get("/login")
    def login_page(request: Request, next: str | None = None) -> Response:
        console = _console(request)
        return _login_form(console, request, next_url=_safe_next(next))

    @router.post("/login")
    async def login(request: Request) -> Response:
        console = _console(request)
        form = await _form(request)
        expected = console.signer.unsign(request.cookies.get(LOGIN_COOKIE)) or {}
        offered = form.get("login_token", "")
        next_url = _safe_next(form.get("next"))
        if not expected.get("l") or not secrets.compare_digest(str(expected["l"]), offered):
            return _login_form(
                console, request, next_url=next_url, status=403,
                error="The sign-in form expired; please try again.",
            )
        client_id = form.get("client_id", "").strip()
        name = form.get("name", "").strip()[:100]
        auth = console.auth
        token: str | None = None
        if auth.enabled:
            known = auth.clients.get(client_id)
            if known is not None and auth.limiter.take(f"token|{client_id}", known.rate_limit):
                return _login_form(
                    console, request, next_url=next_url, status=429,
                    error="Too many sign-in attempts; wait a minute.",
                )
            client = auth.client(client_id, form.get("client_secret", ""))
            if client is None:
                return _login_form(
                    console, request, next_url=next_url, status=401,
                    error="Unknown client or wrong secret.",
                )
            token = auth.issue(client.id).access_token
        session = new_session(token, name or client_id or "anonymous")
        response = RedirectResponse(next_url, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            console.signer.sign(session),
            max_age=auth.config.token.ttl_seconds if auth.enabled else 8 * 3600,
            path="/console",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        response.delete_cookie(LOGIN_COOKIE, path="/console")
        return response

    @router.post("/logout")
    async def logout(request: Request, user: SignedIn) -> Response:
        form = await _form(request)
        if not user.csrf_ok(request.headers.get("x-csrf-token") or form.get("csrf_token")):
            raise _RefusedError(403, "The form expired; reload and retry.")
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/console")
        return response

    # --- dashboard -----------------------------------------------------------------------
    @router.get("")
    def root() -> Response:
        return RedirectResponse("/console/", status_code=307)

    @router.get("/")
    def dashboard(request: Request, user: SignedIn, window: str = "auto") -> Response:
        console = _console(request)
        if window not in WINDOWS:
            window = "auto"
        board = build_dashboard(
            console.hub.db,
            now=console.hub.clock(),
            flows=list(console.hub.flows),
            enabled=console.enabled_flows(),
            window=window,
            stale_after=console.stale_after,
        )
        template = "_dashboard_panels.html" if request.headers.get("hx-request") else (
            "dashboard.html"
        )
        labels = [label for label, _ in AGING_BUCKETS]
        aging_colors = ["#9ccc65", "#ffca28", "#ffa726", "#ef5350", "#b71c1c"]
        return console.page(
            request, template, user, board=board, windows=["auto", *WINDOWS],
            aging_labels=labels,
            aging_chart=charts.bar_chart(
                "open exceptions by age",
                [(label, n, color) for label, n, color in
                 zip(labels, board.aging_totals, aging_colors, strict=True)],
            ) if board.aging else "",
            latency_chart=charts.bar_chart(
                "p95 latency per flow",
                [(row.flow, round(row.p95, 2), "#1565c0") for row in board.latency],
                unit=" s",
            ) if board.latency else "",
        )

    # --- transactions --------------------------------------------------------------------
    @router.get("/transactions")
    def transactions_page(
        request: Request,
        user: SignedIn,
        flow: str | None = None,
        status: str | None = None,
        system: str | None = None,
        business_key: str | None = None,
        correlation_id: str | None = None,
        created_from: str | None = None,
        created_to: str | None = None,
        cursor: str | None = None,
    ) -> Response:
        console = _console(request)
        filters = {
            "flow": flow or "",
            "status": status or "",
            "system": system or "",
            "business_key": (business_key or "").strip()[:300],
            "correlation_id": (correlation_id or "").strip()[:200],
            "created_from": created_from or "",
            "created_to": created_to or "",
        }
        page = search_transactions(
            console.hub.db,
            flow=filters["flow"] or None,
            status=filters["status"] or None,
            system=filters["system"] or None,
            business_key=filters["business_key"] or None,
            correlation_id=filters["correlation_id"] or None,
            created_from=_as_date(created_from),
            created_to=_as_date(created_to),
            cursor=cursor,
        )
        with console.hub.db.connect() as connection:
            systems = sorted(
                s
                for s in connection.execute(select(steps.c.system).distinct()).scalars()
                if s
            )
        query = "&".join(f"{k}={quote(v)}" for k, v in filters.items() if v)
        template = "_transaction_rows.html" if request.headers.get("hx-request") else (
            "transactions.html"
        )
        return console.page(
            request, template, user, page=page, filters=filters, query=query,
            flows=sorted(console.hub.flows), statuses=_STATUSES, systems=systems,
        )

    @router.get("/transactions/{transaction_id}")
    def transaction(request: Request, user: SignedIn, transaction_id: str) -> Response:
        console = _console(request)
        with console.hub.db.connect() as connection:
            correlation = connection.execute(
                select(transactions.c.correlation_id).where(transactions.c.id == transaction_id)
            ).scalar_one_or_none()
        if correlation is None:
            raise _RefusedError(404, f"No transaction {transaction_id}.")
        return RedirectResponse(
            f"/console/timeline/{quote(correlation, safe='')}#tx-{quote(transaction_id)}",
            status_code=303,
        )

    @router.get("/timeline/{correlation_id}")
    def timeline(request: Request, user: SignedIn, correlation_id: str) -> Response:
        console = _console(request)
        thread = thread_of(console.hub.db, correlation_id)
        if not thread.transactions:
            raise _RefusedError(404, f"No transaction has correlation id {correlation_id}.")
        lanes = []
        for _stage, members in thread.by_stage():
            for flow in dict.fromkeys(t.row.flow for t in members):
                lanes.append(
                    (
                        flow,
                        [
                            (t.row.created_at, t.ended_at, t.row.status,
                             f"{t.row.business_key}: {t.row.status}")
                            for t in members
                            if t.row.flow == flow
                        ],
                    )
                )
        return console.page(
            request, "timeline.html", user, thread=thread,
            strip=charts.timeline_strip(lanes),
        )

    @router.get("/payloads/{payload_id}")
    def payload(request: Request, user: SignedIn, payload_id: int) -> Response:
        console = _console(request)
        kept = console.hub.payloads.get(payload_id)
        if kept is None:
            raise _RefusedError(404, f"No payload {payload_id} (never kept, or past retention).")
        return console.page(request, "payload.html", user, payload=kept)

    # --- exceptions ----------------------------------------------------------------------
    @router.get("/exceptions")
    def exceptions_page(
        request: Request,
        user: SignedIn,
        status: str = "open",
        flow: str | None = None,
        system: str | None = None,
        error: str | None = None,
    ) -> Response:
        console = _console(request)
        where = ExceptionFilter(
            status=status if status in _EXCEPTION_STATUSES else None,
            flow=flow or None,
            system=system or None,
            error=error or None,
        )
        items = console.hub.engine.exception_queue.list(where, limit=500)
        with console.hub.db.connect() as connection:
            facets = connection.execute(
                select(exceptions.c.flow, exceptions.c.system, exceptions.c.error, func.count())
                .group_by(exceptions.c.flow, exceptions.c.system, exceptions.c.error)
            ).all()
        correlations = _correlations(console.hub, [p.transaction_id for p in items])
        return console.page(
            request, "exceptions.html", user, items=items, now=console.hub.clock(),
            filters={"status": status, "flow": flow or "", "system": system or "",
                     "error": error or ""},
            statuses=[*_EXCEPTION_STATUSES, "all"],
            flows=sorted({f for f, _, _, _ in facets}),
            systems=sorted({s for _, s, _, _ in facets if s}),
            errors=sorted({e for _, _, e, _ in facets}),
            fixes={p.id: mapping_fix_of(p) for p in items},
            correlations=correlations,
        )

    @router.get("/exceptions/{exception_id}")
    def exception_page(request: Request, user: SignedIn, exception_id: int) -> Response:
        console = _console(request)
        parked = console.hub.engine.exception_queue.get(exception_id)
        if parked is None:
            raise _RefusedError(404, f"No exception {exception_id}.")
        with console.hub.db.connect() as connection:
            row = connection.execute(
                select(transactions).where(transactions.c.id == parked.transaction_id)
            ).one_or_none()
        data = loads(row.input).get("data") if row is not None else None
        return console.page(
            request, "exception.html", user, item=parked, transaction=row,
            now=console.hub.clock(), fix=mapping_fix_of(parked),
            data_json=orjson.dumps(data, option=orjson.OPT_INDENT_2).decode(),
        )

    @router.post("/exceptions/{exception_id}/preview")
    async def preview(request: Request, exception_id: int, operator: Operator) -> Response:
        console, (user, _) = _console(request), operator
        try:
            outcome = await console.operations.preview(
                exception_id, user.token, by=user.name
            )
        except ApiError as exc:
            return console.page(request, "_notice.html", user, status=exc.status,
                                kind="error", message=exc.detail)
        return console.page(request, "_preview.html", user, outcomes=[outcome], dry_run=True)

    @router.post("/exceptions/{exception_id}/replay")
    async def replay(request: Request, exception_id: int, operator: Operator) -> Response:
        console, (user, form) = _console(request), operator
        try:
            outcome = await console.operations.replay(
                exception_id, user.token, by=user.name,
                reason=form.get("reason", "").strip()[:2000] or None,
            )
        except ApiError as exc:
            raise _RefusedError(exc.status, exc.detail) from None
        results = await run_in_threadpool(run_now, console.hub, [outcome.transaction_id])
        return console.page(
            request, "result.html", user, title="Replayed", message=outcome.message,
            results=results,
        )

    @router.post("/exceptions/{exception_id}/edit-and-replay")
    async def edit_and_replay(request: Request, exception_id: int, operator: Operator) -> Response:
        console, (user, form) = _console(request), operator
        reason = form.get("reason", "").strip()
        if not reason:
            raise _RefusedError(422, "Say why you changed the payload (it is kept with it).")
        try:
            data = orjson.loads(form.get("data", ""))
        except orjson.JSONDecodeError as exc:
            raise _RefusedError(422, f"The payload is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise _RefusedError(422, "The payload must be a JSON object.")
        try:
            response = await console.operations.edit_and_replay(
                exception_id, user.token, by=user.name, data=data,
                reason=reason[:2000],
            )
        except ApiError as exc:
            raise _RefusedError(exc.status, exc.detail) from None
        except PydanticValidationError as exc:
            raise _RefusedError(422, str(exc.errors()[0]["msg"])) from None
        results = await run_in_threadpool(
            run_now, console.hub, [response.replay.transaction_id]
        )
        return console.page(
            request, "result.html", user, title="Corrected and replayed",
            message=f"Correction kept as payload {response.payload_id}; "
            f"{response.replay.message}.",
            results=results, payload_id=response.payload_id,
        )

    @router.post("/exceptions/{exception_id}/dismiss")
    async def dismiss(request: Request, exception_id: int, operator: Operator) -> Response:
        console, (user, form) = _console(request), operator
        reason = form.get("reason", "").strip()
        if not reason:
            raise _RefusedError(422, "Say why you dismiss it (the reason is kept).")
        try:
            await console.operations.dismiss(
                exception_id, user.token, by=user.name, reason=reason[:2000]
            )
        except ApiError as exc:
            raise _RefusedError(exc.status, exc.detail) from None
        parked = await run_in_threadpool(console.hub.engine.exception_queue.get, exception_id)
        results = await run_in_threadpool(
            final_states, console.hub, [parked.transaction_id] if parked else []
        )
        return console.page(
            request, "result.html", user, title="Dismissed",
            message=f"Exception {exception_id} dismissed: {reason}", results=results,
        )

    @router.post("/exceptions/bulk-replay")
    async def bulk_replay(request: Request, operator: Operator) -> Response:
        console, (user, form) = _console(request), operator
        try:
            selection = ExceptionSelection(
                flow=form.get("flow") or None,
                system=form.get("system") or None,
                error=form.get("error") or None,
            )
        except PydanticValidationError:
            raise _RefusedError(422, "The filter is not valid.") from None
        dry_run = form.get("dry_run") == "1"
        limit = max(1, min(_int(form.get("limit"), 100), 1000))
        try:
            response = await console.operations.bulk(
                selection, user.token, by=user.name,
                reason=form.get("reason", "").strip()[:2000] or None, dry_run=dry_run,
                limit=limit,
            )
        except ApiError as exc:
            raise _RefusedError(exc.status, exc.detail) from None
        if dry_run:
            return console.page(
                request, "_preview.html", user, outcomes=response.outcomes, dry_run=True,
                bulk=response, selection=selection,
            )
        replayed = [o.transaction_id for o in response.outcomes if o.accepted]
        results = await run_in_threadpool(run_now, console.hub, replayed)
        return console.page(
            request, "result.html", user, title="Bulk replay",
            message=f"{response.accepted} of {response.matched} replayed.", results=results,
        )

    @router.get("/exceptions/{exception_id}/fix-mapping")
    def fix_mapping_page(request: Request, user: SignedIn, exception_id: int) -> Response:
        console = _console(request)
        parked = console.hub.engine.exception_queue.get(exception_id)
        if parked is None:
            raise _RefusedError(404, f"No exception {exception_id}.")
        fix = mapping_fix_of(parked)
        if fix is None:
            raise _RefusedError(409, "This exception is not about a missing mapping.")
        return console.page(
            request, "fix_mapping.html", user, item=parked, fix=fix,
            blocked=blocked_by(console.hub, fix),
        )

    @router.post("/exceptions/{exception_id}/fix-mapping")
    async def fix_mapping(request: Request, exception_id: int, operator: Operator) -> Response:
        console, (user, form) = _console(request), operator
        parked = await run_in_threadpool(console.hub.engine.exception_queue.get, exception_id)
        if parked is None or mapping_fix_of(parked) is None:
            raise _RefusedError(404, f"No missing-mapping exception {exception_id}.")
        fields = {k: form.get(k, "").strip() for k in
                  ("dimension", "value", "legal_entity", "system", "external_id")}
        empty = [k.replace("_", " ") for k, v in fields.items() if not v]
        if empty:
            raise _RefusedError(422, f"Fill in {', '.join(empty)}.")
        if any(len(v) > 300 for v in fields.values()):
            raise _RefusedError(422, "Each field holds at most 300 characters.")
        fix = MappingFix(fields["dimension"], fields["value"], fields["legal_entity"],
                         fields["system"])
        try:
            results = await console.operations.fix_mapping(
                fix, fields["external_id"], user.principal, user.token, by=user.name
            )
        except ApiError as exc:
            raise _RefusedError(exc.status, exc.detail) from None
        completed = sum(r.status == "completed" for r in results)
        return console.page(
            request, "result.html", user, title="Mapping added",
            message=f"{fix.dimension} '{fix.value}' ({fix.legal_entity}) → {fix.system} "
            f"'{fields['external_id']}'. Replayed {len(results)} blocked transaction"
            f"{'s' if len(results) != 1 else ''}: {completed} completed.",
            results=results,
            note="Every worker uses this mapping now (kept in the hub's store); copy it into "
            f"q2c.yaml (mappings.{fix.dimension}.\"{fix.value}\".{fix.legal_entity}."
            f"{fix.system}) so git has it too: q2c mappings list shows the ones to copy.",
        )

    # --- cross-references ----------------------------------------------------------------
    @router.get("/xref")
    def xref_page(
        request: Request,
        user: SignedIn,
        canonical_id: str | None = None,
        system: str | None = None,
        object_type: str | None = None,
        external_id: str | None = None,
    ) -> Response:
        console = _console(request)
        filters = {
            "canonical_id": (canonical_id or "").strip()[:100],
            "system": (system or "").strip()[:100],
            "object_type": (object_type or "").strip()[:50],
            "external_id": (external_id or "").strip()[:300],
        }
        rows = console.hub.xref.search(**{k: v or None for k, v in filters.items()}, limit=200)
        history = (
            console.hub.xref.history(filters["canonical_id"]) if filters["canonical_id"] else []
        )
        return console.page(request, "xref.html", user, rows=rows, filters=filters,
                            history=history)

    return router


def _correlations(hub: Hub, transaction_ids: list[str]) -> dict[str, str]:
    if not transaction_ids:
        return {}
    with hub.db.connect() as connection:
        return {
            r.id: r.correlation_id
            for r in connection.execute(
                select(transactions.c.id, transactions.c.correlation_id).where(
                    transactions.c.id.in_(sorted(set(transaction_ids))[:1000])
                )
            )
        }


def _login_form(
    console: Console,
    request: Request,
    *,
    next_url: str,
    status: int = 200,
    error: str | None = None,
) -> Response:
    token = secrets.token_urlsafe(24)
    response = console.page(
        request, "login.html", None, status=status, next_url=next_url, login_token=token,
        error=error, auth_enabled=console.auth.enabled,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        console.signer.sign({"l": token}),
        max_age=3600,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _filters(templates: Jinja2Templates, now: Callable[[], datetime]) -> None:
    def ago(moment: datetime | None) -> str:
        if moment is None:
            return "never"
        return f"{_span((now() - moment).total_seconds())} ago"

    def span(value: timedelta | float | None) -> str:
        if value is None:
            return "—"
        seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
        return _span(seconds)

    def stamp(moment: datetime | None) -> str:
        return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else "—"

    def pretty(raw: Any) -> str:
        if raw is None:
            return ""
        if isinstance(raw, str):
            try:
                raw = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return str(raw)
        return orjson.dumps(raw, option=orjson.OPT_INDENT_2, default=str).decode()

    templates.env.filters.update(ago=ago, span=span, stamp=stamp, pretty=pretty)


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def mount_console(app: FastAPI, *, stale_after: dict[str, timedelta] | None = None) -> None:
    """Serve the console under /console in the API's app (``app.state.hub`` and
    ``app.state.auth`` are the API's)."""
    hub: Hub = app.state.hub
    auth: ApiAuth = app.state.auth
    templates = Jinja2Templates(directory=str(_HERE / "templates"))
    _filters(templates, hub.clock)
    app.state.console = Console(
        hub=hub,
        auth=auth,
        signer=SessionSigner(session_key(auth)),
        operations=Operations(app, hub),
        templates=templates,
        stale_after=stale_after or {},
    )
    app.mount("/console/static", StaticFiles(directory=str(_HERE / "static")), name="console")
    app.include_router(console_router())

    async def sign_in_first(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _SignInRequiredError)
        target = f"/console/login?next={quote(exc.next_url, safe='')}"
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _RefusedError)
        console: Console = request.app.state.console
        user = await run_in_threadpool(
            user_of, auth, console.signer.unsign(request.cookies.get(SESSION_COOKIE))
        )
        template = "_notice.html" if request.headers.get("hx-request") else "error.html"
        return console.page(
            request, template, user, status=exc.status, kind="error", message=exc.message
        )

    app.add_exception_handler(_SignInRequiredError, sign_in_first)
    app.add_exception_handler(_RefusedError, refused)
