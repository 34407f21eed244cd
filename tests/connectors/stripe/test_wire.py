"""Form encoding both ways, Stripe's currency exponents, and error translation."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import stripe
from hypothesis import given
from hypothesis import strategies as st

from q2c.canonical.money import Money
from q2c.connectors.stripe import forms
from q2c.connectors.stripe.errors import IdempotencyConflictError, translate_error
from q2c.connectors.stripe.wire import (
    UnsupportedAmountError,
    error_body,
    from_stripe_amount,
    to_stripe_amount,
)
from q2c.errors import (
    AuthError,
    BusinessFixError,
    NotFoundError,
    RateLimitedError,
    RetriableError,
    ValidationError,
)

# --- forms ----------------------------------------------------------------------------------


def test_nested_parameters_encode_like_stripe() -> None:
    encoded = forms.encode(
        {
            "customer": "cus_1",
            "amount": 112500,
            "metadata": {"q2c_key": "run 1/L1", "q2c_quantity": Decimal("7.50")},
            "expand": ["lines", "customer"],
            "items": [{"price": "price_1", "quantity": 2}],
            "auto_advance": False,
            "description": None,
        }
    )
    assert encoded == (
        "customer=cus_1&amount=112500&metadata[q2c_key]=run%201%2FL1"
        "&metadata[q2c_quantity]=7.50&expand[]=lines&expand[]=customer"
        "&items[0][price]=price_1&items[0][quantity]=2&auto_advance=false"
    )


def test_floats_are_refused() -> None:
    with pytest.raises(TypeError):
        forms.encode({"amount": 10.5})


def test_decode_reads_stripe_pythons_indexed_arrays() -> None:
    # stripe-python's own request encoder, on the wire as it sends it
    from stripe._encode import _api_encode  # the official client's encoder

    params = {
        "expand": ["lines"],
        "items": [{"price": "p", "quantity": 2}],
        "metadata": {"0": "zero", "k": "v"},
        "tax_rates": ["txr_1", "txr_2"],
    }
    body = urlencode(list(_api_encode(params)))
    assert forms.decode(body) == {
        "expand": ["lines"],
        "items": [{"price": "p", "quantity": "2"}],
        "metadata": {"0": "zero", "k": "v"},
        "tax_rates": ["txr_1", "txr_2"],
    }


def test_empty_values_keep_stripes_meaning() -> None:
    assert forms.decode("metadata=&description=") == {"metadata": "", "description": ""}
    assert forms.decode(forms.encode({"metadata": {}})) == {"metadata": ""}
    assert forms.decode("metadata[gone]=") == {"metadata": {"gone": ""}}


def test_malformed_names_are_refused() -> None:
    with pytest.raises(forms.FormError):
        forms.decode("a]b=1")
    with pytest.raises(forms.FormError):
        forms.decode("a=1&a[b]=2")


_KEY = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
_TEXT = st.text(min_size=1, max_size=12).filter(lambda s: "\x00" not in s)
_LEAF = st.one_of(_TEXT, st.integers(-(10**9), 10**9).map(str))
_VALUE = st.recursive(
    _LEAF,
    lambda children: st.one_of(
        st.dictionaries(_KEY, children, min_size=1, max_size=3),
        st.lists(st.dictionaries(_KEY, children, min_size=1, max_size=3), min_size=1, max_size=3),
        st.lists(_LEAF, min_size=1, max_size=3),
    ),
    max_leaves=10,
)


@given(st.dictionaries(_KEY, _VALUE, min_size=1, max_size=5))
def test_encode_then_decode_round_trips(params: dict[str, Any]) -> None:
    assert forms.decode(forms.encode(params)) == params


# --- amounts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("money", "minor"),
    [
        (Money.of("1250.00", "USD"), 125000),
        (Money.of("0.01", "EUR"), 1),
        (Money.of("1250", "JPY"), 1250),
        (Money.of("12.345", "KWD"), 12345),
        (Money.of("1500", "ISK"), 150000),  # two-decimal at Stripe, zero in ISO 4217
        (Money.of("1500", "MGA"), 1500),  # zero-decimal at Stripe, two in ISO 4217
        (Money.of("-5.00", "USD"), -500),
    ],
)
def test_amounts_use_stripes_exponents(money: Money, minor: int) -> None:
    assert to_stripe_amount(money) == minor
    assert from_stripe_amount(minor, money.currency.lower()) == money


def test_precision_beyond_the_smallest_unit_is_refused() -> None:
    with pytest.raises(UnsupportedAmountError):
        to_stripe_amount(Money.of("10.5", "JPY"))
    with pytest.raises(UnsupportedAmountError):
        to_stripe_amount(Money.of("1.234", "USD"))
    with pytest.raises(UnsupportedAmountError):
        to_stripe_amount(Money.of("1.0000", "CLF"))


# --- error translation ------------------------------------------------------------------------


def _response(
    status: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    path: str = "/v1/invoiceitems",
) -> httpx.Response:
    request = httpx.Request("POST", f"https://api.stripe.com{path}")
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers=headers, request=request
    )


def test_invalid_request_names_the_param() -> None:
    error = translate_error(
        _response(
            400,
            error_body(
                "invalid_request_error",
                "Missing required param: customer.",
                code="parameter_missing",
                param="customer",
            ),
        )
    )
    assert isinstance(error, ValidationError)
    assert error.field == "customer"
    assert "parameter 'customer'" in error.message and "invoice item" in error.message
    assert error.context["stripe_code"] == "parameter_missing"


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (
            402,
            error_body(
                "card_error",
                "Your card was declined.",
                code="card_declined",
                extra={"decline_code": "insufficient_funds"},
            ),
            {},
            BusinessFixError,
        ),
        (
            404,
            error_body(
                "invalid_request_error",
                "No such invoice: 'in_1'",
                code="resource_missing",
                param="id",
            ),
            {},
            NotFoundError,
        ),
        (
            401,
            error_body("invalid_request_error", "Invalid API Key provided: sk_t****"),
            {},
            AuthError,
        ),
        (
            403,
            error_body("invalid_request_error", "The provided key does not have access"),
            {},
            AuthError,
        ),
        (
            409,
            error_body("invalid_request_error", "in progress", code="idempotency_key_in_use"),
            {},
            RetriableError,
        ),
        (
            429,
            error_body("invalid_request_error", "Request rate limit exceeded.", code="rate_limit"),
            {"Retry-After": "9"},
            RateLimitedError,
        ),
        (500, error_body("api_error", "An unknown error occurred"), {}, RetriableError),
        (
            400,
            error_body("idempotency_error", "Keys for idempotent requests ..."),
            {},
            IdempotencyConflictError,
        ),
    ],
)
def test_stripe_errors_map_to_q2c_errors(
    status: int, body: dict[str, Any], headers: dict[str, str], expected: type[Exception]
) -> None:
    error = translate_error(_response(status, body, headers))
    assert type(error) is expected
    assert error.message and error.detail and error.system == "stripe"
    if isinstance(error, RateLimitedError):
        assert error.retry_after == 9
    if status == 402:
        assert "insufficient_funds" in error.message


def test_translation_agrees_with_the_official_client_classes() -> None:
    """stripe-python's classification of the same bodies, as an independent check."""
    requestor = stripe.StripeClient("sk_test_x")._requestor
    cases = {
        400: (
            error_body("invalid_request_error", "bad", param="amount"),
            stripe.InvalidRequestError,
            ValidationError,
        ),
        402: (
            error_body("card_error", "declined", code="card_declined"),
            stripe.CardError,
            BusinessFixError,
        ),
        404: (
            error_body("invalid_request_error", "missing", code="resource_missing"),
            stripe.InvalidRequestError,
            NotFoundError,
        ),
    }
    for status, (body, theirs, ours) in cases.items():
        raised = requestor.specific_v1_api_error(json.dumps(body), status, body, {}, body["error"])
        assert isinstance(raised, theirs)
        assert isinstance(translate_error(_response(status, body)), ours)
