"""ErpPort against a real Tryton: customers (parties), projects and sales orders."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from q2c.canonical.models import (
    Address,
    BillingModel,
    Contract,
    ContractLine,
    Project,
    RevenueMethod,
)
from q2c.connectors.tryton.adapter import TrytonErp
from q2c.connectors.tryton.rpc import TrytonRpc
from q2c.errors import BusinessFixError, MappingMissingError
from q2c.flows.ports import ErpPort, SalesOrderRefs
from tests.connectors.tryton.helpers import make_customer, new_customer, usd

pytestmark = pytest.mark.integration


def test_adapter_satisfies_the_erp_ports(erp: TrytonErp) -> None:
    from q2c.flows.ports import ArLedgerPort, JournalPort, ReferenceDataPort

    for port in (ErpPort, ArLedgerPort, JournalPort, ReferenceDataPort):
        assert isinstance(erp, port)


def test_customer_upsert_is_idempotent(erp: TrytonErp, admin: TrytonRpc, uid: str) -> None:
    customer = make_customer(uid, tax_id="12-3456789")
    first = erp.upsert_customer(customer, external_id=f"q2c-crm-{uid}", subsidiary="")
    again = erp.upsert_customer(customer, external_id=f"q2c-crm-{uid}", subsidiary="")
    assert first.erp_id == again.erp_id
    assert first.external_id == f"q2c-crm-{uid}"
    assert first.number  # Tryton's party sequence numbered it
    parties = admin.search_read(
        "party.identifier", [["code", "=", f"q2c-crm-{uid}"]], ["party", "type"]
    )
    assert [(p["party"], p["type"]) for p in parties] == [(int(first.erp_id), None)]
    (party,) = admin.read(
        "party.party", [int(first.erp_id)], ["name", "tax_identifier.code", "addresses"]
    )
    assert party["name"] == customer.legal_name
    assert party["tax_identifier."]["code"] == "12-3456789"
    (address,) = admin.read("party.address", party["addresses"], ["city", "country.code"])
    assert (address["city"], address["country."]["code"]) == ("Springfield", "US")


def test_customer_update_changes_the_same_party(erp: TrytonErp, admin: TrytonRpc, uid: str) -> None:
    created = new_customer(erp, uid)
    moved = make_customer(
        uid,
        legal_name=f"Northwind {uid} Holdings LLC",
        tax_id="98-7654321",
        billing_address=Address(line1="1 Harbor Way", city="Boston", country="US"),
    )
    updated = erp.upsert_customer(moved, external_id=f"q2c-crm-{uid}", subsidiary="")
    assert updated.erp_id == created.erp_id
    assert updated.legal_name == f"Northwind {uid} Holdings LLC"
    assert updated.tax_id == "98-7654321"
    (party,) = admin.read("party.party", [int(created.erp_id)], ["addresses"])
    cities = [a["city"] for a in admin.read("party.address", party["addresses"], ["city"])]
    assert cities == ["Boston"]


def test_find_customer_by_external_id_tax_id_then_name(erp: TrytonErp, uid: str) -> None:
    customer = make_customer(uid, country="DE", tax_id="DE 136 695 976")
    created = erp.upsert_customer(customer, external_id=f"q2c-crm-{uid}", subsidiary="")
    by_external = erp.find_customer(external_id=f"q2c-crm-{uid}", tax_id=None, legal_name=None)
    by_tax = erp.find_customer(external_id="q2c-unknown", tax_id="de136695976", legal_name=None)
    by_name = erp.find_customer(
        external_id=None, tax_id=None, legal_name=customer.legal_name.upper()
    )
    assert by_external is not None and by_external.erp_id == created.erp_id
    assert by_tax is not None and by_tax.erp_id == created.erp_id
    assert by_name is not None and by_name.erp_id == created.erp_id
    assert erp.find_customer(external_id=f"nobody-{uid}", tax_id=None, legal_name=None) is None


def test_two_parties_with_one_name_are_ambiguous(
    erp: TrytonErp, admin: TrytonRpc, uid: str
) -> None:
    admin.create("party.party", [{"name": f"Twin {uid}"}, {"name": f"twin {uid}"}])
    with pytest.raises(BusinessFixError) as info:
        erp.find_customer(external_id=None, tax_id=None, legal_name=f"Twin {uid}")
    assert "2 Tryton parties match the legal name" in info.value.message
    assert len(info.value.context["candidates"]) == 2


def _project(uid: str, **changes: object) -> Project:
    values: dict[str, object] = {
        "id": f"prj-{uid}",
        "code": f"PRJ-{uid.upper()}",
        "name": f"Data platform {uid}",
        "customer_id": f"cust-{uid}",
        "legal_entity": "US01",
        "start_date": dt.date(2026, 1, 5),
    }
    values.update(changes)
    return Project.model_validate(values)


def test_project_upsert_is_idempotent(erp: TrytonErp, admin: TrytonRpc, uid: str) -> None:
    customer = new_customer(erp, uid)
    kwargs = {"customer_erp_id": customer.erp_id, "subsidiary": "", "department": None}
    first = erp.upsert_project(_project(uid), external_id=f"q2c-prj-{uid}", **kwargs)
    renamed = _project(uid, name=f"Data platform {uid} phase 2", status="closed")
    again = erp.upsert_project(renamed, external_id=f"q2c-prj-{uid}", **kwargs)
    assert first.erp_id == again.erp_id
    assert first.number
    works = admin.search_read(
        "project.work",
        [["comment", "like", f"%q2c-prj-{uid}%"]],
        ["name", "type", "party", "status.name", "timesheet_works"],
    )
    assert len(works) == 1
    (work,) = works
    assert work["name"] == f"Data platform {uid} phase 2"
    assert (work["type"], work["party"]) == ("project", int(customer.erp_id))
    assert work["status."]["name"] == "Done"
    assert work["timesheet_works"]  # people can log time on it


def _contract(uid: str) -> Contract:
    lines = [
        ContractLine(line_no=1, service_item="CONSULTING-HOUR", quantity=Decimal(40),
                     unit_price=usd("150.00"), amount=usd("6000.00")),
        ContractLine(line_no=2, service_item="PM-HOUR", quantity=Decimal(10),
                     unit_price=usd("120.00"), amount=usd("1200.00")),
    ]  # fmt: skip
    return Contract(
        id=f"ctr-{uid}",
        number=f"CTR-{uid}",
        customer_id=f"cust-{uid}",
        legal_entity="US01",
        currency="USD",
        billing_model=BillingModel.TIME_AND_MATERIALS,
        revenue_method=RevenueMethod.AS_INVOICED,
        start_date=dt.date(2026, 1, 5),
        end_date=dt.date(2026, 6, 30),
        total_value=usd("7200.00"),
        lines=lines,
    )


def test_sales_order_is_confirmed_once(erp: TrytonErp, admin: TrytonRpc, uid: str) -> None:
    customer = new_customer(erp, uid)
    project = erp.upsert_project(
        _project(uid), external_id=f"q2c-prj-{uid}", customer_erp_id=customer.erp_id,
        subsidiary="", department=None,
    )  # fmt: skip
    items = {
        row["code"]: str(row["id"])
        for row in admin.search_read("product.product", [["code", "!=", None]], ["code"])
    }
    refs = SalesOrderRefs(customer.erp_id, project.erp_id, "", None, items)
    first = erp.upsert_sales_order(_contract(uid), external_id=f"q2c-so-{uid}", refs=refs)
    again = erp.upsert_sales_order(_contract(uid), external_id=f"q2c-so-{uid}", refs=refs)
    assert first == again
    sales = admin.search_read(
        "sale.sale",
        [["reference", "=", f"q2c-so-{uid}"]],
        ["state", "untaxed_amount", "tax_amount", "total_amount", "description", "party"],
    )
    assert len(sales) == 1
    (sale,) = sales
    assert sale["state"] in ("confirmed", "processing")
    assert sale["untaxed_amount"] == Decimal("7200.00")
    assert sale["tax_amount"] == Decimal("720.00")  # the products' default 10 % sales tax
    assert project.number in sale["description"]


def test_sales_order_with_an_unmapped_item_is_refused(erp: TrytonErp, uid: str) -> None:
    customer = new_customer(erp, uid)
    refs = SalesOrderRefs(customer.erp_id, "1", "", None, {"CONSULTING-HOUR": "1"})
    with pytest.raises(MappingMissingError) as info:
        erp.upsert_sales_order(_contract(uid), external_id=f"q2c-so-{uid}", refs=refs)
    assert "PM-HOUR" in info.value.message
