"""AR invoices in Tryton: the invoice half of ``ArLedgerPort``.

Invoices are ``account.invoice`` (type out) created over RPC with their lines and posted with
the ``post`` button. RPC create does not run on_change, so the values the client would fill in
come from Tryton's own ``on_change`` (invoice: address, receivable account, journal; line:
revenue account and unit of the product). Taxes are the ones q2c mapped, not the product's
defaults. Before posting, a tax that Tryton rounded differently from the billing document
(half to even against half up) is set to the billed amount with a manual rounding line
(``tax_rounding``), then Tryton's untaxed amount, tax and total are compared with the canonical
invoice: a posted invoice cannot be deleted, so a difference leaves a draft and a
ValidationError naming both amounts. Idempotency: ``reference`` carries the external id and is
searched first; a posted/paid invoice is returned as is, a left-over draft is replaced.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog

from q2c.canonical.models import Invoice
from q2c.canonical.money import Money
from q2c.connectors.tryton.base import TrytonBase
from q2c.connectors.tryton.payloads import (
    amount_in,
    invoice_line_figures,
    line_tax_amounts,
    mapped,
)
from q2c.connectors.tryton.tax_rounding import (
    ROUNDING_NOTE,
    TaxRoundingAdjustment,
    billed_taxes,
    is_rounding_line,
    rounding_adjustments,
)
from q2c.errors import BusinessFixError, NotFoundError, ValidationError
from q2c.flows.ports import (
    ArCustomerStatement,
    ArInvoiceSummary,
    ErpInvoice,
    ErpInvoiceLine,
    ErpRecordRef,
    InvoicePostingRefs,
)

__all__ = ["TrytonInvoiceRef", "TrytonInvoices"]

log = structlog.get_logger("q2c.connectors.tryton")

SYSTEM = "tryton"
INVOICE_FIELDS = [
    "reference", "number", "state", "currency.code", "untaxed_amount", "tax_amount",
    "total_amount", "amount_to_pay", "party", "company", "lines", "taxes", "type",
]  # fmt: skip
DONE = ("posted", "paid")
TAX_FIELDS = ["tax", "base", "amount", "manual", "account", "description", "sequence"]


@dataclass(frozen=True, slots=True)
class TrytonInvoiceRef(ErpRecordRef):
    """The posted invoice, with the taxes set from Tryton's rounding to the billed amount."""

    tax_adjustments: tuple[TaxRoundingAdjustment, ...] = ()


class TrytonInvoices(TrytonBase):
    """Customer invoices of one Tryton database."""

    # --- invoices --------------------------------------------------------------------------

    def upsert_invoice(
        self, invoice: Invoice, *, external_id: str, refs: InvoicePostingRefs
    ) -> TrytonInvoiceRef:
        company = self.company_for(refs.subsidiary)
        ctx = {"company": company}
        existing = self._invoices_by_reference(external_id, company)
        if existing and existing["state"] in DONE:
            adjusted = self._recorded_adjustments(int(existing["id"]), ctx)
            return TrytonInvoiceRef(str(existing["id"]), external_id, existing["number"], adjusted)
        if existing and existing["state"] == "cancelled":
            raise ValidationError(
                f"Invoice {existing['number'] or existing['id']} for '{external_id}' was "
                "cancelled in Tryton",
                detail=f"account.invoice {existing['id']} reference={external_id!r} cancelled",
                suggested_fix="Decide in Tryton whether to re-open it, then replay.",
                system=SYSTEM,
            )
        if existing:  # a draft left by an earlier attempt (its tax lines go with it)
            self.rpc.delete("account.invoice", [existing["id"]], context=ctx)
        values, own_taxes = self._invoice_values(invoice, external_id, refs, company)
        (invoice_id,) = self.rpc.create("account.invoice", [values], context=ctx)
        adjusted = self._round_taxes_as_billed(invoice_id, invoice, refs, external_id, ctx)
        self._check_totals(invoice_id, invoice, ctx)
        foreseen = self._foreseen_warnings(invoice, own_taxes=own_taxes)
        self.expect_warnings("account.invoice", invoice_id, foreseen)
        self.confirming(
            lambda: self.rpc.button("account.invoice", "post", [invoice_id], context=ctx)
        )
        (row,) = self.rpc.read("account.invoice", [invoice_id], ["number"], context=ctx)
        return TrytonInvoiceRef(str(invoice_id), external_id, row["number"], adjusted)

    def read_invoice(self, erp_id: str) -> ErpInvoice:
        row = self._invoice_row(erp_id)
        currency = str(row["currency."]["code"])
        lines = [
            line
            for line in self.rpc.read(
                "account.invoice.line",
                row["lines"],
                ["type", "product", "amount", "quantity", "taxes"],
            )
            if line["type"] == "line"
        ]
        taxes = self.rpc.read("account.invoice.tax", row["taxes"], ["tax", "base", "amount"])
        tax_ids = sorted({int(t["tax"]) for t in taxes if t["tax"]})
        rates = {
            int(t["id"]): Decimal(t["rate"] or 0)
            for t in self.rpc.read("account.tax", tax_ids, ["rate"])
        }
        per_line = line_tax_amounts(
            [(int(x["id"]), Decimal(x["amount"]), [int(t) for t in x["taxes"]]) for x in lines],
            [(int(t["tax"]), Decimal(t["base"]), Decimal(t["amount"])) for t in taxes if t["tax"]],
            rates,
            Money.zero(currency).exponent,
        )
        total = Money(Decimal(row["total_amount"]), currency)
        state = str(row["state"])
        remaining = {"draft": total, "validated": total, "cancelled": Money.zero(currency)}.get(
            state, Money(Decimal(row["amount_to_pay"] or 0), currency)
        )
        return ErpInvoice(
            erp_id=str(row["id"]),
            external_id=str(row["reference"] or ""),
            number=str(row["number"] or ""),
            currency=currency,
            subtotal=Money(Decimal(row["untaxed_amount"]), currency),
            tax_total=Money(Decimal(row["tax_amount"]), currency),
            total=total,
            amount_remaining=remaining,
            lines=[
                ErpInvoiceLine(
                    item_erp_id=str(line["product"] or ""),
                    amount=Money(Decimal(line["amount"]), currency),
                    tax_amount=Money(per_line[int(line["id"])], currency),
                    tax_code_erp_id=str(line["taxes"][0]) if line["taxes"] else None,
                    quantity=Decimal(line["quantity"]) if line["quantity"] is not None else None,
                )
                for line in lines
            ],
            status=state,
        )

    def receivable_balance(self, customer_erp_id: str, subsidiary: str | None = None) -> Money:
        """What the party owes in the company's books (open invoices less payments and credit)."""
        company = self.company_for(subsidiary)
        (row,) = self.rpc.read(
            "party.party", [int(customer_erp_id)], ["receivable"], context={"company": company}
        )
        return Money(Decimal(row["receivable"] or 0), self.company_currency(company))

    def ar_statements(self, subsidiary: str) -> list[ArCustomerStatement]:
        """Parties with a posted customer invoice or a receivable balance in the company, with
        Tryton's own totals, amounts to pay and party receivable (unapplied credit included)."""
        company = self.company_for(subsidiary)
        ctx = {"company": company}
        rows = self.rpc.search_read(
            "account.invoice",
            [["type", "=", "out"], ["company", "=", company], ["state", "in", list(DONE)]],
            ["party", "reference", "number", "currency.code", "total_amount", "amount_to_pay"],
            order=[("id", "ASC")],
            context=ctx,
        )
        invoices: dict[int, list[ArInvoiceSummary]] = {}
        for row in rows:
            currency = str(row["currency."]["code"])
            invoices.setdefault(int(row["party"]), []).append(
                ArInvoiceSummary(
                    erp_id=str(row["id"]),
                    external_id=str(row["reference"] or ""),
                    number=str(row["number"] or ""),
                    total=Money(Decimal(row["total_amount"]), currency),
                    amount_remaining=Money(Decimal(row["amount_to_pay"] or 0), currency),
                )
            )
        owing = self.rpc.search("party.party", [["receivable", "!=", 0]], context=ctx)
        parties = sorted(set(invoices) | {int(p) for p in owing})
        if not parties:
            return []
        names = self.rpc.read("party.party", parties, ["name", "receivable"], context=ctx)
        external = {
            int(row["party"]): str(row["code"])
            for row in self.rpc.search_read(
                "party.identifier",
                [["party", "in", parties], ["type", "=", None]],
                ["party", "code"],
            )
        }
        currency = self.company_currency(company)
        return [
            ArCustomerStatement(
                customer_erp_id=str(row["id"]),
                name=str(row["name"]),
                external_id=external.get(int(row["id"])),
                balance=Money(Decimal(row["receivable"] or 0), currency),
                invoices=invoices.get(int(row["id"]), []),
            )
            for row in names
        ]

    def _invoices_by_reference(self, external_id: str, company: int) -> dict[str, Any] | None:
        rows = self.rpc.search_read(
            "account.invoice",
            [["reference", "=", external_id], ["type", "=", "out"], ["company", "=", company]],
            ["state", "number"],
            order=[("id", "ASC")],
        )
        live = [row for row in rows if row["state"] != "cancelled"] or rows
        if len(live) > 1:
            raise BusinessFixError(
                f"{len(live)} Tryton invoices carry the reference '{external_id}'",
                detail=f"account.invoice ids {[r['id'] for r in live]}",
                suggested_fix="Cancel the duplicates in Tryton, then replay.",
                system=SYSTEM,
            )
        return live[0] if live else None

    def _invoice_row(self, erp_id: str) -> dict[str, Any]:
        rows = (
            self.rpc.search_read("account.invoice", [["id", "=", int(erp_id)]], INVOICE_FIELDS)
            if str(erp_id).isdigit()
            else []
        )
        if not rows:
            raise NotFoundError(
                f"Tryton has no invoice {erp_id}",
                detail=f"account.invoice id {erp_id!r} not found",
                system=SYSTEM,
            )
        return rows[0]

    def invoice_defaults(self, party: int, company: int) -> dict[str, Any]:
        """What the client fills in when the party is chosen (Tryton's on_change)."""
        values = {"type": "out", "party": party, "company": company, "journal": None}
        answer = self.rpc.model("account.invoice", "on_change", values, ["type", "party"])
        return {k: v for k, v in dict(answer).items() if not k.endswith(".")}

    def _invoice_values(
        self, invoice: Invoice, external_id: str, refs: InvoicePostingRefs, company: int
    ) -> tuple[dict[str, Any], bool]:
        """The invoice's values for create, and whether q2c's taxes differ from the products'
        defaults on any line (Tryton then warns at posting)."""
        party = mapped({"customer": refs.customer_erp_id}, "customer", "Customer", external_id)
        defaults = self.invoice_defaults(party, company)
        currency = (
            int(refs.currency_erp_id)
            if str(refs.currency_erp_id).isdigit()
            else self.currency_id(invoice.currency)
        )
        lines = []
        own_taxes = False  # q2c's tax mapping differs from a product's default taxes
        for line in invoice.lines:
            where = f"invoice {invoice.number or external_id} line {line.line_no}"
            product = mapped(refs.items, line.service_item, "Item", where)
            taxes = (
                [mapped(refs.tax_codes, line.tax_code, "Tax code", where)] if line.tax_code else []
            )
            filled = self._line_defaults(product, party, company, currency)
            product_taxes = [int(t["id"]) for _, t in (filled.get("taxes") or {}).get("add", [])]
            own_taxes = own_taxes or sorted(product_taxes) != sorted(taxes)
            quantity, unit_price, as_billed = invoice_line_figures(
                line.quantity,
                amount_in(line.unit_price, invoice.currency, f"{where} price"),
                amount_in(line.amount, invoice.currency, f"{where} amount"),
                unit_digits=self._unit_digits(int(filled["unit"])),
                exponent=Money.zero(invoice.currency).exponent,
            )
            description = line.description or line.service_item
            if not as_billed:
                description += f" ({line.quantity} at {line.unit_price})"
            lines.append(
                {
                    "type": "line",
                    "product": product,
                    "description": description,
                    "quantity": quantity,
                    "unit": filled["unit"],
                    "unit_price": unit_price,
                    "account": filled["account"],
                    "taxes": [["add", taxes]],
                }
            )
        values = {
            "type": "out",
            "company": company,
            "party": party,
            "currency": currency,
            "invoice_address": defaults.get("invoice_address"),
            "account": int(refs.ar_account) if refs.ar_account else defaults.get("account"),
            "journal": defaults.get("journal"),
            "invoice_date": invoice.issue_date,
            "payment_term_date": invoice.due_date,
            "reference": external_id,
            "description": refs.memo or (f"Invoice {invoice.number}" if invoice.number else ""),
            "lines": [["create", lines]],
        }
        return values, own_taxes

    def _foreseen_warnings(self, invoice: Invoice, *, own_taxes: bool) -> list[str]:
        """Warnings posting will raise that q2c confirms anyway: taxes other than the products'
        defaults (``own_taxes``) and an invoice date after today."""
        foreseen = ["invoice_taxes"] if own_taxes else []
        if invoice.issue_date > dt.date.today():
            foreseen.append("invoice_date_future")
        return foreseen

    def _unit_digits(self, unit: int) -> int:
        """Decimals Tryton allows in a quantity of ``unit`` (product.uom digits)."""
        if unit not in self._unit_digit_cache:
            (row,) = self.rpc.read("product.uom", [unit], ["digits"])
            self._unit_digit_cache[unit] = int(row["digits"])
        return self._unit_digit_cache[unit]

    def _line_defaults(
        self, product: int, party: int, company: int, currency: int
    ) -> dict[str, Any]:
        values = {
            "type": "line",
            "product": product,
            "invoice_type": "out",
            "party": party,
            "company": company,
            "currency": currency,
        }
        answer = self.rpc.model("account.invoice.line", "on_change", values, ["product"])
        return dict(answer)

    def _tax_records(self, invoice_id: int, ctx: dict[str, Any]) -> list[dict[str, Any]]:
        (row,) = self.rpc.read("account.invoice", [invoice_id], ["taxes"], context=ctx)
        return list(self.rpc.read("account.invoice.tax", row["taxes"], TAX_FIELDS, context=ctx))

    def _round_taxes_as_billed(
        self,
        invoice_id: int,
        invoice: Invoice,
        refs: InvoicePostingRefs,
        external_id: str,
        ctx: dict[str, Any],
    ) -> tuple[TaxRoundingAdjustment, ...]:
        """Set each tax Tryton rounded differently from the billing document to the billed
        amount, with a manual tax line for the difference; larger differences are left for
        ``_check_totals`` to refuse."""
        billed = billed_taxes(invoice, refs.tax_codes)
        if not billed:
            return ()
        records = self._tax_records(invoice_id, ctx)
        booked: dict[int, tuple[Decimal, Decimal]] = {}
        computed_line: dict[int, dict[str, Any]] = {}
        for record in records:
            if not record["tax"]:
                continue
            tax_id = int(record["tax"])
            base, amount = booked.get(tax_id, (Decimal(0), Decimal(0)))
            booked[tax_id] = (base + Decimal(record["base"]), amount + Decimal(record["amount"]))
            if not record["manual"]:
                computed_line.setdefault(tax_id, record)
        rates = {
            int(row["id"]): Decimal(row["rate"]) if row["type"] == "percentage" else None
            for row in self.rpc.read("account.tax", sorted(booked), ["rate", "type"], context=ctx)
        }
        exponent = Money.zero(invoice.currency).exponent
        adjustments = [
            adjustment
            for adjustment in rounding_adjustments(billed, booked, rates, exponent)
            if adjustment.tax_id in computed_line
        ]
        if not adjustments:
            return ()
        self.rpc.create(
            "account.invoice.tax",
            [
                {
                    "invoice": invoice_id,
                    "manual": True,
                    "tax": adjustment.tax_id,
                    "account": computed_line[adjustment.tax_id]["account"],
                    "base": Decimal(0),  # the lines already carry the base in the tax report
                    "amount": adjustment.amount,
                    "description": computed_line[adjustment.tax_id]["description"] + ROUNDING_NOTE,
                    "sequence": computed_line[adjustment.tax_id]["sequence"],
                }
                for adjustment in adjustments
            ],
            context=ctx,
        )
        for adjustment in adjustments:
            log.info(
                "tryton.invoice_tax_rounded_as_billed",
                invoice=invoice.number or invoice.id,
                external_id=external_id,
                tryton_invoice_id=invoice_id,
                tax_id=adjustment.tax_id,
                tryton_amount=str(adjustment.computed),
                billed_amount=str(adjustment.billed),
                adjustment=str(adjustment.amount),
            )
        return tuple(adjustments)

    def _recorded_adjustments(
        self, invoice_id: int, ctx: dict[str, Any]
    ) -> tuple[TaxRoundingAdjustment, ...]:
        """The rounding adjustments a posted invoice carries (for a replayed posting)."""
        computed: dict[int, Decimal] = {}
        rounded: dict[int, Decimal] = {}
        for record in self._tax_records(invoice_id, ctx):
            if not record["tax"]:
                continue
            tax_id, amount = int(record["tax"]), Decimal(record["amount"])
            if is_rounding_line(
                bool(record["manual"]), Decimal(record["base"]), record["description"]
            ):
                rounded[tax_id] = rounded.get(tax_id, Decimal(0)) + amount
            else:
                computed[tax_id] = computed.get(tax_id, Decimal(0)) + amount
        return tuple(
            TaxRoundingAdjustment(tax_id, computed.get(tax_id, Decimal(0)),
                                  computed.get(tax_id, Decimal(0)) + difference)
            for tax_id, difference in sorted(rounded.items())
        )  # fmt: skip

    def _check_totals(self, invoice_id: int, invoice: Invoice, ctx: dict[str, Any]) -> None:
        (row,) = self.rpc.read(
            "account.invoice",
            [invoice_id],
            ["untaxed_amount", "tax_amount", "total_amount"],
            context=ctx,
        )
        theirs = {
            "untaxed amount": Decimal(row["untaxed_amount"]),
            "tax": Decimal(row["tax_amount"]),
            "total": Decimal(row["total_amount"]),
        }
        ours = {
            "untaxed amount": invoice.subtotal.rounded().amount,
            "tax": invoice.tax_total.rounded().amount,
            "total": invoice.total.rounded().amount,
        }
        differences = [k for k in ours if ours[k] != theirs[k]]
        if differences:
            said = ", ".join(f"{k} {theirs[k]} in Tryton vs {ours[k]} in q2c" for k in differences)
            raise ValidationError(
                f"Tryton computes invoice {invoice.number or invoice.id} differently: {said}; "
                "it was left as a draft",
                detail=f"account.invoice {invoice_id}: tryton={theirs} canonical={ours}",
                suggested_fix=(
                    "Check the tax rates and tax rounding (per line or per document) in Tryton "
                    "against q2c's tax codes, then replay (the draft is replaced)."
                ),
                field="total",
                system=SYSTEM,
                context={"tryton_invoice_id": invoice_id},
            )
