"""Message translator between q2c's canonical objects and NetSuite record bodies.

Pure functions, no I/O: the adapter resolves ids (currency, items) and hands them in. Amounts
leave as Decimals and reach the wire as exact JSON numbers (``wire.dumps``). SuiteQL has no
bind parameters over REST, so values are embedded as SQL literals with quotes doubled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from q2c.canonical.models import Contract, Customer, Project
from q2c.canonical.money import Money
from q2c.errors import MappingMissingError, ValidationError
from q2c.flows.ports import ErpCustomer, SalesOrderRefs

__all__ = [
    "CUSTOMER_COLUMNS",
    "amount_of",
    "customer_body",
    "decimal_or_none",
    "erp_customer_from_record",
    "erp_customer_from_row",
    "normalize_tax_id",
    "project_body",
    "require_mapped",
    "sales_order_body",
    "sql_literal",
]

SYSTEM = "netsuite"

# Project status -> NetSuite project status (entityStatus) internal id.
PROJECT_STATUS = {"planned": "4", "active": "2", "on_hold": "4", "closed": "1"}

CUSTOMER_COLUMNS = (
    "SELECT c.id, c.entityid, c.companyname, c.subsidiary, cur.symbol AS currencycode, "
    "c.vatregnumber, c.externalid, c.creditlimit, c.creditholdoverride "
    "FROM customer c LEFT JOIN currency cur ON cur.id = c.currency"
)


def sql_literal(value: str) -> str:
    """A SuiteQL string literal: single quotes doubled, control characters refused."""
    if any(ord(ch) < 32 for ch in value):
        raise ValidationError(
            "A value sent to NetSuite contains control characters",
            detail=f"refused SuiteQL literal {value!r}",
            system=SYSTEM,
        )
    return "'" + value.replace("'", "''") + "'"


def normalize_tax_id(tax_id: str) -> str:
    """Tax ids are compared without spaces and case: "de 123 456 789" is "DE123456789"."""
    return "".join(tax_id.split()).upper()


def _ref(internal_id: str) -> dict[str, str]:
    return {"id": str(internal_id)}


def _amount(money: Money, currency: str, what: str) -> Decimal:
    if money.currency != currency:
        raise ValidationError(
            f"{what} is in {money.currency} but the document is in {currency}",
            detail=f"{what}={money}",
            system=SYSTEM,
        )
    return money.amount


def require_mapped(
    what: str,
    wanted: Iterable[str],
    mapping: Mapping[str, str],
    *,
    document: tuple[str, str],
    field: str,
    context_key: str,
) -> None:
    """Refuse, before anything is sent, a document whose codes have no NetSuite id mapped."""
    missing = sorted(set(wanted) - mapping.keys())
    if not missing:
        return
    names = ", ".join(f"'{m}'" for m in missing)
    kind, number = document
    raise MappingMissingError(
        f"{what} {names} has no NetSuite mapping"
        if len(missing) == 1
        else f"{what}s {names} have no NetSuite mapping",
        detail=f"{kind} {number}: {context_key.replace('_', ' ')} {missing} are not in the "
        f"{field} mapping {sorted(mapping)}",
        field=field,
        system=SYSTEM,
        context={context_key: missing, kind: number},
    )


def amount_of(money: Money, currency: str, what: str) -> Decimal:
    """The amount of ``money``, refused if it is not in the document's currency."""
    return _amount(money, currency, what)


def customer_body(customer: Customer, *, subsidiary: str, currency_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "companyName": customer.legal_name,
        "isPerson": False,
        "subsidiary": _ref(subsidiary),
        "currency": _ref(currency_id),
        "isInactive": customer.status == "inactive",
    }
    if customer.email:
        body["email"] = customer.email
    if customer.phone:
        body["phone"] = customer.phone
    if customer.tax_id:
        body["vatRegNumber"] = customer.tax_id
    if customer.credit_limit is not None:
        body["creditLimit"] = _amount(customer.credit_limit, customer.currency, "Credit limit")
    address = customer.billing_address
    if address is not None:
        lines = {
            "addr1": address.line1,
            "addr2": address.line2,
            "city": address.city,
            "state": address.region,
            "zip": address.postal_code,
            "country": {"id": address.country},
        }
        body["addressBook"] = {
            "items": [
                {
                    "label": "Billing",
                    "defaultBilling": True,
                    "defaultShipping": True,
                    "addressBookAddress": {k: v for k, v in lines.items() if v is not None},
                }
            ]
        }
    return body


def project_body(
    project: Project, *, customer_erp_id: str, subsidiary: str, department: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "entityId": project.code,
        "companyName": project.name,
        "parent": _ref(customer_erp_id),
        "subsidiary": _ref(subsidiary),
        "startDate": project.start_date.isoformat(),
        "entityStatus": {"id": PROJECT_STATUS[project.status]},
    }
    if project.end_date is not None:
        body["projectedEndDate"] = project.end_date.isoformat()
    if department:
        body["department"] = _ref(department)
    return body


def sales_order_body(
    contract: Contract, *, refs: SalesOrderRefs, currency_id: str
) -> dict[str, Any]:
    require_mapped(
        "Item",
        {ln.service_item for ln in contract.lines},
        refs.items,
        document=("contract", contract.number),
        field="item",
        context_key="service_items",
    )
    lines = [
        {
            "item": _ref(refs.items[line.service_item]),
            "quantity": line.quantity,
            "rate": _amount(line.unit_price, contract.currency, f"Line {line.line_no} rate"),
            "amount": _amount(line.amount, contract.currency, f"Line {line.line_no} amount"),
            "description": line.description or line.service_item,
        }
        for line in contract.lines
    ]
    body: dict[str, Any] = {
        "entity": _ref(refs.customer_erp_id),
        "job": _ref(refs.project_erp_id),
        "subsidiary": _ref(refs.subsidiary),
        "currency": _ref(currency_id),
        "tranDate": contract.start_date.isoformat(),
        "startDate": contract.start_date.isoformat(),
        "endDate": contract.end_date.isoformat(),
        "otherRefNum": contract.number,
        "memo": f"Contract {contract.number}",
        "item": {"items": lines},
    }
    if refs.department:
        body["department"] = _ref(refs.department)
    return body


def decimal_or_none(value: Any) -> Decimal | None:
    """A NetSuite number (Decimal, int or SuiteQL string) as an exact Decimal."""
    if value is None or value == "":
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def erp_customer_from_row(row: Mapping[str, str]) -> ErpCustomer:
    """A customer as the SuiteQL ``CUSTOMER_COLUMNS`` query returns it (all strings)."""
    currency = row.get("currencycode")
    limit = decimal_or_none(row.get("creditlimit"))
    return ErpCustomer(
        erp_id=row["id"],
        number=row.get("entityid", ""),
        legal_name=row.get("companyname", ""),
        subsidiary=row.get("subsidiary", ""),
        currency=currency,
        tax_id=row.get("vatregnumber"),
        external_id=row.get("externalid"),
        credit_limit=Money(limit, currency) if limit is not None and currency else None,
        on_credit_hold=row.get("creditholdoverride") == "ON",
    )


def erp_customer_from_record(record: Mapping[str, Any], currency: str | None) -> ErpCustomer:
    """A customer as the record service returns it; ``currency`` is its ISO code."""

    def ref_id(name: str) -> str:
        value = record.get(name)
        return str(value.get("id", "")) if isinstance(value, Mapping) else str(value or "")

    hold = record.get("creditHoldOverride")
    hold_id = hold.get("id") if isinstance(hold, Mapping) else hold
    limit = decimal_or_none(record.get("creditLimit"))
    return ErpCustomer(
        erp_id=str(record["id"]),
        number=str(record.get("entityId", "")),
        legal_name=str(record.get("companyName", "")),
        subsidiary=ref_id("subsidiary"),
        currency=currency,
        tax_id=record.get("vatRegNumber"),
        external_id=record.get("externalId"),
        credit_limit=Money(limit, currency) if limit is not None and currency else None,
        on_credit_hold=hold_id == "ON",
    )
