"""The SuiteQL tables the emulator mirrors records into, declared as data.

Each table names the REST record types that feed it and, per column, its SuiteQL name, DuckDB
type and how to read it from a record (``"@type"`` holds the record type). Tables and columns
follow NetSuite's analytics data source: ``customer``, ``job``, ``transaction`` (sales orders
``SalesOrd``, invoices ``CustInvc``, customer payments ``CustPymt``, journal entries
``Journal``) with ``transactionline`` (a main line plus one row per item or journal line),
``item`` (service ``Service``, other charge ``OthCharge``, tax code ``TaxItem``),
``salestaxitem``, ``account``, ``currency``, ``currencyrate``, ``subsidiary``, ``department``,
``classification``, ``location``, ``term``.

Simplified: line amounts are positive whatever their posting side (in NetSuite an invoice's
revenue lines carry negative ``foreignamount``), and a journal line's account is in
``transactionline.expenseaccount`` next to ``debitforeignamount`` and ``creditforeignamount``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["TABLES", "Column", "Table"]

Record = Mapping[str, Any]
Source = Callable[[Record], Any]


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    source: Source


@dataclass(frozen=True)
class Table:
    """A SuiteQL table fed by one or more REST record types.

    With ``sublists`` set (record type -> sublist), the table has a main-line row plus one row
    per line of that sublist, like ``transactionline``; line columns read from ``(record,
    line)`` and the main line is an empty mapping. Record types without a sublist there get
    their main line only. Every source sees the record type under ``"@type"``.
    """

    name: str
    record_types: tuple[str, ...]
    columns: tuple[Column, ...]
    sublists: Mapping[str, str] | None = None
    line_columns: tuple[tuple[str, str, Callable[[Record, Record], Any]], ...] = ()


def _get(name: str) -> Source:
    return lambda r: r.get(name)


def _ref(name: str) -> Source:
    return lambda r: int(r[name]["id"]) if isinstance(r.get(name), Mapping) else None


def _flag(name: str) -> Source:
    return lambda r: "T" if r.get(name) else "F"


def _by_type(values: Mapping[str, Any]) -> Source:
    """A value that depends on the REST record type the row comes from."""
    return lambda r: values.get(r.get("@type", ""))


def _stamp(name: str) -> Source:
    def read(r: Record) -> datetime | None:
        value = r.get(name)
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None

    return read


def _cols(*specs: tuple[str, str, Source]) -> tuple[Column, ...]:
    return tuple(Column(n, t, s) for n, t, s in specs)


_ID = ("id", "BIGINT", lambda r: int(r["id"]))
_EXTERNAL = ("externalid", "VARCHAR", _get("externalId"))
_INACTIVE = ("isinactive", "VARCHAR", _flag("isInactive"))
_CREATED = ("datecreated", "TIMESTAMP", _stamp("dateCreated"))
_MODIFIED = ("lastmodifieddate", "TIMESTAMP", _stamp("lastModifiedDate"))
_MONEY = "DECIMAL(38, 10)"


_TRANSACTION_TYPES = ("salesOrder", "invoice", "customerPayment", "journalEntry")
_TRANSACTION_TYPE = {
    "salesOrder": "SalesOrd",
    "invoice": "CustInvc",
    "customerPayment": "CustPymt",
    "journalEntry": "Journal",
}
_RECORD_TYPE = {name: name.lower() for name in _TRANSACTION_TYPES}
_ITEM_TYPE = {
    "serviceSaleItem": "Service",
    "otherChargeSaleItem": "OthCharge",
    "salesTaxItem": "TaxItem",
}


def _display_account(r: Record) -> str | None:
    name = r.get("acctName")
    number = r.get("acctNumber")
    return f"{number} {name}" if number and name else name


def _line_amount(r: Record, ln: Record) -> Any:
    if not ln:
        return r.get("total")
    if ln.get("amount") is not None:
        return ln["amount"]
    return ln.get("debit") if ln.get("debit") is not None else ln.get("credit")


def _named_table(name: str, record_type: str, *extra: tuple[str, str, Source]) -> Table:
    return Table(
        name,
        (record_type,),
        _cols(_ID, ("name", "VARCHAR", _get("name")), _EXTERNAL, _INACTIVE, *extra),
    )


TABLES: tuple[Table, ...] = (
    Table(
        "customer",
        ("customer",),
        _cols(
            _ID,
            ("entityid", "VARCHAR", _get("entityId")),
            ("companyname", "VARCHAR", _get("companyName")),
            ("altname", "VARCHAR", _get("companyName")),
            _EXTERNAL,
            ("isperson", "VARCHAR", _flag("isPerson")),
            ("firstname", "VARCHAR", _get("firstName")),
            ("lastname", "VARCHAR", _get("lastName")),
            ("subsidiary", "BIGINT", _ref("subsidiary")),
            ("currency", "BIGINT", _ref("currency")),
            ("email", "VARCHAR", _get("email")),
            ("phone", "VARCHAR", _get("phone")),
            ("vatregnumber", "VARCHAR", _get("vatRegNumber")),
            ("creditlimit", _MONEY, _get("creditLimit")),
            ("creditholdoverride", "VARCHAR", _get("creditHoldOverride")),
            ("category", "BIGINT", _ref("category")),
            ("terms", "BIGINT", _ref("terms")),
            ("comments", "VARCHAR", _get("comments")),
            _INACTIVE,
            _CREATED,
            _MODIFIED,
        ),
    ),
    Table(
        "job",
        ("job",),
        _cols(
            _ID,
            ("entityid", "VARCHAR", _get("entityId")),
            ("companyname", "VARCHAR", _get("companyName")),
            ("altname", "VARCHAR", _get("companyName")),
            _EXTERNAL,
            ("parent", "BIGINT", _ref("parent")),
            ("customer", "BIGINT", _ref("parent")),
            ("subsidiary", "BIGINT", _ref("subsidiary")),
            ("department", "BIGINT", _ref("department")),
            ("currency", "BIGINT", _ref("currency")),
            ("startdate", "DATE", _get("startDate")),
            ("projectedenddate", "DATE", _get("projectedEndDate")),
            ("enddate", "DATE", _get("endDate")),
            (
                "entitystatus",
                "BIGINT",
                lambda r: int(r["entityStatus"]) if r.get("entityStatus") else None,
            ),
            ("jobtype", "BIGINT", _ref("jobType")),
            _INACTIVE,
            _CREATED,
            _MODIFIED,
        ),
    ),
    Table(
        "transaction",
        _TRANSACTION_TYPES,
        _cols(
            _ID,
            ("tranid", "VARCHAR", _get("tranId")),
            ("type", "VARCHAR", _by_type(_TRANSACTION_TYPE)),
            ("recordtype", "VARCHAR", _by_type(_RECORD_TYPE)),
            ("entity", "BIGINT", lambda r: _ref("entity")(r) or _ref("customer")(r)),
            _EXTERNAL,
            ("trandate", "DATE", _get("tranDate")),
            ("duedate", "DATE", _get("dueDate")),
            ("currency", "BIGINT", _ref("currency")),
            ("memo", "VARCHAR", _get("memo")),
            ("otherrefnum", "VARCHAR", _get("otherRefNum")),
            ("foreigntotal", _MONEY, _get("total")),
            ("taxtotal", _MONEY, _get("taxTotal")),
            ("foreignamountpaid", _MONEY, _get("amountPaid")),
            ("foreignamountremaining", _MONEY, _get("amountRemaining")),
            ("foreignpaymentamountused", _MONEY, _get("applied")),
            ("foreignpaymentamountunused", _MONEY, _get("unapplied")),
            ("status", "VARCHAR", _get("status")),
            (
                "approved",
                "VARCHAR",
                lambda r: None if "approved" not in r else _flag("approved")(r),
            ),
            ("startdate", "DATE", _get("startDate")),
            ("enddate", "DATE", _get("endDate")),
            ("createddate", "TIMESTAMP", _stamp("dateCreated")),
            _MODIFIED,
        ),
    ),
    Table(
        "transactionline",
        _TRANSACTION_TYPES,
        (),
        sublists={"salesOrder": "item", "invoice": "item", "journalEntry": "line"},
        line_columns=(
            ("transaction", "BIGINT", lambda r, ln: int(r["id"])),
            ("id", "BIGINT", lambda r, ln: ln.get("line", 0)),
            ("linesequencenumber", "BIGINT", lambda r, ln: ln.get("line", 0)),
            ("mainline", "VARCHAR", lambda r, ln: "F" if ln else "T"),
            (
                "entity",
                "BIGINT",
                lambda r, ln: _ref("entity")(ln) or _ref("entity")(r) or _ref("customer")(r),
            ),
            ("subsidiary", "BIGINT", lambda r, ln: _ref("subsidiary")(r)),
            ("department", "BIGINT", lambda r, ln: _ref("department")(ln or r)),
            ("class", "BIGINT", lambda r, ln: _ref("class")(ln or r)),
            ("location", "BIGINT", lambda r, ln: _ref("location")(ln or r)),
            ("item", "BIGINT", lambda r, ln: _ref("item")(ln)),
            ("taxcode", "BIGINT", lambda r, ln: _ref("taxCode")(ln)),
            ("expenseaccount", "BIGINT", lambda r, ln: _ref("account")(ln)),
            ("quantity", _MONEY, lambda r, ln: ln.get("quantity")),
            ("rate", _MONEY, lambda r, ln: ln.get("rate")),
            ("foreignamount", _MONEY, lambda r, ln: _line_amount(r, ln)),
            ("taxamount", _MONEY, lambda r, ln: ln.get("tax1Amt") if ln else r.get("taxTotal")),
            ("debitforeignamount", _MONEY, lambda r, ln: ln.get("debit")),
            ("creditforeignamount", _MONEY, lambda r, ln: ln.get("credit")),
            (
                "memo",
                "VARCHAR",
                lambda r, ln: (ln.get("description") or ln.get("memo")) if ln else r.get("memo"),
            ),
        ),
    ),
    _named_table(
        "subsidiary",
        "subsidiary",
        ("currency", "BIGINT", _ref("currency")),
        ("country", "VARCHAR", _get("country")),
    ),
    _named_table("department", "department", ("subsidiary", "BIGINT", _ref("subsidiary"))),
    _named_table("classification", "classification"),
    _named_table("location", "location", ("subsidiary", "BIGINT", _ref("subsidiary"))),
    Table(
        "currency",
        ("currency",),
        _cols(
            _ID,
            ("name", "VARCHAR", _get("name")),
            ("symbol", "VARCHAR", _get("symbol")),
            ("isbasecurrency", "VARCHAR", _flag("isBaseCurrency")),
            ("exchangerate", _MONEY, _get("exchangeRate")),
            _EXTERNAL,
            _INACTIVE,
        ),
    ),
    Table(
        "item",
        ("serviceSaleItem", "otherChargeSaleItem", "salesTaxItem"),
        _cols(
            _ID,
            ("itemid", "VARCHAR", _get("itemId")),
            ("displayname", "VARCHAR", _get("displayName")),
            ("description", "VARCHAR", _get("description")),
            ("itemtype", "VARCHAR", _by_type(_ITEM_TYPE)),
            (
                "baseprice",
                _MONEY,
                lambda r: None if r.get("@type") == "salesTaxItem" else r.get("rate"),
            ),
            ("incomeaccount", "BIGINT", _ref("incomeAccount")),
            ("subsidiary", "BIGINT", _ref("subsidiary")),
            # a custom item field an administrator adds to tell services, expenses, fees and
            # usage apart (the adapter's ``item_kind_field``)
            ("custitem_q2c_kind", "VARCHAR", _get("custitem_q2c_kind")),
            _EXTERNAL,
            _INACTIVE,
        ),
    ),
    Table(
        "salestaxitem",
        ("salesTaxItem",),
        _cols(
            _ID,
            ("itemid", "VARCHAR", _get("itemId")),
            ("name", "VARCHAR", _get("itemId")),
            ("displayname", "VARCHAR", _get("displayName")),
            ("description", "VARCHAR", _get("description")),
            ("rate", _MONEY, _get("rate")),  # percent: 19 means 19 %
            ("country", "VARCHAR", _get("country")),
            ("subsidiary", "BIGINT", _ref("subsidiary")),
            ("taxaccount", "BIGINT", _ref("taxAccount")),
            ("exempt", "VARCHAR", _flag("exempt")),
            _EXTERNAL,
            _INACTIVE,
        ),
    ),
    Table(
        "account",
        ("account",),
        _cols(
            _ID,
            ("acctnumber", "VARCHAR", _get("acctNumber")),
            ("accountsearchdisplayname", "VARCHAR", _display_account),
            ("fullname", "VARCHAR", _get("acctName")),
            ("accttype", "VARCHAR", _get("acctType")),
            ("subsidiary", "BIGINT", _ref("subsidiary")),
            ("currency", "BIGINT", _ref("currency")),
            ("description", "VARCHAR", _get("description")),
            _EXTERNAL,
            _INACTIVE,
        ),
    ),
    Table(
        "currencyrate",
        ("currencyRate",),
        _cols(
            _ID,
            ("basecurrency", "BIGINT", _ref("baseCurrency")),
            ("transactioncurrency", "BIGINT", _ref("transactionCurrency")),
            ("exchangerate", _MONEY, _get("exchangeRate")),
            ("effectivedate", "DATE", _get("effectiveDate")),
            _EXTERNAL,
        ),
    ),
    _named_table("term", "term"),
)
