"""Reference data from Tryton: ``ReferenceDataPort`` (currencies, rates, taxes, items).

* Currencies: ``currency.currency`` (ISO code -> id).
* Rates: Tryton keeps one rate per currency and date (``currency.currency.rate``), all relative
  to a common base; the company currency usually has rate 1. q2c's ``ExchangeRate`` is "units of
  quote per one unit of base" with base = the company currency: rate(quote) / rate(base), each
  the latest on or before the day asked.
* Tax codes: ``account.tax`` of type percentage without parent; ``name`` is the code q2c maps,
  ``description`` its name, ``rate`` the fraction (0.10 = 10 %), jurisdiction the company's
  country (Tryton taxes carry none).
* Items: ``product.product`` with a code; unit from the default unit's symbol (h -> hour);
  kind "service" when sold by time, "fee" otherwise (Tryton has no item kinds); income
  account = the revenue account code of the product's accounting category.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from q2c.canonical.models import ExchangeRate, Item, TaxCode
from q2c.canonical.money import MINOR_UNITS
from q2c.connectors.tryton.base import TrytonBase

__all__ = ["TrytonReferenceData"]

UNITS = {"h": "hour", "d": "day", "u": "unit", "min": "minute", "w": "week"}
TIME_UNITS = {"hour", "day", "minute", "week"}


class TrytonReferenceData(TrytonBase):
    """Currencies, exchange rates, tax codes and items as Tryton holds them."""

    def currencies(self) -> dict[str, str]:
        rows = self.rpc.search_read("currency.currency", [], ["code"], order=[("code", "ASC")])
        return {str(row["code"]): str(row["id"]) for row in rows}

    def exchange_rates(self, on: dt.date) -> list[ExchangeRate]:
        base = self.company_currency()
        latest: dict[str, tuple[dt.date, Decimal]] = {}
        for row in self.rpc.iter_search_read(
            "currency.currency.rate",
            [["date", "<=", on]],
            ["currency.code", "date", "rate"],
            order=(("date", "DESC"), ("id", "DESC")),
        ):
            code = str(row["currency."]["code"])
            if code not in latest and row["rate"]:
                latest[code] = (row["date"], Decimal(row["rate"]))
        if base not in latest:
            return []  # no rate for the company currency: nothing can be expressed against it
        base_date, base_rate = latest[base]
        rates = []
        for code, (when, rate) in sorted(latest.items()):
            if code == base or code not in MINOR_UNITS:
                continue
            rates.append(
                ExchangeRate(
                    base=base,
                    quote=code,
                    rate=(rate / base_rate).normalize(),
                    effective_date=max(when, base_date),
                    source="tryton",
                )
            )
        return rates

    def tax_codes(self) -> list[TaxCode]:
        jurisdiction = self._company_country()
        rows = self.rpc.iter_search_read(
            "account.tax",
            [["company", "=", self.company_id], ["parent", "=", None], ["type", "=", "percentage"]],
            ["name", "description", "rate"],
        )
        return [
            TaxCode(
                code=str(row["name"]),
                name=str(row["description"] or row["name"]),
                rate=Decimal(row["rate"] or 0),
                jurisdiction=jurisdiction,
                legal_entity=self.legal_entity,
            )
            for row in rows
        ]

    def items(self) -> list[Item]:
        rows = self.rpc.iter_search_read(
            "product.product",
            [["code", "!=", None]],
            [
                "code",
                "name",
                "default_uom.symbol",
                "template.account_category.account_revenue.code",
            ],
        )
        items = []
        for row in rows:
            symbol = str((row.get("default_uom.") or {}).get("symbol") or "")
            unit = UNITS.get(symbol, symbol or "unit")
            category = (row.get("template.") or {}).get("account_category.") or {}
            revenue = category.get("account_revenue.") or {}
            items.append(
                Item(
                    code=str(row["code"]),
                    name=str(row["name"]),
                    kind="service" if unit in TIME_UNITS else "fee",
                    unit=unit,
                    income_account=revenue.get("code"),
                )
            )
        return items

    def _company_country(self) -> str:
        (row,) = self.rpc.read("company.company", [self.company_id], ["party.addresses"])
        addresses = (row.get("party.") or {}).get("addresses") or []
        if not addresses:
            return ""
        (address,) = self.rpc.read("party.address", [addresses[0]], ["country.code"])
        return str((address.get("country.") or {}).get("code") or "")
