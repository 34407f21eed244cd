"""Kantata error bodies become q2c errors with Kantata's own words."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from q2c.connectors.kantata.errors import translate_error
from q2c.errors import (
    AuthError,
    BusinessFixError,
    FatalError,
    NotFoundError,
    RateLimitedError,
    RetriableError,
    ValidationError,
)


def response(
    status: int,
    body: Any,
    path: str = "/api/v1/workspaces.json",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    request = httpx.Request("POST", f"https://api.mavenlink.com{path}")
    content = body if isinstance(body, bytes) else None
    return httpx.Response(
        status, json=None if content else body, content=content, headers=headers, request=request
    )


def errors(*entries: dict[str, str]) -> dict[str, Any]:
    return {"errors": list(entries)}


def test_validation_errors_keep_every_message_and_name_the_field() -> None:
    error = translate_error(
        response(
            422,
            errors(
                {
                    "type": "validation",
                    "message": "Please give your project a title",
                    "field": "title",
                },
                {
                    "type": "validation",
                    "message": "Please select a role for this project",
                    "field": "creator_role",
                },
            ),
        )
    )

    assert isinstance(error, ValidationError)
    assert "Please give your project a title" in error.message
    assert "Please select a role for this project" in error.message
    assert "project" in error.message and error.field == "title"
    assert error.system == "kantata" and "422" in error.detail


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, errors({"type": "oauth", "message": "Invalid OAuth 2 Request"}), AuthError),
        (403, errors({"type": "system", "message": "You do not have access"}), AuthError),
        (404, errors({"type": "system", "message": "Page Not Found"}), NotFoundError),
        (400, errors({"type": "system", "message": "Invalid order"}), FatalError),
        (409, errors({"type": "system", "message": "Conflict"}), BusinessFixError),
        (503, errors({"type": "system", "message": "Unavailable"}), RetriableError),
        (504, b"<html>Gateway Time-out</html>", RetriableError),
    ],
)
def test_status_classes(status: int, body: Any, kind: type[Exception]) -> None:
    error = translate_error(response(status, body))

    assert type(error) is kind
    assert error.message


def test_rate_limit_carries_retry_after() -> None:
    error = translate_error(
        response(
            429, errors({"type": "system", "message": "Slow down"}), headers={"Retry-After": "12"}
        )
    )

    assert isinstance(error, RateLimitedError) and error.retry_after == 12


def test_subject_comes_from_the_path() -> None:
    error = translate_error(
        response(
            404,
            errors({"type": "system", "message": "Page Not Found"}),
            path="/api/v1/time_entries/5.json",
        )
    )

    assert "time entry" in error.message


def test_a_body_that_is_not_kantatas_still_gives_a_message() -> None:
    error = translate_error(response(422, b"not json"))

    assert isinstance(error, ValidationError) and error.message
