"""Pure parts of the Tryton connector: wire values, error translation, payload helpers."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import httpx
import pytest

from q2c.connectors.tryton import wire
from q2c.connectors.tryton.errors import subject_of, translate_http_error, translate_rpc_error
from q2c.connectors.tryton.payloads import (
    check_external_id,
    has_marker,
    hours_from,
    invoice_line_figures,
    line_tax_amounts,
    normalize_tax_id,
    tax_identifier,
    with_marker,
)
from q2c.connectors.tryton.rpc import CallStats, connect_rpc
from q2c.errors import (
    AuthError,
    ConfigError,
    FatalError,
    NotFoundError,
    RateLimitedError,
    RetriableError,
    ValidationError,
)


def test_wire_tags_values_the_way_trytond_does() -> None:
    body = json.loads(
        wire.request_body(
            7,
            "model.x.create",
            [{"a": Decimal("12.50"), "d": dt.date(2026, 1, 2), "t": dt.timedelta(hours=1.5)}],
        )
    )
    assert body["id"] == 7 and body["method"] == "model.x.create"
    values = body["params"][0]
    assert values["a"] == {"__class__": "Decimal", "decimal": "12.50"}
    assert values["d"] == {"__class__": "date", "year": 2026, "month": 1, "day": 2}
    assert values["t"] == {"__class__": "timedelta", "seconds": 5400}


def test_wire_refuses_floats_and_reads_fractions_as_decimals() -> None:
    with pytest.raises(TypeError):
        wire.dumps({"amount": 0.1})
    decoded = wire.loads(
        b'{"result": [{"__class__": "Decimal", "decimal": "0.30"}, 0.1,'
        b' {"__class__": "timedelta", "seconds": 4799.9988}]}'
    )
    amount, plain, duration = decoded["result"]
    assert amount == Decimal("0.30") and plain == Decimal("0.1")
    assert duration == dt.timedelta(seconds=4799, microseconds=998800)
    assert hours_from(duration) == Decimal("1.333333")


def test_fractional_seconds_go_out_exactly() -> None:
    text = wire.dumps({"t": dt.timedelta(microseconds=4_799_998_800)}).decode()
    assert '"seconds":4799.9988' in text


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (["UserError", ['A value is required for field "Party" in "Invoice".', "", None]],
         ValidationError),
        (["UserError", ['You are not allowed to access "Invoice".', "", None]], AuthError),
        (["UserError", ['You are trying to read records "9" of "Invoice" that don\'t exist.',
                        "", None]], NotFoundError),
        (["UserWarning", ["abc.invoice_taxes", "Taxes differ", ""]], ValidationError),
        (["ConcurrencyException", "Records were modified in the meanwhile"], RetriableError),
        (["LoginException", ["totp", "Code", "char"]], AuthError),
        (["database is locked", "Traceback ..."], RetriableError),
        (["KeyError: 'x'", "Traceback ..."], FatalError),
    ],
)  # fmt: skip
def test_rpc_errors_map_to_q2c_errors(error: list[object], kind: type[Exception]) -> None:
    translated = translate_rpc_error("model.account.invoice.post", error, detail="d")
    assert type(translated) is kind
    assert translated.system == "tryton" and translated.detail == "d"


def test_user_error_keeps_trytons_words_and_the_field() -> None:
    error = ["UserError", ['A value is required for field "Party" in "Invoice".', "Fill it.", []]]
    translated = translate_rpc_error("model.account.invoice.create", error, detail="")
    assert translated.message == (
        'Tryton refused the invoice: A value is required for field "Party" in "Invoice". Fill it.'
    )
    assert translated.field == "Party"


def test_warning_names_the_warning_to_confirm() -> None:
    error = ["UserWarning", ["9a.invoice_taxes", "Taxes differ from the defaults.", ""]]
    translated = translate_rpc_error("model.account.invoice.post", error, detail="")
    assert translated.context["warning"] == "9a.invoice_taxes"
    assert "confirm" in translated.suggested_fix


def test_subjects_are_words() -> None:
    assert subject_of("model.account.invoice.post") == "invoice"
    assert subject_of("wizard.account.invoice.pay.execute") == "invoice payment"
    assert subject_of("common.db.login") == "request"


def _transport(status: int, body: bytes = b"", headers: dict[str, str] | None = None):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers or {})

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, AuthError), (429, RateLimitedError), (404, ConfigError), (503, RetriableError)],
)
def test_login_statuses(status: int, kind: type[Exception]) -> None:
    client = httpx.Client(transport=_transport(status, headers={"Retry-After": "3"}))
    rpc = connect_rpc(client, base_url="http://t", database="db", username="u", password="p")
    with pytest.raises(kind):
        rpc.call("model.res.user.get_preferences", [True, {}])


def test_login_keyerror_points_at_the_8_2_1_regression() -> None:
    body = b'{"id": 0, "error": ["\'res.user\'", ""]}'
    client = httpx.Client(transport=_transport(200, body))
    rpc = connect_rpc(client, base_url="http://t", database="db", username="u", password="p")
    with pytest.raises(FatalError) as info:
        rpc.call("model.res.user.get_preferences", [True, {}])
    assert "-d <database>" in info.value.suggested_fix


def test_server_errors_after_login_are_retriable_and_403_is_a_bug() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        method = json.loads(request.content)["method"]
        calls.append(method)
        if method == "common.db.login":
            return httpx.Response(200, json={"id": 0, "result": [1, "key", None]})
        if method == "model.a.read":
            return httpx.Response(503, text="Service Unavailable: database is locked")
        return httpx.Response(403, text="Forbidden")

    client = httpx.Client(transport=httpx.MockTransport(handler))
    rpc = connect_rpc(client, base_url="http://t", database="db", username="u", password="p")
    with pytest.raises(RetriableError):
        rpc.call("model.a.read", [[1], [], {}])
    with pytest.raises(FatalError) as info:
        rpc.call("model.a.secret", [{}])
    assert "does not expose" in info.value.message
    assert calls.count("common.db.login") == 1


def test_http_translation_of_other_statuses() -> None:
    request = httpx.Request("POST", "http://t/db/rpc/")
    assert isinstance(translate_http_error(httpx.Response(409, request=request)), RetriableError)
    assert isinstance(translate_http_error(httpx.Response(400, request=request)), FatalError)


def test_call_stats_summarise_latencies() -> None:
    stats = CallStats()
    for ms in (10.0, 20.0, 30.0, 40.0):
        stats.record("model.a.read", ms)
    summary = stats.summary()["model.a.read"]
    assert summary["count"] == 4 and summary["median_ms"] == 25.0 and summary["max_ms"] == 40.0


def test_markers_and_external_ids() -> None:
    text = with_marker("Capital injection", "q2c-je-1")
    assert text == "Capital injection [q2c-je-1]"
    assert has_marker(text, "q2c-je-1") and not has_marker(text, "q2c-je-")
    assert not has_marker("Capital injection [q2c-je-1x]", "q2c-je-1")
    with pytest.raises(ValidationError):
        check_external_id("bad]id")


def test_tax_identifiers_are_typed_by_country() -> None:
    assert tax_identifier("DE", "136 695 976") == {"type": "eu_vat", "code": "DE136695976"}
    assert tax_identifier("GR", "094259216") == {"type": "eu_vat", "code": "EL094259216"}
    assert tax_identifier("US", "12-3456789") == {"type": "us_tin", "code": "12-3456789"}
    assert tax_identifier("BR", "123") == {"type": None, "code": "123"}
    assert normalize_tax_id("de 136-695.976") == "DE136695976"


def test_line_taxes_add_up_to_what_tryton_booked() -> None:
    lines = [(1, Decimal("0.05"), [7]), (2, Decimal("0.05"), [7]), (3, Decimal("10.00"), [])]
    # half-even per line gives 0.00 + 0.00 = 0.00 but Tryton booked 0.01 (document rounding)
    taxes = line_tax_amounts(lines, [(7, Decimal("0.10"), Decimal("0.01"))],
                             {7: Decimal("0.10")}, Decimal("0.01"))  # fmt: skip
    assert taxes == {1: Decimal("0.01"), 2: Decimal("0.00"), 3: Decimal(0)}


def test_invoice_lines_that_fit_tryton_keep_their_quantity_and_price() -> None:
    cent = Decimal("0.01")
    assert invoice_line_figures(
        Decimal("7.5"), Decimal("210.00"), Decimal("1575.00"), unit_digits=2, exponent=cent
    ) == (Decimal("7.5"), Decimal("210.00"), True)


@pytest.mark.parametrize(
    "quantity, price, amount, digits",
    [
        ("0.7161", "150.00", "107.42", 2),  # left under a not-to-exceed cap: too many decimals
        ("0.3125", "420.00", "131.25", 0),  # a part of an expense, in units (no decimals)
        ("60000", "0.0500", "2700.00", 0),  # graduated usage tiers: amount is not q x p
        ("1", "312.123456", "312.12", 0),  # a converted price with more than 4 decimals
    ],
)
def test_invoice_lines_that_do_not_fit_go_as_one_unit_at_the_billed_amount(
    quantity: str, price: str, amount: str, digits: int
) -> None:
    figures = invoice_line_figures(
        Decimal(quantity), Decimal(price), Decimal(amount), unit_digits=digits,
        exponent=Decimal("0.01"),
    )  # fmt: skip
    assert figures == (Decimal(1), Decimal(amount), False)
