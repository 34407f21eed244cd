"""The record types the NetSuite emulator knows, declared as data.

Each record type lists its fields the way the REST record service treats them: text, exact
numbers, booleans, dates, select fields (``{"id": "ON"}``), references to other records
(``{"id": "7"}`` or ``{"externalId": "X"}``) and sublists (``{"items": [...]}``), plus how
NetSuite numbers it (``CUST-01001``) and which id space its internal ids come from. Adding a
record type is a few lines here, not a new code path; ``records.py`` checks bodies against it.

Read-only fields are what NetSuite computes (``ledger.py`` fills them for the AR and GL
transactions: tax, totals, amount remaining, status, applied/unapplied). Tax follows the
per-line ``taxCode`` model (legacy tax codes, ``salesTaxItem`` with a percent ``rate`` and the
nexus ``country``); a SuiteTax account would instead take a ``taxDetails`` sublist with
``taxDetailsOverride``, which the emulator does not model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from q2c.connectors.netsuite.wire import NetSuiteApiError

__all__ = [
    "ACCOUNT_TYPES",
    "INVOICE_STATUSES",
    "ITEM_TYPES",
    "JOB_STATUSES",
    "REGISTRY",
    "Field",
    "RecordType",
    "Resolver",
    "record_type",
]

Kind = Literal["text", "decimal", "bool", "date", "ref", "select", "sublist", "raw", "int"]

# Resolves a reference ({"id": ...} or {"externalId": ...}) to an internal id of one of the
# target record types, or None when no such record exists.
Resolver = Callable[[tuple[str, ...], Mapping[str, Any]], str | None]


@dataclass(frozen=True)
class Field:
    kind: Kind
    label: str = ""
    targets: tuple[str, ...] = ()
    choices: Mapping[str, str] = field(default_factory=dict)
    lines: Mapping[str, Field] = field(default_factory=dict)
    required: bool = False
    read_only: bool = False


@dataclass(frozen=True)
class RecordType:
    """One REST record type (``customer``, ``salesOrder``...)."""

    name: str
    label: str
    fields: Mapping[str, Field]
    id_space: str
    display_field: str
    number_field: str | None = None
    number_format: str = ""
    number_start: int = 1
    duplicate_number_code: str = "DUP_ENTITY"
    duplicate_external_id_code: str = "DUP_RCRD"
    required_lines: tuple[str, ...] = ()


def _text(label: str = "", *, required: bool = False) -> Field:
    return Field("text", label, required=required)


def _ref(*targets: str, label: str = "", required: bool = False) -> Field:
    return Field("ref", label, targets=targets, required=required)


_DECIMAL = Field("decimal")
_BOOL = Field("bool")
_DATE = Field("date")
_TEXT = Field("text")
_STAMP = Field("text", read_only=True)
_COMMON: dict[str, Field] = {
    "externalId": _TEXT,
    "isInactive": _BOOL,
    "dateCreated": _STAMP,
    "lastModifiedDate": _STAMP,
}
_COMPUTED = Field("decimal", read_only=True)
ITEM_TYPES = ("serviceSaleItem", "otherChargeSaleItem")
JOB_STATUSES = {
    "1": "Closed",
    "2": "In Progress",
    "3": "Not Awarded",
    "4": "Pending",
    "5": "Awarded",
}
# Invoice status as the record service shows it (``{"id": "A", "refName": "Open"}``);
# SuiteQL's transaction.status holds the letter.
INVOICE_STATUSES = {"A": "Open", "B": "Paid In Full"}
# Chart-of-accounts types (the ``accttype`` values SuiteQL shows).
ACCOUNT_TYPES = {
    "AcctRec": "Accounts Receivable",
    "Bank": "Bank",
    "DeferRevenue": "Deferred Revenue",
    "Income": "Income",
    "OthCurrAsset": "Other Current Asset",
    "OthCurrLiab": "Other Current Liability",
    "Expense": "Expense",
    "Equity": "Equity",
}


def _named(name: str, label: str, id_space: str, **extra: Field) -> RecordType:
    fields = {**_COMMON, "name": _text(f"{label} Name", required=True), **extra}
    return RecordType(name, label, fields, id_space, "name")


REGISTRY: dict[str, RecordType] = {
    rt.name: rt
    for rt in (
        RecordType(
            "customer",
            "Customer",
            {
                **_COMMON,
                "entityId": _TEXT,
                "companyName": _text("Company Name"),
                "isPerson": _BOOL,
                "firstName": _text("First Name"),
                "lastName": _text("Last Name"),
                "subsidiary": _ref("subsidiary", label="Primary Subsidiary", required=True),
                "currency": _ref("currency"),
                "email": _TEXT,
                "phone": _TEXT,
                "vatRegNumber": _TEXT,
                "defaultTaxReg": _TEXT,
                "creditLimit": _DECIMAL,
                "creditHoldOverride": Field(
                    "select", choices={"AUTO": "Auto", "ON": "On", "OFF": "Off"}
                ),
                "category": _ref("customerCategory"),
                "terms": _ref("term"),
                "comments": _TEXT,
                "currencyList": Field(
                    "sublist",
                    label="Currencies",
                    lines={"currency": _ref("currency", label="Currency", required=True)},
                ),
                "addressBook": Field(
                    "sublist",
                    lines={
                        "label": _TEXT,
                        "defaultBilling": _BOOL,
                        "defaultShipping": _BOOL,
                        "addressBookAddress": Field("raw"),
                    },
                ),
            },
            id_space="entity",
            display_field="companyName",
            number_field="entityId",
            number_format="CUST-{:05d}",
            number_start=1001,
            duplicate_number_code="UNIQUE_CUST_ID_REQD",
            duplicate_external_id_code="DUP_ENTITY",
        ),
        RecordType(
            "job",
            "Project",
            {
                **_COMMON,
                "entityId": _TEXT,
                "companyName": _text("Project Name", required=True),
                "parent": _ref("customer", label="Customer", required=True),
                "subsidiary": _ref("subsidiary"),
                "department": _ref("department"),
                "currency": _ref("currency"),
                "startDate": _DATE,
                "projectedEndDate": _DATE,
                "endDate": _DATE,
                "entityStatus": Field("select", choices=JOB_STATUSES),
                "jobType": _ref("jobType"),
                "comments": _TEXT,
            },
            id_space="entity",
            display_field="companyName",
            number_field="entityId",
            number_format="PRJ-{:05d}",
            number_start=101,
            duplicate_external_id_code="DUP_ENTITY",
        ),
        RecordType(
            "salesOrder",
            "Sales Order",
            {
                **_COMMON,
                "tranId": _TEXT,
                "entity": _ref("customer", "job", label="Customer", required=True),
                "tranDate": _DATE,
                "subsidiary": _ref("subsidiary"),
                "department": _ref("department"),
                "class": _ref("classification"),
                "location": _ref("location"),
                "job": _ref("job"),
                "currency": _ref("currency"),
                "memo": _TEXT,
                "otherRefNum": _TEXT,
                "startDate": _DATE,
                "endDate": _DATE,
                "billingSchedule": _ref("billingSchedule"),
                "total": Field("decimal", read_only=True),
                "item": Field(
                    "sublist",
                    label="Items",
                    lines={
                        "line": Field("int", read_only=True),
                        "item": _ref(*ITEM_TYPES, label="Item", required=True),
                        "quantity": _DECIMAL,
                        "rate": _DECIMAL,
                        "amount": _DECIMAL,
                        "description": _TEXT,
                        "department": _ref("department"),
                        "class": _ref("classification"),
                        "location": _ref("location"),
                    },
                ),
            },
            id_space="transaction",
            display_field="tranId",
            number_field="tranId",
            number_format="SO-{:05d}",
            number_start=1001,
            duplicate_number_code="",  # NetSuite warns about duplicate order numbers, no more
            required_lines=("item",),
        ),
        _named("subsidiary", "Subsidiary", "subsidiary", currency=_ref("currency"), country=_TEXT),
        _named("department", "Department", "department", subsidiary=_ref("subsidiary")),
        _named("classification", "Class", "classification"),
        _named("location", "Location", "location", subsidiary=_ref("subsidiary")),
        RecordType(
            "currency",
            "Currency",
            {
                **_COMMON,
                "name": _text("Name", required=True),
                "symbol": _text("ISO Code", required=True),
                "isBaseCurrency": _BOOL,
                "exchangeRate": _DECIMAL,
            },
            id_space="currency",
            display_field="name",
        ),
        RecordType(
            "serviceSaleItem",
            "Service Item",
            {
                **_COMMON,
                "itemId": _text("Item Name/Number", required=True),
                "displayName": _TEXT,
                "description": _TEXT,
                "rate": _DECIMAL,
                "subsidiary": _ref("subsidiary"),
                "incomeAccount": _ref("account", label="Income Account"),
            },
            id_space="item",
            display_field="itemId",
        ),
        RecordType(
            "otherChargeSaleItem",
            "Other Charge Item",
            {
                **_COMMON,
                "itemId": _text("Item Name/Number", required=True),
                "displayName": _TEXT,
                "description": _TEXT,
                "rate": _DECIMAL,
                "subsidiary": _ref("subsidiary"),
                "incomeAccount": _ref("account", label="Income Account"),
            },
            id_space="item",
            display_field="itemId",
        ),
        RecordType(
            "salesTaxItem",
            "Tax Code",
            {
                **_COMMON,
                "itemId": _text("Tax Name", required=True),
                "displayName": _TEXT,
                "description": _TEXT,
                "rate": Field("decimal", label="Rate", required=True),  # percent: 19 = 19 %
                "country": _text("Nexus Country"),
                "subsidiary": _ref("subsidiary"),
                "taxAccount": _ref("account", label="Tax Account"),
                "exempt": _BOOL,
            },
            id_space="item",  # tax codes are items in NetSuite (item type "TaxItem")
            display_field="itemId",
        ),
        RecordType(
            "account",
            "Account",
            {
                **_COMMON,
                "acctNumber": _TEXT,
                "acctName": _text("Name", required=True),
                "acctType": Field("select", label="Type", choices=ACCOUNT_TYPES, required=True),
                "subsidiary": _ref("subsidiary"),
                "currency": _ref("currency"),
                "description": _TEXT,
            },
            id_space="account",
            display_field="acctName",
        ),
        RecordType(
            "currencyRate",
            "Currency Exchange Rate",
            {
                **_COMMON,
                "baseCurrency": _ref("currency", label="Base Currency", required=True),
                "transactionCurrency": _ref(
                    "currency", label="Transaction Currency", required=True
                ),
                # units of the base currency for one unit of the transaction currency
                "exchangeRate": Field("decimal", label="Exchange Rate", required=True),
                "effectiveDate": Field("date", label="Effective Date", required=True),
            },
            id_space="currencyRate",
            display_field="effectiveDate",
        ),
        RecordType(
            "invoice",
            "Invoice",
            {
                **_COMMON,
                "tranId": _TEXT,
                "entity": _ref("customer", "job", label="Customer", required=True),
                "tranDate": _DATE,
                "dueDate": _DATE,
                "subsidiary": _ref("subsidiary"),
                "currency": _ref("currency"),
                "department": _ref("department"),
                "class": _ref("classification"),
                "location": _ref("location"),
                "account": _ref("account", label="A/R Account"),
                "terms": _ref("term"),
                "memo": _TEXT,
                "otherRefNum": _TEXT,
                "subtotal": _COMPUTED,
                "taxTotal": _COMPUTED,
                "total": _COMPUTED,
                "amountPaid": _COMPUTED,
                "amountRemaining": _COMPUTED,
                "status": Field("select", choices=INVOICE_STATUSES, read_only=True),
                "item": Field(
                    "sublist",
                    label="Items",
                    lines={
                        "line": Field("int", read_only=True),
                        "item": _ref(*ITEM_TYPES, label="Item", required=True),
                        "quantity": _DECIMAL,
                        "rate": _DECIMAL,
                        "amount": _DECIMAL,
                        "description": _TEXT,
                        "taxCode": _ref("salesTaxItem", label="Tax Code"),
                        "taxRate1": _COMPUTED,
                        "tax1Amt": _COMPUTED,
                        "department": _ref("department"),
                        "class": _ref("classification"),
                        "location": _ref("location"),
                    },
                ),
            },
            id_space="transaction",
            display_field="tranId",
            number_field="tranId",
            number_format="INV-{:05d}",
            number_start=10001,
            duplicate_number_code="",
            required_lines=("item",),
        ),
        RecordType(
            "customerPayment",
            "Customer Payment",
            {
                **_COMMON,
                "tranId": _TEXT,
                "customer": _ref("customer", label="Customer", required=True),
                "tranDate": _DATE,
                "subsidiary": _ref("subsidiary"),
                "currency": _ref("currency"),
                "payment": Field("decimal", label="Payment Amount", required=True),
                "arAcct": _ref("account", label="A/R Account"),
                "account": _ref("account", label="Account"),
                "undepFunds": _BOOL,
                "checkNum": _TEXT,
                "memo": _TEXT,
                "applied": _COMPUTED,
                "unapplied": _COMPUTED,
                "total": _COMPUTED,
                "apply": Field(
                    "sublist",
                    label="Invoices",
                    lines={
                        "line": Field("int", read_only=True),
                        "doc": _ref("invoice", label="Invoice", required=True),
                        "apply": _BOOL,
                        "amount": _DECIMAL,
                        "type": Field("text", read_only=True),
                        "refNum": Field("text", read_only=True),
                        "total": _COMPUTED,
                        "due": _COMPUTED,
                    },
                ),
            },
            id_space="transaction",
            display_field="tranId",
            number_field="tranId",
            number_format="PYMT-{:05d}",
            number_start=10001,
            duplicate_number_code="",
        ),
        RecordType(
            "journalEntry",
            "Journal Entry",
            {
                **_COMMON,
                "tranId": _TEXT,
                "tranDate": _DATE,
                "subsidiary": _ref("subsidiary", label="Subsidiary", required=True),
                "currency": _ref("currency"),
                "exchangeRate": _DECIMAL,
                "memo": _TEXT,
                "approved": Field("bool", read_only=True),
                "total": _COMPUTED,
                "line": Field(
                    "sublist",
                    label="Lines",
                    lines={
                        "line": Field("int", read_only=True),
                        "account": _ref("account", label="Account", required=True),
                        "debit": _DECIMAL,
                        "credit": _DECIMAL,
                        "memo": _TEXT,
                        "entity": _ref("customer", "job", label="Name"),
                        "department": _ref("department"),
                        "class": _ref("classification"),
                        "location": _ref("location"),
                    },
                ),
            },
            id_space="transaction",
            display_field="tranId",
            number_field="tranId",
            number_format="JE-{:05d}",
            number_start=10001,
            duplicate_number_code="",
            required_lines=("line",),
        ),
        _named("term", "Term", "term"),
        _named("customerCategory", "Customer Category", "customerCategory"),
        _named("jobType", "Project Type", "jobType"),
        _named("billingSchedule", "Billing Schedule", "billingSchedule", frequency=_TEXT),
    )
}


def record_type(name: str) -> RecordType:
    try:
        return REGISTRY[name]
    except KeyError:
        raise NetSuiteApiError(
            404, "NONEXISTENT_ID", f"Record type '{name}' does not exist."
        ) from None
