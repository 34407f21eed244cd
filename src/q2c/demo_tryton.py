"""The Tryton side of ``q2c demo --erp tryton``: a real ERP nobody here wrote in the loop.

A managed ``trytond`` is started from the cached initialised database (``TrytonServer``), the
demo's service items are added as Tryton products (a clerk's set-up, over JSON-RPC), and the
figures of the summary are read back from Tryton's own records: posted customer invoices,
what is still to pay on them, and the credits of q2c's revenue journal entries.

One legal entity: the cached database holds one company (Q2C Consulting Inc., USD) with its
chart of accounts, fiscal years and taxes. Tryton is multi-company, but a second company needs
its own chart, fiscal years, taxes and product accounts (a second provisioning), and a German
entity VAT codes Tryton's cached set-up does not have; so the demo restricts itself to US01.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import httpx

from q2c.connectors.tryton.rpc import TrytonRpc
from q2c.connectors.tryton.server import TrytonServer

__all__ = [
    "DEFERRED_REVENUE_ACCOUNT",
    "TRYTON_ENTITY",
    "add_service_items",
    "start_tryton",
    "tryton_mappings",
    "tryton_tax_id",
    "tryton_totals",
]

TRYTON_ENTITY = "US01"
DEFERRED_REVENUE_ACCOUNT = "2.2.2"  # "Deferred Income (Unearned Revenue)" in Tryton's chart
TIME_ITEMS = frozenset({"PM", "CONSULT-SR", "CONSULT-JR", "RETAINER-OVERAGE"})
REVENUE_MEMO = "Revenue %"  # revenue_recognition's journal memo starts so


def tryton_tax_id(demo_tax_id: str) -> str:
    """A US employer id Tryton accepts for the scenario's made-up one ("US1003" ->
    "12-0001003"): Tryton checks tax identifiers with python-stdnum, the emulators do not."""
    digits = "".join(ch for ch in demo_tax_id if ch.isdigit())
    return f"12-{int(digits or 0) % 10_000_000:07d}"


def start_tryton() -> TrytonServer:
    """A ``trytond`` on a free loopback port, from the cached database (built on first use)."""
    return TrytonServer().start()


def add_service_items(rpc: TrytonRpc, codes: Iterable[str]) -> dict[str, int]:
    """One service product per q2c item (hours for time, units otherwise), in the category the
    provisioning set up with revenue account and default tax; code -> product id."""
    (category,) = rpc.search("product.category", [["name", "=", "Professional services"]])
    units = {"hour": rpc.get_id("product", "uom_hour"), "unit": rpc.get_id("product", "uom_unit")}
    products: dict[str, int] = {}
    for code in codes:
        unit = units["hour" if code in TIME_ITEMS else "unit"]
        (template,) = rpc.create(
            "product.template",
            [
                {
                    "name": code.replace("-", " ").title(),
                    "type": "service",
                    "default_uom": unit,
                    "list_price": Decimal(0),
                    "account_category": category,
                    "salable": True,
                    "sale_uom": unit,
                    "products": [["create", [{"suffix_code": code}]]],
                }
            ],
        )
        (product,) = rpc.search("product.product", [["template", "=", template]])
        products[code] = product
    return products


def tryton_mappings(
    server: TrytonServer,
    rpc: TrytonRpc,
    items: Mapping[str, int],
    *,
    department: str,
    held_back_item: str,
) -> dict[str, Any]:
    """The ``mappings`` section of q2c.yaml for Tryton ids; ``held_back_item`` is left out
    (the operator maps it during the demo)."""
    setup = server.setup
    (deferred,) = rpc.search("account.account", [["code", "=", DEFERRED_REVENUE_ACCOUNT]])
    return {
        "subsidiary": {TRYTON_ENTITY: {"tryton": str(setup.company)}},
        # Tryton has no departments without analytic accounting; the adapter ignores them
        "department": {department: {TRYTON_ENTITY: {"tryton": "none"}}},
        "item": {
            code: {"*": {"tryton": str(product)}}
            for code, product in items.items()
            if code != held_back_item
        },
        "tax_code": {code: {"*": {"tryton": str(tax)}} for code, tax in setup.taxes.items()},
        "gl_account": {
            "deferred_revenue": {"*": {"tryton": str(deferred)}},
            "revenue": {"*": {"tryton": str(setup.accounts["revenue"])}},
        },
    }


def tryton_totals(server: TrytonServer) -> dict[str, dict[str, Decimal]]:
    """Per "<entity> <currency>", from Tryton: ``posted`` (totals of q2c's posted customer
    invoices), ``applied`` (what payments settled on them) and ``recognised_in_erp`` (credits
    of q2c's posted revenue journal entries, in the company currency)."""
    totals: dict[str, dict[str, Decimal]] = {}

    def add(key: str, name: str, amount: Decimal) -> None:
        figures = totals.setdefault(key, {})
        figures[name] = figures.get(name, Decimal(0)) + amount

    with httpx.Client(timeout=60.0) as client:
        rpc = server.rpc(client)
        invoices = rpc.iter_search_read(
            "account.invoice",
            [["type", "=", "out"], ["reference", "like", "q2c-inv-%"],
             ["state", "in", ["posted", "paid"]]],
            ["currency.code", "total_amount", "amount_to_pay"],
        )  # fmt: skip
        for invoice in invoices:
            key = f"{TRYTON_ENTITY} {invoice['currency.']['code']}"
            total = Decimal(invoice["total_amount"])
            add(key, "posted", total)
            add(key, "applied", total - Decimal(invoice["amount_to_pay"] or 0))
        (company,) = rpc.read("company.company", [server.setup.company], ["currency.code"])
        key = f"{TRYTON_ENTITY} {company['currency.']['code']}"
        lines = rpc.iter_search_read(
            "account.move.line",
            [["move.description", "like", REVENUE_MEMO], ["move.state", "=", "posted"],
             ["move.company", "=", server.setup.company]],
            ["credit"],
        )  # fmt: skip
        for line in lines:
            add(key, "recognised_in_erp", Decimal(line["credit"]))
    return totals
