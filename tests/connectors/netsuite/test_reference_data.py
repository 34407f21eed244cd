"""NetSuiteErp as ReferenceDataPort: currencies, exchange rates, tax codes and items over
SuiteQL, page by page, against the emulated account's seeded reference data."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import httpx
import pytest

from q2c.canonical.models import ExchangeRate
from q2c.connectors.http import Exchange
from q2c.connectors.netsuite import wire
from q2c.connectors.netsuite.adapter import NetSuiteErp
from q2c.connectors.netsuite.sandbox import NetSuiteSandbox

Ids = dict[str, dict[str, str]]
SUITEQL = "/services/rest/query/v1/suiteql"


@pytest.fixture
def exchanges() -> list[Exchange]:
    return []


@pytest.fixture
def erp(sandbox: NetSuiteSandbox, ledger: Ids, exchanges: list[Exchange]) -> NetSuiteErp:
    return sandbox.erp_m2m(page_size=2, recorder=exchanges.append)


def suiteql_pages(exchanges: list[Exchange]) -> list[str]:
    return [e.url.split("?", 1)[1] for e in exchanges if SUITEQL in e.url]


def test_sandbox_reference_names_every_seeded_id(sandbox: NetSuiteSandbox, ledger: Ids) -> None:
    assert set(ledger["currencies"]) == {"USD", "EUR", "GBP"}
    assert set(ledger["subsidiaries"]) == {"US01", "DE01"}
    assert {"AR", "UNBILLED", "DEFERRED_REVENUE", "REVENUE", "CASH", "TAX_PAYABLE"} <= set(
        ledger["accounts"]
    )
    assert set(ledger["tax_codes"]) == {
        "US-SERVICES",
        "US-EXEMPT",
        "DE-VAT-19",
        "DE-VAT-7",
        "DE-EXEMPT",
    }  # no GB codes: no UK subsidiary
    assert {"SERVICES", "EXPENSES", "FEES", "USAGE", "CONSULTING-HOUR"} <= set(ledger["items"])
    assert "EUR/USD@2025-04-01" in ledger["exchange_rates"]
    for key, values in ledger.items():
        for code, internal_id in values.items():
            assert internal_id.isdigit(), (key, code)
    subsidiary = sandbox.state.get("subsidiary", ledger["subsidiaries"]["DE01"])
    assert subsidiary is not None
    assert (subsidiary["country"], subsidiary["currency"]) == (
        "DE",
        {"id": ledger["currencies"]["EUR"]},
    )
    again = sandbox.seed_ledger_reference_data()  # idempotent: same records, same ids
    assert again["accounts"] == ledger["accounts"]
    assert sandbox.state.count("salesTaxItem") == len(ledger["tax_codes"])


def test_currencies_are_iso_code_to_internal_id(erp: NetSuiteErp, ledger: Ids) -> None:
    assert erp.currencies() == ledger["currencies"]


def test_currencies_leave_out_inactive_ones(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, ledger: Ids
) -> None:
    sandbox.state.update("currency", ledger["currencies"]["GBP"], {"isInactive": True})
    assert set(erp.currencies()) == {"USD", "EUR"}


def test_exchange_rates_in_force_on_a_day(
    erp: NetSuiteErp, ledger: Ids, exchanges: list[Exchange]
) -> None:
    march = {(r.base, r.quote): r for r in erp.exchange_rates(date(2025, 3, 31))}
    assert march[("EUR", "USD")] == ExchangeRate(
        base="EUR",
        quote="USD",
        rate=Decimal("1.085"),
        effective_date=date(2025, 1, 1),
        source="netsuite",
    )
    assert len(march) == 6  # every seeded pair between USD, EUR and GBP
    # six rows effective by then (the April ones are not), two to a page: the adapter
    # followed NetSuite's next links to the end
    assert suiteql_pages(exchanges) == [
        "limit=2&offset=0",
        "limit=2&offset=2",
        "limit=2&offset=4",
    ]
    april = {(r.base, r.quote): r for r in erp.exchange_rates(date(2025, 4, 1))}
    assert april[("EUR", "USD")].rate == Decimal("1.092")
    assert april[("EUR", "USD")].effective_date == date(2025, 4, 1)
    assert april[("EUR", "GBP")].rate == Decimal("0.8577")  # no newer rate: the old one holds
    assert erp.exchange_rates(date(2024, 12, 31)) == []


def test_tax_codes_as_fractions_with_their_nexus(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, ledger: Ids
) -> None:
    sandbox.state.update("salesTaxItem", ledger["tax_codes"]["DE-VAT-7"], {"isInactive": True})
    codes = {code.code: code for code in erp.tax_codes()}
    assert set(codes) == {"US-SERVICES", "US-EXEMPT", "DE-VAT-19", "DE-EXEMPT"}
    vat = codes["DE-VAT-19"]
    assert (vat.rate, vat.jurisdiction, vat.name) == (
        Decimal("0.19"),
        "DE",
        "German VAT standard rate 19%",
    )
    assert codes["US-EXEMPT"].rate == 0 and codes["US-EXEMPT"].jurisdiction == "US"


def test_items_with_kind_and_income_account(erp: NetSuiteErp, ledger: Ids) -> None:
    items = {item.code: item for item in erp.items()}
    accounts = ledger["accounts"]
    assert {code: (i.kind, i.income_account) for code, i in items.items()} == {
        "CONSULTING-HOUR": ("service", accounts["REVENUE"]),
        "PM-HOUR": ("service", accounts["REVENUE"]),
        "TRAVEL": ("service", accounts["REVENUE"]),
        "SERVICES": ("service", accounts["REVENUE"]),
        "EXPENSES": ("expense", accounts["EXPENSE_RECOVERY"]),
        "FEES": ("fee", accounts["FEE_REVENUE"]),
        "USAGE": ("usage", accounts["USAGE_REVENUE"]),
    }  # tax codes are items in NetSuite too, but not sale items
    assert items["SERVICES"].name == "Professional services"
    assert (items["SERVICES"].unit, items["EXPENSES"].unit) == ("hour", "each")


def test_item_kind_falls_back_on_the_item_type(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, ledger: Ids
) -> None:
    sandbox.state.insert(
        "otherChargeSaleItem", {"itemId": "SETUP-FEE", "displayName": "One-time setup fee"}
    )
    sandbox.state.insert("serviceSaleItem", {"itemId": "RETIRED", "isInactive": True})
    items = {item.code: item for item in erp.items()}
    assert items["SETUP-FEE"].kind == "fee"
    assert items["SETUP-FEE"].income_account is None
    assert "RETIRED" not in items


def test_reference_tables_answer_suiteql_as_netsuite_names_them(
    api: httpx.Client, ledger: Ids
) -> None:
    def rows(q: str) -> list[dict[str, str]]:
        response = api.post(
            SUITEQL,
            content=wire.dumps({"q": q}),
            headers={"Prefer": "transient", "Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text
        return [{k: v for k, v in r.items() if k != "links"} for r in response.json()["items"]]

    assert rows(
        "SELECT exchangerate, effectivedate FROM currencyrate "
        f"WHERE basecurrency = {ledger['currencies']['USD']} "
        f"AND transactioncurrency = {ledger['currencies']['EUR']} "
        "AND effectivedate >= TO_DATE('04/01/2025', 'MM/DD/YYYY')"
    ) == [{"exchangerate": "1.092", "effectivedate": "4/1/2025"}]
    assert rows(
        "SELECT acctnumber, accountsearchdisplayname, accttype FROM account "
        f"WHERE id = {ledger['accounts']['AR']}"
    ) == [
        {
            "acctnumber": "1100",
            "accountsearchdisplayname": "1100 Accounts Receivable",
            "accttype": "AcctRec",
        }
    ]
    assert rows("SELECT itemid, rate, country FROM salestaxitem WHERE itemid = 'DE-VAT-19'") == [
        {"itemid": "DE-VAT-19", "rate": "19", "country": "DE"}
    ]
    assert rows("SELECT itemtype, COUNT(*) AS n FROM item GROUP BY itemtype ORDER BY itemtype") == [
        {"itemtype": "OthCharge", "n": "2"},
        {"itemtype": "Service", "n": "5"},
        {"itemtype": "TaxItem", "n": "5"},
    ]
