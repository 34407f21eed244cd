"""Payments and journal entries in Tryton: the rest of ``ArLedgerPort``, and ``JournalPort``.

*Payments* go through the ``account.invoice.pay`` wizard, one run per application, as a clerk
would pay an invoice (partial payments keep the rest to pay; full ones reconcile). What is not
applied is booked as a receivable credit for the party (cash debit / receivable credit on the
payment method's journal), so the party's receivable balance shows it. Each move carries a
marker with the external id, so a replay skips what was already booked.

*Journal entries* are ``account.move`` on the Miscellaneous journal, balanced, then posted; a
draft left by a crash between create and post is posted on replay. Amounts are in the
company currency (multi-currency journal entries are not supported here).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from q2c.canonical.models import Payment
from q2c.canonical.money import Money
from q2c.connectors.tryton.invoices import TrytonInvoices
from q2c.connectors.tryton.payloads import (
    amount_in,
    check_external_id,
    has_marker,
    like_marker,
    mapped,
    with_marker,
)
from q2c.errors import ConfigError, ValidationError
from q2c.flows.ports import (
    ErpPayment,
    ErpRecordRef,
    JournalRequest,
)

__all__ = ["TrytonLedger"]

SYSTEM = "tryton"


class TrytonLedger(TrytonInvoices):
    """AR invoices, payments and journal entries of one Tryton database."""

    payment_method: int | None = None  # account.invoice.payment.method; None: the first one
    journal: int | None = None  # journal for q2c's journal entries; None: Miscellaneous

    # --- payments --------------------------------------------------------------------------

    def apply_payment(
        self,
        payment: Payment,
        *,
        external_id: str,
        customer_erp_id: str,
        subsidiary: str,
        currency_erp_id: str,
        applications: Sequence[tuple[str, Money]],
    ) -> ErpPayment:
        check_external_id(external_id)
        company = self.company_for(subsidiary)
        ctx = {"company": company}
        party = mapped({"customer": customer_erp_id}, "customer", "Customer", external_id)
        currency = payment.amount.currency
        merged: dict[str, Money] = {}
        for invoice_id, amount in applications:
            amount_in(amount, currency, f"Application to invoice {invoice_id}")
            merged[invoice_id] = merged.get(invoice_id, Money.zero(currency)) + amount
        applied = Money.total(merged.values(), currency)
        unapplied = payment.amount - applied
        if unapplied.amount < 0 or any(a.amount <= 0 for a in merged.values()):
            raise ValidationError(
                f"Payment {payment.reference or payment.id} of {payment.amount} cannot apply "
                f"{applied} to invoices",
                detail=f"applications={[(k, str(v)) for k, v in merged.items()]}",
                system=SYSTEM,
            )
        booked = self._payment_moves(external_id, company)
        label = f"Payment {payment.reference or payment.id}"
        for invoice_id, amount in merged.items():
            key = f"{external_id}:inv{invoice_id}"
            if key in booked:
                continue
            self._check_application(invoice_id, amount, party, external_id)
            self._pay(int(invoice_id), amount, payment.received_on, with_marker(label, key), ctx)
        key = f"{external_id}:unapplied"
        if unapplied.amount > 0:
            if key not in booked:
                self._book_credit(party, unapplied, payment.received_on, label, key, company)
            else:
                self._post_if_draft(booked[key], ctx)
        moves = self._payment_moves(external_id, company)
        return ErpPayment(
            erp_id=",".join(str(m["id"]) for m in sorted(moves.values(), key=lambda m: m["id"])),
            external_id=external_id,
            applied=applied,
            unapplied=unapplied,
        )

    def _payment_moves(self, external_id: str, company: int) -> dict[str, dict[str, Any]]:
        """Moves booked for a payment so far, by marker (``<id>:inv<n>``, ``<id>:unapplied``)."""
        rows = self.rpc.search_read(
            "account.move",
            [["description", "like", f"%[{external_id}:%"], ["company", "=", company]],
            ["description", "state"],
        )
        found: dict[str, dict[str, Any]] = {}
        for row in rows:
            text = str(row["description"] or "").rstrip()
            if text.endswith("]") and "[" in text:
                key = text[text.rindex("[") + 1 : -1]
                if key.startswith(f"{external_id}:"):
                    found[key] = row
        return found

    def _check_application(
        self, invoice_id: str, amount: Money, party: int, external_id: str
    ) -> None:
        row = self._invoice_row(invoice_id)
        number = row["number"] or invoice_id
        if int(row["party"]) != party:
            raise ValidationError(
                f"Invoice {number} belongs to another customer than payment '{external_id}'",
                detail=f"account.invoice {invoice_id} party {row['party']} != {party}",
                system=SYSTEM,
            )
        if row["state"] != "posted":
            raise ValidationError(
                f"Invoice {number} is {row['state']} in Tryton and cannot take a payment",
                detail=f"account.invoice {invoice_id} state {row['state']}",
                system=SYSTEM,
            )
        if row["currency."]["code"] != amount.currency:
            raise ValidationError(
                f"Invoice {number} is in {row['currency.']['code']}, the payment in "
                f"{amount.currency}",
                detail=f"account.invoice {invoice_id} currency {row['currency.']['code']}",
                system=SYSTEM,
            )
        remaining = Decimal(row["amount_to_pay"] or 0)
        if amount.amount > remaining:
            raise ValidationError(
                f"Payment of {amount} exceeds invoice {number}'s amount to pay "
                f"{remaining} {row['currency.']['code']}",
                detail=f"account.invoice {invoice_id} amount_to_pay={remaining}",
                suggested_fix="Apply at most the open amount; the rest stays as unapplied credit.",
                system=SYSTEM,
            )

    def _pay(
        self, invoice_id: int, amount: Money, on: dt.date, description: str, ctx: dict[str, Any]
    ) -> None:
        method = self._payment_method(int(ctx["company"]))
        with self.rpc.wizard(
            "account.invoice.pay",
            active_model="account.invoice",
            active_ids=[invoice_id],
            context=ctx,
        ) as wizard:
            wizard.execute(wizard.start)
            wizard.fill(
                "start",
                amount=amount.amount,
                payment_method=method["id"],
                date=on,
                description=description,
            )
            answer = wizard.execute("choice")
            view = answer.get("view")
            if isinstance(view, dict) and view.get("state") == "ask":
                wizard.fill("ask", type="partial")  # keep the rest open on the invoice
                wizard.execute("pay")

    def _book_credit(
        self, party: int, amount: Money, on: dt.date, label: str, key: str, company: int
    ) -> None:
        if amount.currency != self.company_currency(company):
            raise ValidationError(
                f"An unapplied credit in {amount.currency} cannot be booked in Tryton by q2c",
                detail=f"company currency {self.company_currency(company)}",
                suggested_fix="Apply the whole payment to invoices, or book the credit by hand.",
                system=SYSTEM,
            )
        ctx = {"company": company}
        method = self._payment_method(company)
        receivable = self.invoice_defaults(party, company).get("account")
        description = with_marker(f"{label}: unapplied credit", key)
        move = {
            "company": company,
            "journal": method["journal"],
            "period": self.open_period(company, on),
            "date": on,
            "description": description,
            "lines": [
                [
                    "create",
                    [
                        {"account": method["debit_account"], "debit": amount.amount,
                         "credit": Decimal(0), "description": description},
                        {"account": receivable, "party": party, "debit": Decimal(0),
                         "credit": amount.amount, "description": description},
                    ],
                ]
            ],
        }  # fmt: skip
        (move_id,) = self.rpc.create("account.move", [move], context=ctx)
        self.rpc.button("account.move", "post", [move_id], context=ctx)

    def _post_if_draft(self, move: dict[str, Any], ctx: dict[str, Any]) -> None:
        if move["state"] == "draft":
            self.rpc.button("account.move", "post", [int(move["id"])], context=ctx)

    def _payment_method(self, company: int) -> dict[str, Any]:
        domain: list[Any] = [["company", "=", company]]
        if self.payment_method:
            domain.append(["id", "=", self.payment_method])
        rows = self.rpc.search_read(
            "account.invoice.payment.method",
            domain,
            ["journal", "debit_account", "credit_account"],
            limit=1,
            order=[("id", "ASC")],
        )
        if not rows:
            raise ConfigError(
                "Tryton has no invoice payment method for q2c to record payments with",
                detail=f"account.invoice.payment.method company={company} id={self.payment_method}",
                suggested_fix="Create one in Tryton (Financial > Configuration > Payment Methods).",
                system=SYSTEM,
            )
        return rows[0]

    # --- journal entries -------------------------------------------------------------------

    def post_journal(self, journal: JournalRequest, *, external_id: str) -> ErpRecordRef:
        company = self.company_for(journal.subsidiary)
        ctx = {"company": company}
        currency = self.company_currency(company)
        lines = _move_lines(journal, currency)
        rows = self.rpc.search_read(
            "account.move",
            [["description", "like", like_marker(external_id)], ["company", "=", company]],
            ["description", "state", "number"],
        )
        found = [row for row in rows if has_marker(row["description"], external_id)]
        if found:
            move = found[0]
            self._post_if_draft(move, ctx)
            (row,) = self.rpc.read("account.move", [int(move["id"])], ["number"], context=ctx)
            return ErpRecordRef(str(move["id"]), external_id, row["number"])
        values = {
            "company": company,
            "journal": self.journal or self.rpc.get_id("account", "journal_miscellaneous"),
            "period": self.open_period(company, journal.posting_date),
            "date": journal.posting_date,
            "description": with_marker(journal.memo, external_id),
            "lines": [["create", lines]],
        }
        (move_id,) = self.rpc.create("account.move", [values], context=ctx)
        try:
            self.rpc.button("account.move", "post", [move_id], context=ctx)
        except ValidationError:
            self.rpc.delete("account.move", [move_id], context=ctx)  # leave nothing half-done
            raise
        (row,) = self.rpc.read("account.move", [move_id], ["number"], context=ctx)
        return ErpRecordRef(str(move_id), external_id, row["number"])


def _move_lines(journal: JournalRequest, currency: str) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    debits = credits = Decimal(0)
    for n, line in enumerate(journal.lines, start=1):
        if (line.debit is None) == (line.credit is None) or not str(line.account).isdigit():
            raise ValidationError(
                f"Journal line {n} needs a Tryton account id and exactly one of debit or credit",
                detail=f"line {n}: account={line.account!r} {line.debit=} {line.credit=}",
                system=SYSTEM,
            )
        debit = amount_in(line.debit, currency, f"Line {n} debit") if line.debit else Decimal(0)
        credit = amount_in(line.credit, currency, f"Line {n} credit") if line.credit else Decimal(0)
        debits, credits = debits + debit, credits + credit
        lines.append(
            {
                "account": int(line.account),
                "debit": debit,
                "credit": credit,
                "description": line.memo or journal.memo,
            }
        )
    if debits != credits or not lines:
        raise ValidationError(
            f"Journal entry '{journal.memo}' is out of balance: {debits} debit, {credits} credit",
            detail=f"{len(lines)} lines in {currency}",
            system=SYSTEM,
        )
    return lines
