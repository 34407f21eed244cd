"""Set up a freshly activated Tryton database as a small services company, over JSON-RPC.

What an administrator does in the Tryton client after ``trytond-admin`` activated the modules,
done here through the same RPC calls (models, buttons, wizards), so the cached database is
exactly what a real installation looks like:

* currencies USD (the company's), EUR and GBP with rates, a few countries;
* the company "Q2C Consulting Inc." (USD, an address in the US), the admin user switched to it,
  an employee for the admin (timesheets need one);
* the chart of accounts from Tryton's "Universal Chart of Accounts" (``account_template_root_en``,
  the old minimal chart) through the ``account.create_chart`` wizard; that wizard proposes no
  default receivable/payable because the chart has several candidates, so they are set
  explicitly (1.2.1 / 2.1.1, and 4.1.2 / 5.1.3 for product categories) - TRYTON.md gotcha 5;
* tax rounding per line (q2c's canonical default) in the accounting configuration;
* fiscal years for last, this and next calendar year with monthly periods and strict
  sequences for moves and invoices;
* taxes ``US-SALES-10`` (10 %) and ``US-EXEMPT`` (0 %);
* a service product category with revenue/expense accounts and products ``CONSULTING-HOUR``,
  ``PM-HOUR`` (hours) and ``TRAVEL`` (units);
* a "Wire transfer" invoice payment method on the Cash journal (account 1.1.1).

The ids are returned as ``TrytonSetup`` (JSON-serialisable, cached next to the database).
``PROVISION_VERSION`` is part of the database cache key: bump it when this script changes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from q2c.connectors.tryton.rpc import TrytonRpc

__all__ = [
    "COMPANY_NAME",
    "PROVISION_VERSION",
    "TrytonSetup",
    "fiscal_years_for",
    "provision",
]

PROVISION_VERSION = 1
COMPANY_NAME = "Q2C Consulting Inc."
CHART_TEMPLATE = ("account", "account_template_root_en")
ACCOUNT_CODES = {
    "receivable": "1.2.1",
    "payable": "2.1.1",
    "revenue": "4.1.2",
    "expense": "5.1.3",
    "cash": "1.1.1",
    "tax": "2.2.3",
    "equity": "3.1.1",
}
CURRENCIES = {
    # code: (name, symbol, numeric code, digits, rate against the company currency USD)
    "USD": ("U.S. Dollar", "$", "840", 2, Decimal(1)),
    "EUR": ("Euro", "€", "978", 2, Decimal("0.920000")),
    "GBP": ("Pound Sterling", "£", "826", 2, Decimal("0.790000")),
}
COUNTRIES = {
    "US": "United States",
    "DE": "Germany",
    "FR": "France",
    "GB": "United Kingdom",
    "CA": "Canada",
    "NL": "Netherlands",
}
TAXES = {
    # name (the code q2c maps to): (description, rate)
    "US-SALES-10": ("Sales tax 10%", Decimal("0.10")),
    "US-EXEMPT": ("Services exempt", Decimal(0)),
}
PRODUCTS = {
    # code: (name, unit xml id, list price)
    "CONSULTING-HOUR": ("Consulting hour", "uom_hour", Decimal("150.0000")),
    "PM-HOUR": ("Project management hour", "uom_hour", Decimal("120.0000")),
    "TRAVEL": ("Travel expenses", "uom_unit", Decimal("0.0000")),
}


@dataclass(frozen=True, slots=True)
class TrytonSetup:
    """Ids of what ``provision`` created; the same in every copy of the cached database."""

    company: int
    company_party: int
    employee: int
    currencies: dict[str, int] = field(default_factory=dict)
    countries: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, int] = field(default_factory=dict)
    journals: dict[str, int] = field(default_factory=dict)
    taxes: dict[str, int] = field(default_factory=dict)
    products: dict[str, int] = field(default_factory=dict)
    payment_method: int = 0
    fiscal_years: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrytonSetup:
        return cls(**data)


def fiscal_years_for(today: dt.date) -> list[int]:
    """Calendar years set up: last, this and next (invoices dated around today post)."""
    return [today.year - 1, today.year, today.year + 1]


def provision(rpc: TrytonRpc, *, today: dt.date | None = None) -> TrytonSetup:
    """Run the whole setup on a database that has the modules activated and nothing else."""
    today = today or dt.date.today()
    years = fiscal_years_for(today)
    currencies = _currencies(rpc, dt.date(years[0], 1, 1))
    countries = _countries(rpc)
    company, company_party = _company(rpc, currencies["USD"], countries["US"])
    rpc.refresh_context()  # the user's company is in the context from now on
    employee = _employee(rpc, company)
    accounts = _chart(rpc, company)
    _accounting_configuration(rpc)
    fiscal_years = {str(year): _fiscal_year(rpc, company, year) for year in years}
    journals = {
        "revenue": rpc.get_id("account", "journal_revenue"),
        "cash": rpc.get_id("account", "journal_cash"),
        "miscellaneous": rpc.get_id("account", "journal_miscellaneous"),
    }
    taxes = _taxes(rpc, company, accounts["tax"])
    products = _products(rpc, accounts, taxes["US-SALES-10"])
    (payment_method,) = rpc.create(
        "account.invoice.payment.method",
        [
            {
                "name": "Wire transfer",
                "company": company,
                "journal": journals["cash"],
                "debit_account": accounts["cash"],
                "credit_account": accounts["cash"],
            }
        ],
    )
    return TrytonSetup(
        company=company,
        company_party=company_party,
        employee=employee,
        currencies=currencies,
        countries=countries,
        accounts=accounts,
        journals=journals,
        taxes=taxes,
        products=products,
        payment_method=payment_method,
        fiscal_years=fiscal_years,
    )


def _currencies(rpc: TrytonRpc, rate_date: dt.date) -> dict[str, int]:
    ids: dict[str, int] = {}
    for code, (name, symbol, numeric, digits, rate) in CURRENCIES.items():
        (currency,) = rpc.create(
            "currency.currency",
            [
                {
                    "name": name,
                    "code": code,
                    "numeric_code": numeric,
                    "symbol": symbol,
                    "digits": digits,
                    "rounding": Decimal(1).scaleb(-digits),
                    "rates": [["create", [{"date": rate_date, "rate": rate}]]],
                }
            ],
        )
        ids[code] = currency
    return ids


def _countries(rpc: TrytonRpc) -> dict[str, int]:
    values = [{"name": name, "code": code} for code, name in COUNTRIES.items()]
    return dict(zip(COUNTRIES, rpc.create("country.country", values), strict=True))


def _company(rpc: TrytonRpc, currency: int, country: int) -> tuple[int, int]:
    address = {"street": "1 Market Street", "city": "San Francisco", "postal_code": "94105"}
    (party,) = rpc.create(
        "party.party",
        [
            {
                "name": COMPANY_NAME,
                "addresses": [["create", [{**address, "country": country}]]],
            }
        ],
    )
    (company,) = rpc.create(
        "company.company", [{"party": party, "currency": currency, "timezone": "UTC"}]
    )
    user_id = rpc.auth.user_id
    assert user_id is not None  # signed in by the calls above
    rpc.write("res.user", [user_id], {"companies": [["add", [company]]], "company": company})
    return company, party


def _employee(rpc: TrytonRpc, company: int) -> int:
    (party,) = rpc.create("party.party", [{"name": "Ada Admin"}])
    (employee,) = rpc.create("company.employee", [{"party": party, "company": company}])
    user_id = rpc.auth.user_id
    assert user_id is not None
    rpc.write("res.user", [user_id], {"employees": [["add", [employee]]], "employee": employee})
    rpc.refresh_context()
    return employee


def _chart(rpc: TrytonRpc, company: int) -> dict[str, int]:
    template = rpc.get_id(*CHART_TEMPLATE)
    with rpc.wizard("account.create_chart") as wizard:
        wizard.execute(wizard.start)  # the "start" view: an explanation, then OK
        wizard.execute("account")
        wizard.fill("account", account_template=template, company=company)
        wizard.execute("create_account")  # -> the properties view
        accounts = _accounts_by_code(rpc, company)
        wizard.fill(
            "properties",
            company=company,
            account_receivable=accounts["receivable"],
            account_payable=accounts["payable"],
            category_account_revenue=accounts["revenue"],
            category_account_expense=accounts["expense"],
        )
        wizard.execute("create_properties")
    return accounts


def _accounts_by_code(rpc: TrytonRpc, company: int) -> dict[str, int]:
    rows = rpc.search_read(
        "account.account",
        [["company", "=", company], ["code", "in", list(ACCOUNT_CODES.values())]],
        ["code"],
    )
    by_code = {row["code"]: int(row["id"]) for row in rows}
    return {name: by_code[code] for name, code in ACCOUNT_CODES.items()}


def _accounting_configuration(rpc: TrytonRpc) -> None:
    # canonical invoices round tax per line by default; Tryton's default is per document
    rpc.write("account.configuration", [1], {"tax_rounding": "line"})


def _fiscal_year(rpc: TrytonRpc, company: int, year: int) -> int:
    move_type = rpc.get_id("account", "sequence_type_account_move")
    invoice_type = rpc.get_id("account_invoice", "sequence_type_account_invoice")
    move_seq, invoice_seq = rpc.create(
        "ir.sequence.strict",
        [
            {"name": f"Moves {year}", "sequence_type": move_type, "company": company},
            {
                "name": f"Invoices {year}",
                "sequence_type": invoice_type,
                "company": company,
                "prefix": f"INV/{year}/",
                "padding": 5,
            },
        ],
    )
    (fiscal_year,) = rpc.create(
        "account.fiscalyear",
        [
            {
                "name": str(year),
                "company": company,
                "start_date": dt.date(year, 1, 1),
                "end_date": dt.date(year, 12, 31),
                "move_sequence": move_seq,
                "invoice_sequences": [
                    [
                        "create",
                        [
                            {
                                "company": company,
                                "out_invoice_sequence": invoice_seq,
                                "out_credit_note_sequence": invoice_seq,
                                "in_invoice_sequence": invoice_seq,
                                "in_credit_note_sequence": invoice_seq,
                            }
                        ],
                    ]
                ],
            }
        ],
    )
    rpc.model("account.fiscalyear", "create_period", [fiscal_year])
    return fiscal_year


def _taxes(rpc: TrytonRpc, company: int, tax_account: int) -> dict[str, int]:
    values = [
        {
            "name": name,
            "description": description,
            "type": "percentage",
            "rate": rate,
            "company": company,
            "invoice_account": tax_account,
            "credit_note_account": tax_account,
        }
        for name, (description, rate) in TAXES.items()
    ]
    return dict(zip(TAXES, rpc.create("account.tax", values), strict=True))


def _products(rpc: TrytonRpc, accounts: dict[str, int], default_tax: int) -> dict[str, int]:
    (category,) = rpc.create(
        "product.category",
        [
            {
                "name": "Professional services",
                "accounting": True,
                "account_revenue": accounts["revenue"],
                "account_expense": accounts["expense"],
                "customer_taxes": [["add", [default_tax]]],
            }
        ],
    )
    ids: dict[str, int] = {}
    for code, (name, unit_xml_id, price) in PRODUCTS.items():
        unit = rpc.get_id("product", unit_xml_id)
        (template,) = rpc.create(
            "product.template",
            [
                {
                    "name": name,
                    "type": "service",
                    "default_uom": unit,
                    "list_price": price,
                    "account_category": category,
                    "salable": True,
                    "sale_uom": unit,
                    "products": [["create", [{"suffix_code": code}]]],
                }
            ],
        )
        (product,) = rpc.search("product.product", [["template", "=", template]])
        ids[code] = product
    return ids
