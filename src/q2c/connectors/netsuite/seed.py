"""Ledger reference data a sandbox account starts with, declared as data.

A consulting firm with a U.S. and a German subsidiary: a small chart of accounts (bank, AR,
unbilled receivables, tax payable, deferred revenue, four income accounts), legacy tax codes
per nexus country (U.S. services are not taxable; German VAT 19 % and 7 %; a 0 % exempt code
per country), sale items for services, expenses, fees and usage with their income accounts,
and exchange rates with effective dates. ``NetSuiteSandbox.seed_ledger_reference_data`` turns
them into records and returns their internal ids; tests and the demo pass their own lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

__all__ = [
    "DEFAULT_ACCOUNTS",
    "DEFAULT_ENTITIES",
    "DEFAULT_ITEMS",
    "DEFAULT_RATES",
    "DEFAULT_TAX_CODES",
    "GlAccount",
    "LedgerEntity",
    "SaleItem",
    "SeedRate",
    "SeedTaxCode",
]

ItemKind = Literal["service", "expense", "fee", "usage"]


@dataclass(frozen=True)
class LedgerEntity:
    """A subsidiary: the legal entity code doubles as its external id."""

    code: str
    name: str
    country: str
    currency: str


@dataclass(frozen=True)
class GlAccount:
    """``key`` names the account in the sandbox's reference ids (and is its external id)."""

    key: str
    number: str
    name: str
    type: str  # NetSuite accttype: AcctRec, Bank, DeferRevenue, Income, OthCurrAsset, ...


@dataclass(frozen=True)
class SeedTaxCode:
    code: str  # the tax code's name in NetSuite, unique in the account
    description: str
    percent: Decimal
    country: str  # nexus
    exempt: bool = False


@dataclass(frozen=True)
class SaleItem:
    code: str
    name: str
    kind: ItemKind
    income_account: str  # a GlAccount key

    @property
    def record_type(self) -> str:
        """Services and usage are service items; expenses and fees are other-charge items."""
        return "serviceSaleItem" if self.kind in ("service", "usage") else "otherChargeSaleItem"


@dataclass(frozen=True)
class SeedRate:
    """One unit of ``transaction`` is worth ``rate`` units of ``base`` from ``effective`` on."""

    base: str
    transaction: str
    rate: Decimal
    effective: date

    @property
    def key(self) -> str:
        return f"{self.transaction}/{self.base}@{self.effective.isoformat()}"


DEFAULT_ENTITIES = (
    LedgerEntity("US01", "Acme Consulting US Inc.", "US", "USD"),
    LedgerEntity("DE01", "Acme Consulting GmbH", "DE", "EUR"),
)

DEFAULT_ACCOUNTS = (
    GlAccount("CASH", "1000", "Operating Bank", "Bank"),
    GlAccount("AR", "1100", "Accounts Receivable", "AcctRec"),
    GlAccount("UNBILLED", "1150", "Unbilled Receivables", "OthCurrAsset"),
    GlAccount("TAX_PAYABLE", "2200", "Sales Tax and VAT Payable", "OthCurrLiab"),
    GlAccount("DEFERRED_REVENUE", "2400", "Deferred Revenue", "DeferRevenue"),
    GlAccount("REVENUE", "4000", "Services Revenue", "Income"),
    GlAccount("EXPENSE_RECOVERY", "4100", "Reimbursable Expense Revenue", "Income"),
    GlAccount("FEE_REVENUE", "4200", "Fee Revenue", "Income"),
    GlAccount("USAGE_REVENUE", "4300", "Usage Revenue", "Income"),
)

DEFAULT_TAX_CODES = (
    SeedTaxCode("US-SERVICES", "US professional services (not taxable)", Decimal(0), "US"),
    SeedTaxCode("US-EXEMPT", "US exempt customer", Decimal(0), "US", exempt=True),
    SeedTaxCode("DE-VAT-19", "German VAT standard rate 19%", Decimal(19), "DE"),
    SeedTaxCode("DE-VAT-7", "German VAT reduced rate 7%", Decimal(7), "DE"),
    SeedTaxCode("DE-EXEMPT", "EU reverse charge / exempt 0%", Decimal(0), "DE", exempt=True),
    SeedTaxCode("GB-VAT-20", "UK VAT standard rate 20%", Decimal(20), "GB"),
    SeedTaxCode("GB-EXEMPT", "UK zero-rated / exempt 0%", Decimal(0), "GB", exempt=True),
)

DEFAULT_ITEMS = (
    SaleItem("SERVICES", "Professional services", "service", "REVENUE"),
    SaleItem("EXPENSES", "Reimbursable expenses", "expense", "EXPENSE_RECOVERY"),
    SaleItem("FEES", "Fees", "fee", "FEE_REVENUE"),
    SaleItem("USAGE", "Usage", "usage", "USAGE_REVENUE"),
)

DEFAULT_RATES = (
    SeedRate("USD", "EUR", Decimal("1.0850"), date(2025, 1, 1)),
    SeedRate("USD", "EUR", Decimal("1.0920"), date(2025, 4, 1)),
    SeedRate("USD", "GBP", Decimal("1.2650"), date(2025, 1, 1)),
    SeedRate("USD", "GBP", Decimal("1.2580"), date(2025, 4, 1)),
    SeedRate("EUR", "USD", Decimal("0.9217"), date(2025, 1, 1)),
    SeedRate("EUR", "USD", Decimal("0.9158"), date(2025, 4, 1)),
    SeedRate("EUR", "GBP", Decimal("1.1659"), date(2025, 1, 1)),
    SeedRate("GBP", "USD", Decimal("0.7905"), date(2025, 1, 1)),
    SeedRate("GBP", "EUR", Decimal("0.8577"), date(2025, 1, 1)),
)
