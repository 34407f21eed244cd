"""SuiteQL for the emulator: an in-memory DuckDB mirror of the records, queried with real SQL.

NetSuite answers SuiteQL from its analytics data source, whose tables and lowercase column
names differ from the REST record fields (``customer.companyname``, ``transaction.type =
'SalesOrd'``, booleans as ``'T'``/``'F'``). Every write to the emulator's records is mirrored
into such tables (``suiteql_tables.py`` declares them), so a query with WHERE, JOIN, ORDER BY,
LIKE or UPPER runs as real SQL rather than through a hand-written interpreter. DuckDB keeps
amounts exact (DECIMAL, not REAL). ``TO_DATE('2025-01-31', 'YYYY-MM-DD')`` and ``NVL`` work as
in NetSuite.

Only one SELECT statement is accepted: DuckDB's own parser classifies the statement, the
connection has file access disabled and its configuration locked, and a slow query is
interrupted. Results come back like NetSuite's: every value a string, nulls left out, dates
in the default ``M/D/YYYY`` format.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb

from q2c.connectors.netsuite.suiteql_tables import TABLES, Table
from q2c.connectors.netsuite.wire import NetSuiteApiError, plain_decimal

__all__ = ["TABLES", "SuiteQLMirror"]

Record = Mapping[str, Any]

_QUERY_SECONDS = 5.0
_BATCH = 200  # rows (or ids) per statement when pending writes are applied
_MACROS = (
    "CREATE MACRO nvl(a, b) AS coalesce(a, b)",
    # Oracle's TO_DATE, for the date formats SuiteQL queries commonly use
    "CREATE MACRO to_date(a, b) AS CAST(CASE upper(b) "
    "WHEN 'YYYY-MM-DD' THEN strptime(a, '%Y-%m-%d') "
    "WHEN 'MM/DD/YYYY' THEN strptime(a, '%m/%d/%Y') "
    "WHEN 'DD.MM.YYYY' THEN strptime(a, '%d.%m.%Y') END AS DATE)",
)


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
        # (record type, internal id) -> rows per table, or None for "removed"
        self._pending: dict[tuple[str, int], dict[str, list[list[Any]]] | None] = {}

    # --- writes (from the record service) ---------------------------------------------------
    #
    # A write only computes the record's rows (plain Python, proportional to the record) and
    # keeps them pending; the next query applies everything pending in a few statements per
    # table. DuckDB spends milliseconds on every statement, so mirroring each write at once
    # would make posting hundreds of invoices and payments slow, and most of them are never
    # queried between two writes.

    def put(self, record_type: str, record: Record) -> None:
        typed = {**record, "@type": record_type}
        rows = {table.name: self._rows(table, typed) for table in self._tables_of(record_type)}
        self._pending[(record_type, int(record["id"]))] = rows

    def remove(self, record_type: str, record_id: str) -> None:
        self._pending[(record_type, int(record_id))] = None

    def clear(self) -> None:
        self._pending.clear()
        for table in TABLES:
            self._db.execute(f'DELETE FROM "{table.name}"')

    def _flush(self) -> None:
        if not self._pending:
            return
        stale: dict[str, list[int]] = {}
        fresh: dict[str, list[list[Any]]] = {}
        for (record_type, record_id), rows in self._pending.items():
            for table in self._tables_of(record_type):
                stale.setdefault(table.name, []).append(record_id)
                fresh.setdefault(table.name, []).extend((rows or {}).get(table.name, []))
        self._pending.clear()
        for table in TABLES:
            ids = stale.get(table.name)
            if not ids:
                continue
            key = "transaction" if table.sublists is not None else "id"
            for chunk in _chunks(ids, _BATCH):
                marks = ", ".join("?" for _ in chunk)
                self._db.execute(f'DELETE FROM "{table.name}" WHERE "{key}" IN ({marks})', chunk)
            for batch in _chunks(fresh.get(table.name, []), _BATCH):
                row_marks = "(" + ", ".join("?" for _ in batch[0]) + ")"
                values = ", ".join(row_marks for _ in batch)
                flat = [value for row in batch for value in row]
                self._db.execute(f'INSERT INTO "{table.name}" VALUES {values}', flat)

    @staticmethod
    def _tables_of(record_type: str) -> Iterable[Table]:
        return (t for t in TABLES if record_type in t.record_types)

    @staticmethod
    def _rows(table: Table, record: Record) -> list[list[Any]]:
        if table.sublists is None:
            return [[column.source(record) for column in table.columns]]
        sublist = table.sublists.get(record["@type"])
        lines: list[Record] = [{}, *((record.get(sublist) or []) if sublist else [])]
        return [[source(record, line) for _, _, source in table.line_columns] for line in lines]

    # --- reads (SuiteQL) ----------------------------------------------------------------------

    def run(self, query: str) -> list[dict[str, str]]:
        """Run one validated SELECT; rows as NetSuite returns them (strings, nulls omitted)."""
        self._check(query)
        self._flush()
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


def _chunks(values: list[Any], size: int) -> Iterable[list[Any]]:
    return (values[i : i + size] for i in range(0, len(values), size))


def _format(value: Any) -> str:
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, datetime | date):
        return f"{value.month}/{value.day}/{value.year}"
    if isinstance(value, bool):
        return "T" if value else "F"
    return str(value)
