"""translate_error: NetSuite's error documents become the q2c errors the runtime acts on."""

from __future__ import annotations

import httpx
import pytest

from q2c.connectors.netsuite import translate_error, wire
from q2c.errors import (
    AuthError,
    BusinessFixError,
    FatalError,
    NotFoundError,
    Q2CError,
    RateLimitedError,
    RetriableError,
    ValidationError,
)

URL = "https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/record/v1/salesOrder/eid:so-1"


def response(
    status: int,
    code: str | None,
    detail: str = "Something is wrong.",
    path: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body = wire.dumps(wire.error_body(status, code, detail, path=path)) if code else b"<html/>"
    return httpx.Response(status, content=body, headers=headers, request=httpx.Request("PUT", URL))


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, "INVALID_VALUE", ValidationError),
        (400, "INVALID_CONTENT", ValidationError),
        (400, "USER_ERROR", ValidationError),
        (400, "DUP_ENTITY", ValidationError),
        (400, "UNIQUE_CUST_ID_REQD", ValidationError),
        (404, "NONEXISTENT_ID", NotFoundError),
        (429, "CONCURRENCY_LIMIT_EXCEEDED", RateLimitedError),
        (403, "INSUFFICIENT_PERMISSION", AuthError),
        (401, "INVALID_LOGIN", AuthError),
        (400, "INVALID_PARAMETER", FatalError),
        (500, "UNEXPECTED_ERROR", RetriableError),
        (400, "SOMETHING_NEW", BusinessFixError),
        (400, None, BusinessFixError),
    ],
)
def test_codes_map_to_q2c_errors(status: int, code: str | None, error: type[Q2CError]) -> None:
    translated = translate_error(response(status, code))
    assert type(translated) is error
    assert translated.system == "netsuite"
    assert translated.message
    assert URL in translated.detail


def test_field_errors_keep_netsuites_words_and_name_the_field() -> None:
    detail = (
        "Invalid value for the resource or sub-resource field 'department'. Provide a valid value."
    )
    error = translate_error(response(400, "INVALID_VALUE", detail, path="department"))
    assert isinstance(error, ValidationError)
    assert error.field == "department"
    assert error.message == f"NetSuite rejected the sales order field 'department': {detail}"
    assert error.context["netsuite_code"] == "INVALID_VALUE"


def test_concurrency_limit_honours_retry_after() -> None:
    error = translate_error(
        response(429, "CONCURRENCY_LIMIT_EXCEEDED", headers={"Retry-After": "4"})
    )
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 4


@pytest.mark.parametrize(
    ("code", "path", "message"),
    [
        (
            "INVALID_CONTENT",
            "item.items[1].taxCode",
            "NetSuite rejected the sales order line 2 field 'taxCode': Something is wrong.",
        ),
        (
            "INVALID_FLD_VALUE",
            "apply.items[0].amount",
            "NetSuite rejected the sales order application 1 field 'amount': Something is wrong.",
        ),
        (
            "INVALID_KEY_OR_REF",
            "currency",
            "NetSuite rejected the sales order field 'currency': Something is wrong.",
        ),
        (
            "USER_ERROR",
            "line.items[3]",
            "NetSuite refused the sales order line 4: Something is wrong.",
        ),
        ("TRANS_UNBALNCD", "line", "NetSuite refused the sales order: Something is wrong."),
    ],
)
def test_ledger_errors_name_the_line_and_field(code: str, path: str, message: str) -> None:
    error = translate_error(response(400, code, path=path))
    assert type(error) is ValidationError
    assert error.message == message
    assert error.field == path
