"""SuiteQL for the emulator: an in-memory DuckDB mirror of the records, queried with real SQL.

NetSuite answers SuiteQL from its analytics data source, whose tables and lowercase column
names differ from the REST record fields (``customer.companyname``, ``transaction.type =
'SalesOrd'``, booleans as ``'T'``/``'F'``). Every write to the emulator's records is mirrored
into such tables, so a query with WHERE, JOIN, ORDER BY, LIKE or UPPER runs as real SQL rather
than through a hand-written interpreter. DuckDB keeps amounts exact (DECIMAL, not REAL).

Only one SELECT statement is accepted: DuckDB's own parser classifies the statement, the
connection has file access disabled and its configuration locked, and a slow query is
interrupted. Results come back like NetSuite's: every value a string, nulls left out, dates
in the default ``M/D/YYYY`` format.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb

from q2c.connectors.netsuite.wire import NetSuiteApiError, plain_decimal

__all__ = ["TABLES", "SuiteQLMirror"]

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

    With ``sublist`` set, the table has one row per sublist line (plus a main-line row), like
    ``transactionline``; line columns read from ``(record, line)``.
    """

    name: str
    record_types: tuple[str, ...]
    columns: tuple[Column, ...]
    sublist: str | None = None
    line_columns: tuple[tuple[str, str, Callable[[Record, Record], Any]], ...] = ()


def _get(name: str) -> Source:
    return lambda r: r.get(name)


def _ref(name: str) -> Source:
    return lambda r: int(r[name]["id"]) if isinstance(r.get(name), Mapping) else None


def _flag(name: str) -> Source:
    return lambda r: "T" if r.get(name) else "F"


def _const(value: Any) -> Source:
    return lambda r: value


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
        ("salesOrder",),
        _cols(
            _ID,
            ("tranid", "VARCHAR", _get("tranId")),
            ("type", "VARCHAR", _const("SalesOrd")),
            ("recordtype", "VARCHAR", _const("salesorder")),
            ("entity", "BIGINT", _ref("entity")),
            _EXTERNAL,
            ("trandate", "DATE", _get("tranDate")),
            ("currency", "BIGINT", _ref("currency")),
            ("memo", "VARCHAR", _get("memo")),
            ("otherrefnum", "VARCHAR", _get("otherRefNum")),
            ("foreigntotal", _MONEY, _get("total")),
            ("startdate", "DATE", _get("startDate")),
            ("enddate", "DATE", _get("endDate")),
            ("createddate", "TIMESTAMP", _stamp("dateCreated")),
            _MODIFIED,
        ),
    ),
    Table(
        "transactionline",
        ("salesOrder",),
        (),
        sublist="item",
        line_columns=(
            ("transaction", "BIGINT", lambda r, ln: int(r["id"])),
            ("id", "BIGINT", lambda r, ln: ln.get("line", 0)),
            ("linesequencenumber", "BIGINT", lambda r, ln: ln.get("line", 0)),
            ("mainline", "VARCHAR", lambda r, ln: "F" if ln else "T"),
            ("entity", "BIGINT", lambda r, ln: _ref("entity")(r)),
            ("subsidiary", "BIGINT", lambda r, ln: _ref("subsidiary")(r)),
            ("department", "BIGINT", lambda r, ln: _ref("department")(ln or r)),
            ("class", "BIGINT", lambda r, ln: _ref("class")(ln or r)),
            ("location", "BIGINT", lambda r, ln: _ref("location")(ln or r)),
            ("item", "BIGINT", lambda r, ln: _ref("item")(ln)),
            ("quantity", _MONEY, lambda r, ln: ln.get("quantity")),
            ("rate", _MONEY, lambda r, ln: ln.get("rate")),
            ("foreignamount", _MONEY, lambda r, ln: ln.get("amount") if ln else r.get("total")),
            ("memo", "VARCHAR", lambda r, ln: ln.get("description") if ln else r.get("memo")),
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
        ("serviceSaleItem",),
        _cols(
            _ID,
            ("itemid", "VARCHAR", _get("itemId")),
            ("displayname", "VARCHAR", _get("displayName")),
            ("description", "VARCHAR", _get("description")),
            ("itemtype", "VARCHAR", _const("Service")),
            ("baseprice", _MONEY, _get("rate")),
            _EXTERNAL,
            _INACTIVE,
        ),
    ),
    _named_table("term", "term"),
)

_QUERY_SECONDS = 5.0
_MACROS = ("CREATE MACRO nvl(a, b) AS coalesce(a, b)",)


def _invalid_query(reason: str) -> NetSuiteApiError:
    return NetSuiteApiError(
        400,
        "INVALID_PARAMETER",
        "Invalid search query. Detailed unprocessed description follows. "
        f"Search error occurred: {reason}",
        path="q",
    )


class SuiteQLMirror:
    """The analytics copy of the records. Not thread-safe on its own: the state locks it."""

    def __init__(self) -> None:
        self._db = duckdb.connect(":memory:")
        for table in TABLES:
            columns = table.line_columns or [(c.name, c.sql_type, c.source) for c in table.columns]
            ddl = ", ".join(f'"{name}" {sql_type}' for name, sql_type, _ in columns)
            self._db.execute(f'CREATE TABLE "{table.name}" ({ddl})')
        for macro in _MACROS:
            self._db.execute(macro)
        self._db.execute("SET enable_external_access = false")
        self._db.execute("SET lock_configuration = true")

    # --- writes (from the record service) ---------------------------------------------------

    def put(self, record_type: str, record: Record) -> None:
        self.remove(record_type, str(record["id"]))
        for table in self._tables_of(record_type):
            rows = self._rows(table, record)
            if not rows:
                continue
            marks = ", ".join("?" for _ in rows[0])
            self._db.executemany(f'INSERT INTO "{table.name}" VALUES ({marks})', rows)

    def remove(self, record_type: str, record_id: str) -> None:
        for table in self._tables_of(record_type):
            key = "transaction" if table.sublist else "id"
            self._db.execute(f'DELETE FROM "{table.name}" WHERE "{key}" = ?', [int(record_id)])

    def clear(self) -> None:
        for table in TABLES:
            self._db.execute(f'DELETE FROM "{table.name}"')

    @staticmethod
    def _tables_of(record_type: str) -> Iterable[Table]:
        return (t for t in TABLES if record_type in t.record_types)

    @staticmethod
    def _rows(table: Table, record: Record) -> list[list[Any]]:
        if table.sublist is None:
            return [[column.source(record) for column in table.columns]]
        lines: list[Record] = [{}, *(record.get(table.sublist) or [])]
        return [[source(record, line) for _, _, source in table.line_columns] for line in lines]

    # --- reads (SuiteQL) ----------------------------------------------------------------------

    def run(self, query: str) -> list[dict[str, str]]:
        """Run one validated SELECT; rows as NetSuite returns them (strings, nulls omitted)."""
        self._check(query)
        timer = threading.Timer(_QUERY_SECONDS, self._db.interrupt)
        timer.start()
        try:
            cursor = self._db.execute(query)
            names = [d[0].lower() for d in cursor.description or []]
            rows = cursor.fetchall()
        except duckdb.Error as exc:
            raise _invalid_query(str(exc).splitlines()[0]) from None
        finally:
            timer.cancel()
        return [
            {
                name: _format(value)
                for name, value in zip(names, row, strict=True)
                if value is not None
            }
            for row in rows
        ]

    @staticmethod
    def _check(query: Any) -> None:
        if not isinstance(query, str) or not query.strip():
            raise _invalid_query("The query is empty.")
        try:
            statements = duckdb.extract_statements(query)
        except duckdb.Error as exc:
            raise _invalid_query(str(exc).splitlines()[0]) from None
        if len(statements) != 1:
            raise _invalid_query("Exactly one SELECT statement is allowed.")
        if statements[0].type != duckdb.StatementType.SELECT:
            raise _invalid_query("Only SELECT statements can be run through SuiteQL.")


def _format(value: Any) -> str:
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, datetime | date):
        return f"{value.month}/{value.day}/{value.year}"
    if isinstance(value, bool):
        return "T" if value else "F"
    return str(value)
