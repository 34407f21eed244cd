"""Every error the API returns is RFC 9457 problem details (``application/problem+json``).

Handlers turn FastAPI's own errors (404 routes, 405 methods, request validation) into the same
shape, so a client parses one error format and a bad input is always a precise 4xx: a body
that is not JSON is 400, one that is JSON but invalid is 422 naming each field.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from q2c.canonical.inbound import field_path

__all__ = [
    "PROBLEM",
    "ApiError",
    "Problem",
    "install_problem_handlers",
    "problem",
    "problem_responses",
]

PROBLEM = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    503: "Service unavailable",
}


class Problem(BaseModel):
    """Error body (RFC 9457 problem details, with per-field errors)."""

    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] = []
    error: str | None = None
    error_description: str | None = None


class ApiError(Exception):
    """Raised anywhere in a request to answer with a problem response."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        oauth_error: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title or _TITLES.get(status, "Error")
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}
        self.oauth_error = oauth_error

    def response(self) -> JSONResponse:
        return problem(
            self.status,
            self.title,
            self.detail,
            self.errors,
            headers=self.headers,
            oauth_error=self.oauth_error,
        )


def problem(
    status: int,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    *,
    headers: dict[str, str] | None = None,
    oauth_error: str | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"title": title, "status": status, "detail": detail}
    body["errors"] = errors or []
    if oauth_error is not None:  # RFC 6749 section 5.2 fields, for OAuth2 client libraries
        body["error"] = oauth_error
        body["error_description"] = detail
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problem statuses an operation can answer."""
    return {
        status: {
            "model": Problem,
            "description": _TITLES.get(status, "Error"),
            "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def _validation_problem(exc: RequestValidationError) -> JSONResponse:
    errors: list[dict[str, Any]] = []
    for error in exc.errors():
        loc = tuple(error.get("loc") or ())
        if error.get("type") == "json_invalid":
            return problem(400, "Malformed JSON", f"the body is not valid JSON: {error['msg']}")
        where, rest = (str(loc[0]), loc[1:]) if loc else ("request", ())
        path = field_path(where, rest)
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "missing":
            message = "is required"
        elif error.get("type") == "extra_forbidden":
            message = "is not a known field"
        errors.append({"field": path, "type": error.get("type"), "message": f"{path}: {message}"})
    detail = errors[0]["message"] if errors else "the request is invalid"
    return problem(422, "Invalid request", detail, errors)


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(status, "Error")
        headers = dict(exc.headers) if exc.headers else None
        return problem(status, _TITLES.get(status, "Error"), detail, headers=headers)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _validation_problem(exc)

    app.add_exception_handler(ApiError, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
