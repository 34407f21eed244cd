"""The JSON-RPC client against a real trytond: sessions, typed values, wizards, errors."""

from __future__ import annotations

import datetime as dt
import socket
from decimal import Decimal

import httpx
import pytest

from q2c.connectors.tryton.adapter import TrytonErp, connect_tryton
from q2c.connectors.tryton.rpc import TrytonRpc, connect_rpc
from q2c.connectors.tryton.server import TrytonServer
from q2c.errors import AuthError, ConfigError, NotFoundError, RetriableError, ValidationError
from tests.connectors.tryton.helpers import make_customer

pytestmark = pytest.mark.integration


def test_login_gives_a_session_and_the_company_context(fresh_erp: TrytonErp) -> None:
    erp = fresh_erp
    assert erp.rpc.auth.logins == 0  # lazy: nothing sent yet
    context = erp.rpc.context
    assert erp.rpc.auth.logins == 1
    assert isinstance(context["company"], int)
    (company,) = erp.rpc.read("company.company", [context["company"]], ["rec_name"])
    assert company["rec_name"] == "Q2C Consulting Inc."


def test_bad_password_is_an_auth_error(tryton_server: TrytonServer, http: httpx.Client) -> None:
    rpc = tryton_server.rpc(http, password="not-the-password")
    with pytest.raises(AuthError) as info:
        rpc.search("currency.currency", [])
    assert "refused the login" in info.value.message
    assert "common.db.login -> 401" in info.value.detail


def test_unknown_database_is_a_config_error(
    tryton_server: TrytonServer, http: httpx.Client
) -> None:
    rpc = connect_rpc(
        http,
        base_url=tryton_server.base_url,
        database="no_such_db",
        username="admin",
        password=tryton_server.password,
    )
    with pytest.raises(ConfigError):
        rpc.search("currency.currency", [])


def test_expired_session_logs_in_again(fresh_erp: TrytonErp) -> None:
    erp = fresh_erp
    erp.currencies()
    assert erp.rpc.auth.logins == 1
    erp.rpc.call("common.db.logout", [])  # the server forgets the session
    codes = erp.currencies()  # 401 -> log in again -> resend
    assert "USD" in codes
    assert erp.rpc.auth.logins == 2


def test_typed_values_round_trip_exactly(erp: TrytonErp, uid: str) -> None:
    """Decimals, dates and durations survive the JSON-RPC wire without floats."""
    usd = erp.currency_id("USD")
    (rate_id,) = erp.rpc.create(
        "currency.currency.rate",
        [{"currency": usd, "date": dt.date(2001, 2, 3), "rate": Decimal("1.234567")}],
    )
    (row,) = erp.rpc.read("currency.currency.rate", [rate_id], ["date", "rate"])
    assert row["date"] == dt.date(2001, 2, 3)
    assert row["rate"] == Decimal("1.234567")
    erp.rpc.delete("currency.currency.rate", [rate_id])


def test_tryton_validation_message_is_surfaced(erp: TrytonErp, uid: str) -> None:
    """Tryton checks VAT numbers (python-stdnum); its own words reach the operator."""
    bad = make_customer(uid, country="DE", tax_id="DE000000000")
    with pytest.raises(ValidationError) as info:
        erp.upsert_customer(bad, external_id=f"q2c-crm-{uid}", subsidiary="")
    assert 'The European VAT Number "DE000000000"' in info.value.message
    assert "is not valid" in info.value.message
    assert info.value.context["tryton_error"] == "UserError"
    assert erp.find_customer(external_id=f"q2c-crm-{uid}", tax_id=None, legal_name=None) is None


def test_required_field_names_the_field(erp: TrytonErp, uid: str) -> None:
    with pytest.raises(ValidationError) as info:
        erp.rpc.create("project.work", [{"type": "project", "company": erp.company_id}])
    assert info.value.field == "Name"
    assert "Name" in info.value.message


def test_missing_record_is_not_found(erp: TrytonErp) -> None:
    with pytest.raises(NotFoundError):
        erp.read_invoice("987654")


def test_access_error_is_an_auth_error(
    tryton_server: TrytonServer, admin: TrytonRpc, http: httpx.Client, uid: str
) -> None:
    """A Tryton user without the accounting groups may not read invoices."""
    admin.create(
        "res.user",
        [{"name": f"Clerk {uid}", "login": f"clerk-{uid}", "password": "Clerk-pass-9271"}],
    )
    clerk = connect_rpc(
        http,
        base_url=tryton_server.base_url,
        database=tryton_server.database,
        username=f"clerk-{uid}",
        password="Clerk-pass-9271",
    )
    with pytest.raises(AuthError) as info:
        clerk.search("account.invoice", [])
    assert "not allowed" in info.value.message


def test_server_unreachable_is_retriable(http: httpx.Client) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    erp = connect_tryton(
        http, base_url=f"http://127.0.0.1:{port}", database="q2c", username="a", password="b"
    )
    with pytest.raises(RetriableError) as info:
        erp.currencies()
    assert "could not be reached" in info.value.message


def test_timeout_is_retriable(tryton_server: TrytonServer) -> None:
    with httpx.Client(timeout=1e-6) as client:
        erp = tryton_server.erp(client)
        with pytest.raises(RetriableError):
            erp.currencies()


def test_wizard_runs_and_is_deleted(erp: TrytonErp) -> None:
    """A wizard session: create, show the start view, finish, delete (no error left behind)."""
    with erp.rpc.wizard("account.create_chart") as wizard:
        answer = wizard.execute(wizard.start)
        assert answer["view"]["state"] == "start"
        assert wizard.end == "end"
    assert erp.rpc.stats.by_method["wizard.account.create_chart.delete"]
