"""Reference data from NetSuite as q2c's canonical objects: the SuiteQL it takes and the rows
it comes back as.

Pure: queries are text, rows are SuiteQL's (every value a string, nulls left out, dates as
``M/D/YYYY``). Tables and columns as NetSuite names them:

* ``currency`` (``symbol`` is the ISO code);
* ``currencyrate`` (``basecurrency``, ``transactioncurrency``, ``exchangerate``,
  ``effectivedate``): one unit of the transaction currency is worth ``exchangerate`` units
  of the base currency, so a row is the canonical rate base = transaction currency, quote =
  base currency. The rate on a day is the row with the latest effective date on or before it;
* ``salestaxitem`` (legacy per-line tax codes, the model this connector posts with):
  ``itemid``, ``description``, ``rate`` as a percent (``19`` or ``19.00%``), ``country`` the
  nexus; canonical ``TaxCode.rate`` is a fraction (0.19);
* ``item`` (``itemid``, ``displayname``, ``itemtype``, ``incomeaccount``), sale items only.
  What kind of item it is (service, expense, fee, usage) comes from the custom item field
  ``custitem_q2c_kind`` where the account has it, else from the item type (Service ->
  service, OthCharge -> fee); the query reads ``*`` so an account without the field works.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Literal, cast

from q2c.canonical.models import ExchangeRate, Item, TaxCode
from q2c.errors import FatalError

__all__ = [
    "CURRENCIES_QUERY",
    "ITEMS_QUERY",
    "ITEM_KIND_FIELD",
    "TAX_CODES_QUERY",
    "currencies_from_rows",
    "exchange_rates_query",
    "item_from_row",
    "latest_rates",
    "suiteql_date",
    "tax_code_from_row",
]

SYSTEM = "netsuite"
ITEM_KIND_FIELD = "custitem_q2c_kind"

CURRENCIES_QUERY = "SELECT c.id, c.symbol FROM currency c WHERE c.isinactive = 'F' ORDER BY c.id"
TAX_CODES_QUERY = (
    "SELECT s.id, s.itemid, s.description, s.rate, s.country FROM salestaxitem s "
    "WHERE s.isinactive = 'F' ORDER BY s.id"
)
ITEMS_QUERY = (
    "SELECT * FROM item i WHERE i.isinactive = 'F' "
    "AND i.itemtype IN ('Service', 'OthCharge', 'NonInvtPart') ORDER BY i.id"
)

ItemKind = Literal["service", "expense", "fee", "usage"]
_KINDS: frozenset[str] = frozenset({"service", "expense", "fee", "usage"})
_KIND_BY_TYPE: dict[str, ItemKind] = {"Service": "service", "OthCharge": "fee"}
_UNIT_BY_KIND: dict[str, str] = {"service": "hour", "usage": "unit"}


def exchange_rates_query(on: date) -> str:
    """Every rate effective on or before ``on``, oldest first, with ISO codes joined in."""
    return (
        "SELECT r.id, b.symbol AS basesymbol, t.symbol AS transactionsymbol, "
        "r.exchangerate, r.effectivedate FROM currencyrate r "
        "JOIN currency b ON b.id = r.basecurrency "
        "JOIN currency t ON t.id = r.transactioncurrency "
        f"WHERE r.effectivedate <= TO_DATE('{on.isoformat()}', 'YYYY-MM-DD') "
        "ORDER BY r.effectivedate, r.id"
    )


def suiteql_date(value: str) -> date:
    """A SuiteQL date (``1/31/2025``, NetSuite's default format) or an ISO date."""
    if "/" in value:
        month, day, year = (int(part) for part in value.split("/"))
        return date(year, month, day)
    return date.fromisoformat(value[:10])


def _number(row: Mapping[str, str], column: str, what: str) -> Decimal:
    raw = row.get(column, "").strip().rstrip("%").strip()
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise FatalError(
            f"NetSuite returned a {what} that is not a number",
            detail=f"{column}={row.get(column)!r} in row {dict(row)}",
            system=SYSTEM,
        ) from None


def currencies_from_rows(rows: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """ISO code -> internal id; the first currency record wins if a code repeats."""
    found: dict[str, str] = {}
    for row in rows:
        symbol = row.get("symbol")
        if symbol:
            found.setdefault(symbol, row["id"])
    return found


def latest_rates(rows: Iterable[Mapping[str, str]]) -> list[ExchangeRate]:
    """From rows oldest first: the rate in force per currency pair (the latest row wins)."""
    latest: dict[tuple[str, str], ExchangeRate] = {}
    for row in rows:
        rate = ExchangeRate(
            base=row["transactionsymbol"],
            quote=row["basesymbol"],
            rate=_number(row, "exchangerate", "exchange rate"),
            effective_date=suiteql_date(row["effectivedate"]),
            source=SYSTEM,
        )
        latest[(rate.base, rate.quote)] = rate
    return sorted(latest.values(), key=lambda r: (r.base, r.quote))


def tax_code_from_row(row: Mapping[str, str]) -> TaxCode:
    code = row.get("itemid") or row["id"]
    return TaxCode(
        code=code,
        name=row.get("description") or code,
        rate=_number(row, "rate", "tax rate") / 100,
        jurisdiction=row.get("country", ""),
    )


def item_from_row(row: Mapping[str, str]) -> Item:
    declared = (row.get(ITEM_KIND_FIELD) or "").strip().lower()
    kind: ItemKind = (
        cast(ItemKind, declared)
        if declared in _KINDS
        else _KIND_BY_TYPE.get(row.get("itemtype", ""), "service")
    )
    code = row.get("itemid") or row["id"]
    return Item(
        code=code,
        name=row.get("displayname") or code,
        kind=kind,
        unit=_UNIT_BY_KIND.get(kind, "each"),
        income_account=row.get("incomeaccount"),
    )
