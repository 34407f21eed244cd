"""NetSuiteErp through its ErpPort surface, against the emulator."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from q2c.canonical.models import Contract, Customer, Project
from q2c.canonical.money import Money
from q2c.connectors.http import Exchange
from q2c.connectors.netsuite import base_url_for, connect_netsuite_m2m, wire
from q2c.connectors.netsuite.adapter import NetSuiteErp
from q2c.connectors.netsuite.sandbox import NetSuiteSandbox
from q2c.errors import (
    AuthError,
    BusinessFixError,
    MappingMissingError,
    NotFoundError,
    ValidationError,
)
from q2c.flows.ports import ErpPort, SalesOrderRefs

Ids = dict[str, dict[str, str]]


@pytest.fixture
def erp(sandbox: NetSuiteSandbox, ids: Ids) -> NetSuiteErp:
    return sandbox.erp_m2m(page_size=3)


def a_customer(**fields: Any) -> Customer:
    values: dict[str, Any] = {
        "id": "cust-1",
        "legal_name": "Globex Corporation",
        "country": "US",
        "currency": "USD",
        "legal_entity": "US01",
        **fields,
    }
    return Customer(**values)


def a_project(**fields: Any) -> Project:
    values: dict[str, Any] = {
        "id": "proj-1",
        "code": "PRJ-2025-001",
        "name": "ERP rollout",
        "customer_id": "cust-1",
        "legal_entity": "US01",
        "start_date": date(2025, 1, 6),
        "end_date": date(2025, 6, 30),
        **fields,
    }
    return Project(**values)


def money(amount: str, currency: str = "USD") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


def a_contract(*lines: tuple[str, str, str, str]) -> Contract:
    return Contract(
        id="k-1",
        number="K-2025-001",
        customer_id="cust-1",
        legal_entity="US01",
        currency="USD",
        billing_model="time_and_materials",
        revenue_method="as_invoiced",
        start_date=date(2025, 1, 6),
        end_date=date(2025, 6, 30),
        total_value=money("0"),
        lines=[
            {
                "line_no": n,
                "service_item": item,
                "quantity": qty,
                "unit_price": money(rate),
                "amount": money(amount),
                "description": f"{item} work",
            }
            for n, (item, qty, rate, amount) in enumerate(lines, start=1)
        ],
    )


def test_is_an_erp_port(erp: NetSuiteErp) -> None:
    assert isinstance(erp, ErpPort)
    assert erp.system == "netsuite"


def test_base_url_comes_from_the_account_id(sandbox: NetSuiteSandbox) -> None:
    assert base_url_for("1234567_SB1") == "https://1234567-sb1.suitetalk.api.netsuite.com"
    erp = connect_netsuite_m2m(
        sandbox.client(),
        account_id="1234567_SB1",
        client_id=sandbox.m2m.client_id,
        certificate_id=sandbox.m2m.certificate_id,
        private_key_pem=sandbox.m2m.private_key_pem,
    )
    assert erp.base_url == "https://1234567-sb1.suitetalk.api.netsuite.com"
    assert list(erp.query("SELECT id FROM currency")) == []


# --- customers -------------------------------------------------------------------------------


def test_upsert_customer_is_idempotent_and_reads_back_the_number(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, ids: Ids
) -> None:
    us01 = ids["subsidiaries"]["US01"]
    customer = a_customer(
        credit_limit=money("25000.00"), tax_id="US 12-3456789", email="ap@globex.test"
    )
    first = erp.upsert_customer(customer, external_id="crm-001", subsidiary=us01)
    renamed = a_customer(legal_name="Globex Corp.", credit_limit=money("25000.00"))
    second = erp.upsert_customer(renamed, external_id="crm-001", subsidiary=us01)
    assert first.erp_id == second.erp_id
    assert sandbox.state.count("customer", external_id="crm-001") == 1
    assert first.number == second.number == "CUST-01001"
    assert second.legal_name == "Globex Corp."
    assert (second.subsidiary, second.currency, second.external_id) == (us01, "USD", "crm-001")
    assert second.credit_limit == Money(Decimal("25000.00"), "USD")
    assert second.on_credit_hold is False


def test_address_is_replaced_not_appended(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, ids: Ids
) -> None:
    address = {"line1": "1 Main St", "city": "Springfield", "country": "US"}
    customer = a_customer(billing_address=address)
    for _ in range(2):
        erp.upsert_customer(customer, external_id="crm-001", subsidiary=ids["subsidiaries"]["US01"])
    (stored,) = sandbox.state.records("customer")
    assert len(stored["addressBook"]) == 1


def test_unknown_currency_is_a_missing_mapping(erp: NetSuiteErp, ids: Ids) -> None:
    with pytest.raises(MappingMissingError, match="Currency 'CHF' is not set up in NetSuite"):
        erp.upsert_customer(
            a_customer(currency="CHF"),
            external_id="crm-001",
            subsidiary=ids["subsidiaries"]["US01"],
        )


def test_invalid_subsidiary_is_a_validation_error(erp: NetSuiteErp) -> None:
    with pytest.raises(ValidationError) as info:
        erp.upsert_customer(a_customer(), external_id="crm-001", subsidiary="999")
    assert info.value.field == "subsidiary"
    assert "Invalid value for the resource or sub-resource field 'subsidiary'" in info.value.message
    assert "INVALID_VALUE" in info.value.detail


def test_get_customer_reports_credit_hold(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, ids: Ids
) -> None:
    made = erp.upsert_customer(
        a_customer(), external_id="crm-001", subsidiary=ids["subsidiaries"]["US01"]
    )
    sandbox.state.update("customer", made.erp_id, {"creditHoldOverride": "ON"})
    assert erp.get_customer(made.erp_id).on_credit_hold is True
    found = erp.find_customer(external_id="crm-001", tax_id=None, legal_name=None)
    assert found is not None and found.on_credit_hold is True
    with pytest.raises(NotFoundError):
        erp.get_customer("424242")


def seed_customer(sandbox: NetSuiteSandbox, ids: Ids, name: str, **fields: Any) -> str:
    body = {
        "companyName": name,
        "subsidiary": {"id": ids["subsidiaries"]["US01"]},
        "currency": {"id": ids["currencies"]["USD"]},
        **fields,
    }
    return sandbox.state.insert("customer", body)


def test_find_customer_matches_in_order(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, ids: Ids
) -> None:
    by_crm = seed_customer(sandbox, ids, "Initech LLC", externalId="crm-9")
    by_tax = seed_customer(sandbox, ids, "Initech Holdings", vatRegNumber="DE 811 907 980")
    by_name = seed_customer(sandbox, ids, "Initech")

    def find(**kw: Any) -> str | None:
        criteria = {"external_id": None, "tax_id": None, "legal_name": None, **kw}
        found = erp.find_customer(**criteria)
        return found.erp_id if found else None

    assert find(external_id="crm-9", tax_id="DE811907980", legal_name="Initech") == by_crm
    assert find(external_id="crm-0", tax_id="de811907980", legal_name="Initech") == by_tax
    assert find(external_id="crm-0", tax_id="XX1", legal_name="INITECH") == by_name
    assert find(external_id="crm-0", tax_id="XX1", legal_name="Initech Ltd") is None
    assert find() is None


def test_ambiguous_legal_name_names_the_candidates(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, ids: Ids
) -> None:
    first = seed_customer(sandbox, ids, "Umbrella Corp")
    second = seed_customer(sandbox, ids, "UMBRELLA CORP")
    with pytest.raises(BusinessFixError) as info:
        erp.find_customer(external_id=None, tax_id=None, legal_name="umbrella corp")
    assert "2 NetSuite customers match the legal name 'umbrella corp'" in info.value.message
    assert "CUST-01001" in info.value.message and "CUST-01002" in info.value.message
    candidates = [c["erp_id"] for c in info.value.context["candidates"]]
    assert candidates == [first, second]


def test_find_customer_quotes_its_values(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, ids: Ids
) -> None:
    obrien = seed_customer(sandbox, ids, "O'Brien & Sons")
    found = erp.find_customer(external_id=None, tax_id=None, legal_name="O'Brien & Sons")
    assert found is not None and found.erp_id == obrien
    assert erp.find_customer(external_id="x' OR '1'='1", tax_id=None, legal_name=None) is None


def test_query_follows_pages(sandbox: NetSuiteSandbox, ids: Ids) -> None:
    exchanges: list[Exchange] = []
    erp = sandbox.erp_m2m(page_size=2, recorder=exchanges.append)
    for n in range(5):
        seed_customer(sandbox, ids, f"Paged {n}")
    rows = list(erp.query("SELECT id FROM customer ORDER BY id"))
    assert len(rows) == 5 and all("links" not in r for r in rows)
    assert [e.url.split("?")[1] for e in exchanges] == [
        "limit=2&offset=0",
        "limit=2&offset=2",
        "limit=2&offset=4",
    ]
    assert list(erp.list_record_ids("customer")) == [r["id"] for r in rows]


# --- projects and sales orders ---------------------------------------------------------------


def test_upsert_project_is_idempotent(erp: NetSuiteErp, sandbox: NetSuiteSandbox, ids: Ids) -> None:
    us01 = ids["subsidiaries"]["US01"]
    customer = erp.upsert_customer(a_customer(), external_id="crm-001", subsidiary=us01)
    kwargs: dict[str, Any] = {
        "external_id": "proj-1",
        "customer_erp_id": customer.erp_id,
        "subsidiary": us01,
        "department": ids["departments"]["Consulting"],
    }
    first = erp.upsert_project(a_project(), **kwargs)
    second = erp.upsert_project(a_project(name="ERP rollout, phase 1"), **kwargs)
    assert first == second
    assert (first.number, first.external_id) == ("PRJ-2025-001", "proj-1")
    (job,) = sandbox.state.records("job")
    assert job["companyName"] == "ERP rollout, phase 1"
    assert job["parent"] == {"id": customer.erp_id}
    assert job["projectedEndDate"] == "2025-06-30"


def test_project_with_unknown_department(erp: NetSuiteErp, ids: Ids) -> None:
    us01 = ids["subsidiaries"]["US01"]
    customer = erp.upsert_customer(a_customer(), external_id="crm-001", subsidiary=us01)
    with pytest.raises(ValidationError) as info:
        erp.upsert_project(
            a_project(),
            external_id="proj-1",
            customer_erp_id=customer.erp_id,
            subsidiary=us01,
            department="31337",
        )
    assert info.value.field == "department"
    assert info.value.message == (
        "NetSuite rejected the project field 'department': Invalid value for the resource or "
        "sub-resource field 'department'. Provide a valid value."
    )


def test_project_code_taken_by_another_project(erp: NetSuiteErp, ids: Ids) -> None:
    us01 = ids["subsidiaries"]["US01"]
    customer = erp.upsert_customer(a_customer(), external_id="crm-001", subsidiary=us01)
    common: dict[str, Any] = {
        "customer_erp_id": customer.erp_id,
        "subsidiary": us01,
        "department": None,
    }
    erp.upsert_project(a_project(), external_id="proj-1", **common)
    with pytest.raises(ValidationError, match="same identifier"):
        erp.upsert_project(a_project(), external_id="proj-2", **common)


@pytest.fixture
def refs(erp: NetSuiteErp, ids: Ids) -> SalesOrderRefs:
    us01 = ids["subsidiaries"]["US01"]
    customer = erp.upsert_customer(a_customer(), external_id="crm-001", subsidiary=us01)
    project = erp.upsert_project(
        a_project(),
        external_id="proj-1",
        customer_erp_id=customer.erp_id,
        subsidiary=us01,
        department=None,
    )
    return SalesOrderRefs(
        customer_erp_id=customer.erp_id,
        project_erp_id=project.erp_id,
        subsidiary=us01,
        department=ids["departments"]["Consulting"],
        items=ids["items"],
    )


def test_upsert_sales_order_is_idempotent(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, refs: SalesOrderRefs
) -> None:
    contract = a_contract(
        ("CONSULTING-HOUR", "120", "175.00", "21000.00"), ("PM-HOUR", "10", "150.00", "1500.00")
    )
    first = erp.upsert_sales_order(contract, external_id="so-k-1", refs=refs)
    second = erp.upsert_sales_order(contract, external_id="so-k-1", refs=refs)
    assert first == second
    assert (first.number, first.external_id) == ("SO-01001", "so-k-1")
    (order,) = sandbox.state.records("salesOrder")
    assert len(order["item"]) == 2  # sent with ?replace=item: no duplicated lines
    assert order["job"] == {"id": refs.project_erp_id}
    assert order["otherRefNum"] == "K-2025-001"
    assert order["total"] == Decimal("22500.00")


def test_missing_item_mapping_sends_nothing(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, refs: SalesOrderRefs
) -> None:
    contract = a_contract(
        ("CONSULTING-HOUR", "1", "100.00", "100.00"), ("WORKSHOP-DAY", "1", "900.00", "900.00")
    )
    with pytest.raises(MappingMissingError) as info:
        erp.upsert_sales_order(contract, external_id="so-k-1", refs=refs)
    assert info.value.message == "Item 'WORKSHOP-DAY' has no NetSuite mapping"
    assert info.value.field == "item"
    assert sandbox.state.records("salesOrder") == []


def test_amounts_round_trip_exactly(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, refs: SalesOrderRefs
) -> None:
    lines = [
        ("CONSULTING-HOUR", "0.1", "0.1", "0.01"),
        ("PM-HOUR", "0.2", "0.1", "0.02"),
        ("TRAVEL", "1", "1234567.895", "1234567.895"),
        ("CONSULTING-HOUR", "7.5", "95.2381", "714.28575"),
    ]
    made = erp.upsert_sales_order(a_contract(*lines), external_id="so-k-1", refs=refs)
    record = erp.read_record("salesOrder", made.erp_id, expand=True)
    got = [(ln["quantity"], ln["rate"], ln["amount"]) for ln in record["item"]["items"]]
    assert got == [(Decimal(q), Decimal(r), Decimal(a)) for _, q, r, a in lines]
    assert not any(isinstance(v, float) for row in got for v in row)
    assert record["total"] == Decimal("1235282.21075")  # the exact sum, not 1235282.2107500001
    (row,) = erp.query(f"SELECT foreigntotal FROM transaction WHERE id = {made.erp_id}")
    assert row["foreigntotal"] == "1235282.21075"


def test_floats_never_reach_the_wire() -> None:
    with pytest.raises(TypeError):
        wire.dumps({"amount": 0.1})
    assert wire.dumps({"a": Decimal("1000.00"), "b": Decimal("1E+3")}) == b'{"a":1000.00,"b":1000}'
    assert wire.loads(b'{"a": 0.1}')["a"] == Decimal("0.1")


def test_missing_permission_is_an_auth_error(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, refs: SalesOrderRefs
) -> None:
    sandbox.deny("salesOrder", "write")
    contract = a_contract(("CONSULTING-HOUR", "1", "100.00", "100.00"))
    with pytest.raises(AuthError, match="may not access this sales order"):
        erp.upsert_sales_order(contract, external_id="so-k-1", refs=refs)
