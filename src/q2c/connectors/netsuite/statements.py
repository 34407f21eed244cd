"""Customer receivables read back from NetSuite over SuiteQL, for ERP-to-ERP reconciliation.

Two queries per subsidiary: its customers (``customer``), then the customer invoices
(``CustInvc``) and customer payments (``CustPymt``) of the account (``transaction``). A
customer's balance is what NetSuite shows on the customer record: the amount remaining on its
open invoices less what its payments left unapplied. Amounts are NetSuite's own
(``foreigntotal``, ``foreignamountremaining``, ``foreignpaymentamountunused``), in the
transaction currency. Pure functions over the rows; the adapter runs the queries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal

from q2c.canonical.money import Money
from q2c.flows.ports import ArCustomerStatement, ArInvoiceSummary

__all__ = ["AR_TRANSACTIONS_QUERY", "customers_query", "statements_from_rows"]

AR_TRANSACTIONS_QUERY = (
    "SELECT t.id, t.tranid, t.type, t.entity, t.externalid, t.currency, t.foreigntotal, "
    "t.foreignamountremaining, t.foreignpaymentamountunused FROM transaction t "
    "WHERE t.type IN ('CustInvc', 'CustPymt') ORDER BY t.id"
)


def customers_query(subsidiary: str) -> str:
    if not str(subsidiary).isdigit():
        raise ValueError(f"a NetSuite subsidiary is an internal id, not {subsidiary!r}")
    return (
        "SELECT c.id, c.companyname, c.externalid, c.currency FROM customer c "
        f"WHERE c.subsidiary = {int(subsidiary)} ORDER BY c.id"
    )


def _amount(row: Mapping[str, str], column: str) -> Decimal:
    return Decimal(row.get(column) or 0)


def statements_from_rows(
    customers: Iterable[Mapping[str, str]],
    transactions: Iterable[Mapping[str, str]],
    currency_code: Callable[[str], str],
) -> list[ArCustomerStatement]:
    """One statement per customer of the subsidiary that has an invoice or a payment."""
    known = {row["id"]: row for row in customers}
    invoices: dict[str, list[ArInvoiceSummary]] = {}
    balances: dict[str, Money] = {}
    for row in transactions:
        customer = row.get("entity", "")
        if customer not in known:
            continue  # another subsidiary's customer
        currency = currency_code(row.get("currency", ""))
        balance = balances.get(customer, Money.zero(currency))
        if row["type"] == "CustInvc":
            remaining = Money(_amount(row, "foreignamountremaining"), currency)
            invoices.setdefault(customer, []).append(
                ArInvoiceSummary(
                    erp_id=row["id"],
                    external_id=row.get("externalid", ""),
                    number=row.get("tranid", ""),
                    total=Money(_amount(row, "foreigntotal"), currency),
                    amount_remaining=remaining,
                )
            )
            balances[customer] = balance + remaining
        else:
            balances[customer] = balance - Money(
                _amount(row, "foreignpaymentamountunused"), currency
            )
    return [
        ArCustomerStatement(
            customer_erp_id=customer,
            name=known[customer].get("companyname", customer),
            external_id=known[customer].get("externalid"),
            balance=balance,
            invoices=invoices.get(customer, []),
        )
        for customer, balance in balances.items()
    ]
