"""Compare the receivables of two ERPs during a migration parallel run, customer by customer.

Input is what each ERP reports (``ArCustomerStatement``: balance and posted invoices per
customer) plus the pairs of customer ids the hub knows from its cross-reference; customers the
hub has not paired are matched on their external id, then on their exact name. Output is a
report whose lines a finance operator can read without knowing either ERP's ids::

    Customer 'Acme Corp': AR balance NetSuite 1,200.00 USD, Tryton 1,700.00 USD
        (Tryton 500.00 USD more)
    Customer 'Acme Corp': invoice EXTRA-1 of 500.00 USD is in Tryton only

Amounts are compared rounded to the currency's minor unit. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from q2c.canonical.money import Money
from q2c.flows.ports import ArCustomerStatement, ArInvoiceSummary

__all__ = [
    "ArDifference",
    "DifferenceKind",
    "ErpArReconciliation",
    "Side",
    "compare_receivables",
]

DifferenceKind = Literal[
    "customer_missing", "balance", "invoiced_total", "invoice_missing", "invoice_total"
]


@dataclass(frozen=True, slots=True)
class Side:
    """One ERP in the comparison: its name in q2c.yaml, its display name and its role."""

    system: str
    label: str  # "NetSuite", "Tryton"
    role: Literal["legacy", "target"]

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True, slots=True)
class ArDifference:
    """One difference between the ERPs for one customer; ``amount`` is target minus legacy."""

    kind: DifferenceKind
    customer: str
    message: str
    legacy_customer_id: str | None = None
    target_customer_id: str | None = None
    legacy_amount: Money | None = None
    target_amount: Money | None = None
    amount: Money | None = None
    invoice: str | None = None


@dataclass(frozen=True, slots=True)
class ErpArReconciliation:
    legal_entity: str
    legacy: Side
    target: Side
    customers_compared: int
    invoices_compared: int
    legacy_balance: dict[str, Money] = field(default_factory=dict)  # currency -> total
    target_balance: dict[str, Money] = field(default_factory=dict)
    differences: list[ArDifference] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return not self.differences

    def as_dict(self) -> dict[str, Any]:
        """For ``--json`` output and the API: amounts as fixed-point strings."""

        def money(value: Money | None) -> dict[str, str] | None:
            return value.as_json() if value is not None else None

        return {
            "legal_entity": self.legal_entity,
            "legacy": self.legacy.system,
            "target": self.target.system,
            "matched": self.matched,
            "customers_compared": self.customers_compared,
            "invoices_compared": self.invoices_compared,
            "legacy_balance": {c: m.as_json() for c, m in self.legacy_balance.items()},
            "target_balance": {c: m.as_json() for c, m in self.target_balance.items()},
            "differences": [
                {
                    "kind": d.kind,
                    "customer": d.customer,
                    "message": d.message,
                    "invoice": d.invoice,
                    "legacy_customer_id": d.legacy_customer_id,
                    "target_customer_id": d.target_customer_id,
                    "legacy_amount": money(d.legacy_amount),
                    "target_amount": money(d.target_amount),
                    "amount": money(d.amount),
                }
                for d in self.differences
            ],
        }

    def lines(self) -> list[str]:
        """The report as a finance operator reads it: a summary, then one line a difference."""
        head = (
            f"{self.legal_entity}: {self.legacy} (legacy) vs {self.target} (target): "
            f"{self.customers_compared} customers, {self.invoices_compared} invoices compared, "
        )
        if self.matched:
            return [head + "no differences"]
        count = len(self.differences)
        return [head + f"{count} difference{'s' if count != 1 else ''}"] + [
            f"  {d.message}" for d in self.differences
        ]


def compare_receivables(
    legal_entity: str,
    legacy: Side,
    target: Side,
    legacy_statements: Sequence[ArCustomerStatement],
    target_statements: Sequence[ArCustomerStatement],
    pairs: Mapping[str, str],
) -> ErpArReconciliation:
    """Every difference in AR balance and posted invoices, per customer.

    ``pairs`` maps a legacy customer id to the target's id for the same customer (from the
    cross-reference hub); the rest are matched on external id, then exact name (any case).
    """
    matched = _match(legacy_statements, target_statements, pairs)
    differences: list[ArDifference] = []
    invoices = 0
    for old, new in matched:
        if old is None or new is None:
            differences.append(_missing_customer(legacy, target, old, new))
            invoices += sum(len(s.invoices) for s in (old, new) if s is not None)
            continue
        invoices += len({_invoice_key(i) for i in [*old.invoices, *new.invoices]})
        differences.extend(_compare_customer(legacy, target, old, new))
    return ErpArReconciliation(
        legal_entity=legal_entity,
        legacy=legacy,
        target=target,
        customers_compared=len(matched),
        invoices_compared=invoices,
        legacy_balance=_totals(s.balance for s in legacy_statements),
        target_balance=_totals(s.balance for s in target_statements),
        differences=differences,
    )


# --- matching --------------------------------------------------------------------------------

Pair = tuple[ArCustomerStatement | None, ArCustomerStatement | None]


def _match(
    legacy: Sequence[ArCustomerStatement],
    target: Sequence[ArCustomerStatement],
    pairs: Mapping[str, str],
) -> list[Pair]:
    left = {s.customer_erp_id: s for s in legacy}
    right = {s.customer_erp_id: s for s in target}
    matched: list[Pair] = []
    for old_id, new_id in pairs.items():
        if old_id in left and new_id in right:
            matched.append((left.pop(old_id), right.pop(new_id)))
    for key in (_external_key, _name_key):
        by_key = {key(s): s for s in right.values() if key(s)}
        for old_id, old in list(left.items()):
            new = by_key.get(key(old)) if key(old) else None
            if new is not None and new.customer_erp_id in right:
                matched.append((left.pop(old_id), right.pop(new.customer_erp_id)))
    matched.extend((old, None) for old in left.values())
    matched.extend((None, new) for new in right.values())
    return matched


def _external_key(statement: ArCustomerStatement) -> str:
    return statement.external_id or ""


def _name_key(statement: ArCustomerStatement) -> str:
    return statement.name.strip().casefold()


# --- comparing -------------------------------------------------------------------------------


def _missing_customer(
    legacy: Side, target: Side, old: ArCustomerStatement | None, new: ArCustomerStatement | None
) -> ArDifference:
    present, absent, statement = (legacy, target, old) if old is not None else (target, legacy, new)
    assert statement is not None
    invoiced = _invoiced(statement.invoices)
    what = ", ".join(
        [f"balance {_show(statement.balance)}"]
        + [f"{_count(statement.invoices, c)} invoiced {_show(m)}" for c, m in invoiced.items()]
    )
    return ArDifference(
        kind="customer_missing",
        customer=statement.name,
        message=f"Customer '{statement.name}' is in {present} but not in {absent} ({what})",
        legacy_customer_id=old.customer_erp_id if old else None,
        target_customer_id=new.customer_erp_id if new else None,
        legacy_amount=old.balance if old else None,
        target_amount=new.balance if new else None,
        amount=new.balance if new else -statement.balance,
    )


def _compare_customer(
    legacy: Side, target: Side, old: ArCustomerStatement, new: ArCustomerStatement
) -> list[ArDifference]:
    name = old.name
    ids = {"legacy_customer_id": old.customer_erp_id, "target_customer_id": new.customer_erp_id}
    found: list[ArDifference] = []
    balance = _amounts_differ(old.balance, new.balance, target)
    if balance is not None:
        found.append(
            ArDifference(
                kind="balance",
                customer=name,
                message=f"Customer '{name}': AR balance {legacy} {_show(old.balance)}, "
                f"{target} {_show(new.balance)} ({balance})",
                legacy_amount=old.balance,
                target_amount=new.balance,
                amount=_delta(old.balance, new.balance),
                **ids,
            )
        )
    old_invoiced, new_invoiced = _invoiced(old.invoices), _invoiced(new.invoices)
    for currency in sorted(set(old_invoiced) | set(new_invoiced)):
        before = old_invoiced.get(currency, Money.zero(currency))
        after = new_invoiced.get(currency, Money.zero(currency))
        said = _amounts_differ(before, after, target)
        if said is None:
            continue
        found.append(
            ArDifference(
                kind="invoiced_total",
                customer=name,
                message=f"Customer '{name}': invoiced {legacy} {_show(before)} in "
                f"{_count(old.invoices, currency)}, {target} {_show(after)} in "
                f"{_count(new.invoices, currency)} ({said})",
                legacy_amount=before,
                target_amount=after,
                amount=after - before,
                **ids,
            )
        )
    found.extend(_compare_invoices(legacy, target, old, new))
    return found


def _compare_invoices(
    legacy: Side, target: Side, old: ArCustomerStatement, new: ArCustomerStatement
) -> list[ArDifference]:
    name = old.name
    ids = {"legacy_customer_id": old.customer_erp_id, "target_customer_id": new.customer_erp_id}
    left = {_invoice_key(i): i for i in old.invoices}
    right = {_invoice_key(i): i for i in new.invoices}
    found: list[ArDifference] = []
    for key in [*left, *(k for k in right if k not in left)]:
        mine, theirs = left.get(key), right.get(key)
        if mine is not None and theirs is not None:
            said = _amounts_differ(mine.total, theirs.total, target)
            if said is not None:
                found.append(
                    ArDifference(
                        kind="invoice_total",
                        customer=name,
                        message=f"Customer '{name}': invoice {_invoice_name(mine, theirs)} "
                        f"totals {legacy} {_show(mine.total)}, {target} {_show(theirs.total)} "
                        f"({said})",
                        legacy_amount=mine.total,
                        target_amount=theirs.total,
                        amount=_delta(mine.total, theirs.total),
                        invoice=key,
                        **ids,
                    )
                )
            continue
        only = mine or theirs
        assert only is not None
        side = legacy if mine is not None else target
        found.append(
            ArDifference(
                kind="invoice_missing",
                customer=name,
                message=f"Customer '{name}': invoice {_invoice_name(only)} of "
                f"{_show(only.total)} is in {side} only",
                legacy_amount=mine.total if mine else None,
                target_amount=theirs.total if theirs else None,
                amount=theirs.total if theirs else -only.total,
                invoice=key,
                **ids,
            )
        )
    return found


def _invoice_key(invoice: ArInvoiceSummary) -> str:
    """q2c's external id pairs the two postings; a hand-entered invoice pairs with nothing."""
    return invoice.external_id or f"#{invoice.erp_id}:{invoice.number}"


def _invoice_name(*invoices: ArInvoiceSummary) -> str:
    """Its ERP number(s), with q2c's key when q2c posted it: ``INV-7 (q2c-inv-in_1)``."""
    numbers = " / ".join(dict.fromkeys(i.number or f"id {i.erp_id}" for i in invoices))
    key = invoices[0].external_id
    return f"{numbers} ({key})" if key else numbers


def _invoiced(invoices: Iterable[ArInvoiceSummary]) -> dict[str, Money]:
    return _totals(i.total for i in invoices)


def _totals(amounts: Iterable[Money]) -> dict[str, Money]:
    totals: dict[str, Money] = {}
    for amount in amounts:
        totals[amount.currency] = totals.get(amount.currency, Money.zero(amount.currency)) + amount
    return totals


def _count(invoices: Sequence[ArInvoiceSummary], currency: str) -> str:
    n = sum(1 for i in invoices if i.total.currency == currency)
    return f"{n} invoice{'s' if n != 1 else ''}"


def _amounts_differ(legacy: Money, target: Money, side: Side) -> str | None:
    """None when equal to the cent; else how the target differs, in words."""
    if legacy.currency != target.currency:
        return f"{legacy.currency} against {target.currency}: compare by hand"
    delta = (target - legacy).rounded()
    if delta.amount == 0:
        return None
    more = "more" if delta.amount > 0 else "less"
    return f"{side} {_show(delta if delta.amount > 0 else -delta)} {more}"


def _delta(legacy: Money, target: Money) -> Money | None:
    return target - legacy if legacy.currency == target.currency else None


def _show(money: Money) -> str:
    return str(money.rounded())
