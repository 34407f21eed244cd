"""NetSuite as q2c's ledger: ``ArLedgerPort``, ``JournalPort`` and ``ReferenceDataPort``.

Invoices, customer payments and journal entries are upserted by external id
(``PUT /record/v1/{invoice|customerPayment|journalEntry}/eid:{externalId}``) with their
sublist replaced (``?replace=item|apply|line``), so a step retried after a timeout lands on the
same record with the same lines, and a payment re-sent re-applies rather than applies twice.
NetSuite computes tax, totals and amounts due; ``read_invoice`` reads them back
(``expandSubResources=true``) for the to-the-cent comparison. Reference data comes from
SuiteQL, page by page (``reference.py`` says which tables and columns).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

from q2c.canonical.models import ExchangeRate, Invoice, Item, Payment, TaxCode
from q2c.canonical.money import Money
from q2c.connectors.netsuite.reference import (
    CURRENCIES_QUERY,
    ITEMS_QUERY,
    TAX_CODES_QUERY,
    currencies_from_rows,
    exchange_rates_query,
    item_from_row,
    latest_rates,
    tax_code_from_row,
)
from q2c.connectors.netsuite.session import SYSTEM, NetSuiteSession
from q2c.connectors.netsuite.statements import (
    AR_TRANSACTIONS_QUERY,
    customers_query,
    statements_from_rows,
)
from q2c.connectors.netsuite.transactions import (
    erp_invoice_from_record,
    erp_payment_from_record,
    invoice_body,
    journal_body,
    payment_body,
    ref_id,
)
from q2c.errors import FatalError, MappingMissingError, Q2CError, ValidationError
from q2c.flows.ports import (
    ArCustomerStatement,
    ErpInvoice,
    ErpPayment,
    ErpRecordRef,
    InvoicePostingRefs,
    JournalRequest,
)

__all__ = ["NetSuiteAccounting"]

_APPLY_AMOUNT = re.compile(r"^apply\.items\[(\d+)\]\.amount$")


class NetSuiteAccounting(NetSuiteSession):
    """AR invoices, customer payments, journal entries and reference data of one account."""

    # --- ArLedgerPort ----------------------------------------------------------------------

    def upsert_invoice(
        self, invoice: Invoice, *, external_id: str, refs: InvoicePostingRefs
    ) -> ErpRecordRef:
        self._expect_currency(
            refs.currency_erp_id, invoice.currency, f"Invoice {invoice.number or invoice.id}"
        )
        body = invoice_body(invoice, refs=refs)
        erp_id = self._upsert("invoice", external_id, body, replace=("item",))
        record = self.read_record("invoice", erp_id)
        return ErpRecordRef(erp_id=erp_id, external_id=external_id, number=record.get("tranId"))

    def read_invoice(self, erp_id: str) -> ErpInvoice:
        record = self.read_record("invoice", erp_id, expand=True)
        currency_id = ref_id(record.get("currency"))
        code = self._currency_code(currency_id) if currency_id else None
        if code is None:
            raise FatalError(
                f"NetSuite invoice {record.get('tranId', erp_id)} has a currency q2c cannot name",
                detail=f"invoice {erp_id}: currency {record.get('currency')!r}",
                system=SYSTEM,
            )
        return erp_invoice_from_record(record, code)

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
        """Record the payment and apply it; what is not applied stays as unapplied credit."""
        self._expect_currency(currency_erp_id, payment.amount.currency, f"Payment {payment.id}")
        body = payment_body(
            payment,
            customer_erp_id=customer_erp_id,
            subsidiary=subsidiary,
            currency_erp_id=currency_erp_id,
            applications=applications,
        )
        try:
            erp_id = self._upsert("customerPayment", external_id, body, replace=("apply",))
        except ValidationError as refused:
            raise self._explain_refused_application(refused, body, payment) from refused
        record = self.read_record("customerPayment", erp_id)
        return erp_payment_from_record(record, payment.amount.currency)

    # --- ArStatementPort -------------------------------------------------------------------

    def ar_statements(self, subsidiary: str) -> list[ArCustomerStatement]:
        """Customers of the subsidiary with their invoices and balance, as NetSuite has them."""
        try:
            customers = list(self.query(customers_query(subsidiary)))
        except ValueError as exc:
            raise MappingMissingError(
                f"Subsidiary '{subsidiary}' is not a NetSuite subsidiary internal id",
                detail=str(exc),
                field="subsidiary",
                system=SYSTEM,
            ) from exc
        return statements_from_rows(
            customers, self.query(AR_TRANSACTIONS_QUERY), self._currency_code_or_fail
        )

    def _currency_code_or_fail(self, currency_id: str) -> str:
        code = self._currency_code(currency_id)
        if code is None:
            raise FatalError(
                f"NetSuite currency {currency_id} has no ISO code q2c can name",
                detail=f"currency internal id {currency_id!r}",
                system=SYSTEM,
            )
        return code

    # --- JournalPort -----------------------------------------------------------------------

    def post_journal(self, journal: JournalRequest, *, external_id: str) -> ErpRecordRef:
        """A journal entry, idempotent by ``external_id``; NetSuite refuses it unbalanced."""
        body = journal_body(journal)
        currencies = {m.currency for ln in journal.lines for m in (ln.debit, ln.credit) if m}
        for code in currencies:
            self._expect_currency(journal.currency_erp_id, code, f"Journal '{journal.memo}'")
        erp_id = self._upsert("journalEntry", external_id, body, replace=("line",))
        record = self.read_record("journalEntry", erp_id)
        return ErpRecordRef(erp_id=erp_id, external_id=external_id, number=record.get("tranId"))

    # --- ReferenceDataPort -----------------------------------------------------------------

    def exchange_rates(self, on: date) -> list[ExchangeRate]:
        """The rate in force on ``on`` for every currency pair the account has rates for."""
        return latest_rates(self.query(exchange_rates_query(on)))

    def tax_codes(self) -> list[TaxCode]:
        return [tax_code_from_row(row) for row in self.query(TAX_CODES_QUERY)]

    def items(self) -> list[Item]:
        return [item_from_row(row) for row in self.query(ITEMS_QUERY)]

    def currencies(self) -> dict[str, str]:
        """ISO-4217 code -> NetSuite currency internal id (active currencies)."""
        found = currencies_from_rows(self.query(CURRENCIES_QUERY))
        self._currencies.update({currency_id: code for code, currency_id in found.items()})
        return found

    # --- internals -------------------------------------------------------------------------

    def _expect_currency(self, currency_id: str, code: str, what: str) -> None:
        """Refuse, before posting, a currency id that is not the document's currency."""
        mapped = self._currency_code(currency_id)
        if mapped == code:
            return
        found = f"is {mapped}" if mapped else "does not exist"
        raise MappingMissingError(
            f"{what} is in {code}, but the NetSuite currency it was mapped to "
            f"(internal id {currency_id}) {found}",
            detail=f"currency id {currency_id} -> {mapped!r}, document currency {code}",
            suggested_fix="Map the currency to the NetSuite currency with that ISO code "
            "(q2c.yaml mappings), then replay.",
            field="currency",
            system=SYSTEM,
        )

    def _explain_refused_application(
        self, refused: ValidationError, body: dict[str, Any], payment: Payment
    ) -> Q2CError:
        """NetSuite's words for an over-application are a field range; say it in AR terms."""
        match = _APPLY_AMOUNT.match(refused.field or "")
        if match is None:
            return refused
        line = body["apply"]["items"][int(match.group(1))]
        invoice_id = str(line["doc"]["id"])
        applied = Money(line["amount"], payment.amount.currency)
        try:
            invoice = self.read_invoice(invoice_id)
        except Q2CError:
            return refused
        return ValidationError(
            f"Payment {payment.reference or payment.id} applies {applied} to NetSuite invoice "
            f"{invoice.number}, which has only {invoice.amount_remaining} left to pay",
            detail=refused.detail,
            suggested_fix=(
                "Check the payment's applications at the billing platform (an invoice paid "
                "twice, or a refund not yet recorded); apply the excess as customer credit, "
                "then replay."
            ),
            field=refused.field,
            system=SYSTEM,
            context={
                **refused.context,
                "invoice_erp_id": invoice_id,
                "invoice_number": invoice.number,
                "amount_applied": str(applied.amount),
                "amount_remaining": str(invoice.amount_remaining.amount),
            },
        )
