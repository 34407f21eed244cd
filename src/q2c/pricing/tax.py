"""Tax by legal entity and nexus, line- or document-level rounding, and the invoice builder.

Which code applies to a line (first match wins):

1. the line's own ``tax_code`` (an exemption, say), looked up for the legal entity;
2. the nexus mapping ``(legal_entity, nexus) -> code``;
3. the one tax code whose ``jurisdiction`` equals the nexus and whose ``legal_entity`` is the
   billing entity, else the one with no legal entity (shared by all entities).

A code row with ``legal_entity`` set applies to that entity only; ``rate`` is a fraction
(0.0725 = 7.25 %). No code, or several candidates → MappingMissingError.

Rounding (``rounding=``):

- ``"line"``: each line's tax = round(line amount * rate); a tax line per code sums them.
- ``"document"``: per code, base = sum of line amounts, tax = round(base * rate), once; lines
  carry no tax amount of their own.

In both, subtotal = sum of line amounts (already rounded), tax total = sum of the tax lines,
total = subtotal + tax total, exactly. Per code the two modes differ by at most half a minor
unit per line (|Σ round(xᵢ) - round(Σ xᵢ)| ≤ n/2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal, NamedTuple

import pydantic

from q2c.canonical.models import Invoice, InvoiceLine, TaxCode, TaxLine
from q2c.canonical.money import Money, RoundingMode
from q2c.errors import MappingMissingError, ValidationError
from q2c.pricing.rating import RatedLine, line_amount

__all__ = [
    "TaxResult",
    "TaxRounding",
    "TaxTable",
    "TaxedLine",
    "apply_tax",
    "invoice_from_lines",
]

TaxRounding = Literal["line", "document"]


class TaxTable:
    """Tax codes (reference data from the ERP) and the nexus mapping; read-only."""

    def __init__(
        self,
        codes: Iterable[TaxCode],
        nexus_map: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        self._codes: dict[tuple[str, str | None], TaxCode] = {}
        for code in codes:
            key = (code.code, code.legal_entity)
            if key in self._codes and self._codes[key] != code:
                raise ValidationError(
                    f"Tax code {code.code} is defined twice for legal entity "
                    f"{code.legal_entity or '(all)'}",
                    field="code",
                )
            self._codes[key] = code
        self._nexus = dict(nexus_map or {})

    def code(self, code: str, *, legal_entity: str) -> TaxCode:
        """A tax code as it applies to one legal entity (its own row, else the shared row)."""
        found = self._codes.get((code, legal_entity)) or self._codes.get((code, None))
        if found is None:
            raise MappingMissingError(
                f"Tax code {code!r} does not exist for legal entity {legal_entity}",
                suggested_fix="Sync tax codes from the ERP or correct the line's tax code.",
                context={"tax_code": code, "legal_entity": legal_entity},
            )
        return found

    def code_for(
        self, *, legal_entity: str, nexus: str, line_tax_code: str | None = None
    ) -> TaxCode:
        """The tax code for a line billed by ``legal_entity`` in ``nexus`` (rules above)."""
        if line_tax_code is not None:
            return self.code(line_tax_code, legal_entity=legal_entity)
        mapped = self._nexus.get((legal_entity, nexus))
        if mapped is not None:
            return self.code(mapped, legal_entity=legal_entity)
        for owner in (legal_entity, None):
            matches = sorted(
                (
                    c
                    for c in self._codes.values()
                    if c.jurisdiction == nexus and c.legal_entity == owner
                ),
                key=lambda c: c.code,
            )
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                names = ", ".join(c.code for c in matches)
                raise MappingMissingError(
                    f"Several tax codes apply to legal entity {legal_entity} in nexus "
                    f"{nexus!r} ({names}); map one in the nexus mapping",
                    context={"legal_entity": legal_entity, "nexus": nexus},
                )
        raise MappingMissingError(
            f"No tax code for legal entity {legal_entity} in nexus {nexus!r}",
            suggested_fix="Add the tax code for this nexus in the ERP (then sync) or map it "
            "in q2c.yaml, then replay.",
            context={"legal_entity": legal_entity, "nexus": nexus},
        )


@dataclass(frozen=True, slots=True)
class TaxedLine:
    """A rated line with its tax code; ``tax_amount`` is None under document rounding."""

    line: RatedLine
    tax_code: str
    tax_rate: Decimal
    tax_amount: Money | None


class TaxResult(NamedTuple):
    lines: tuple[TaxedLine, ...]
    tax_lines: list[TaxLine]
    subtotal: Money
    tax_total: Money
    total: Money
    rounding: TaxRounding


def apply_tax(
    lines: Iterable[RatedLine],
    *,
    table: TaxTable,
    legal_entity: str,
    nexus: str,
    rounding: TaxRounding = "line",
    mode: RoundingMode = "half_up",
    currency: str | None = None,
) -> TaxResult:
    """Tax every line, build one tax line per code, and the document totals."""
    rated = list(lines)
    if currency is None:
        if not rated:
            raise ValueError("apply_tax needs lines or an explicit currency")
        currency = rated[0].currency
    taxed: list[TaxedLine] = []
    bases: dict[str, tuple[TaxCode, Money, Money]] = {}
    for line in rated:
        if line.currency != currency:
            raise ValidationError(
                f"Line for {line.service_item} is in {line.currency}, the invoice in {currency}",
                field="currency",
            )
        code = table.code_for(legal_entity=legal_entity, nexus=nexus, line_tax_code=line.tax_code)
        tax = line_amount(code.rate, line.amount, mode) if rounding == "line" else None
        taxed.append(TaxedLine(line, code.code, code.rate, tax))
        _, base, summed = bases.get(code.code, (code, Money.zero(currency), Money.zero(currency)))
        bases[code.code] = (code, base + line.amount, summed + (tax or Money.zero(currency)))
    tax_lines = []
    for name in sorted(bases):
        code, base, summed = bases[name]
        amount = summed if rounding == "line" else line_amount(code.rate, base, mode)
        tax_lines.append(TaxLine(tax_code=name, rate=code.rate, base=base, amount=amount))
    subtotal = Money.total((line.amount for line in rated), currency)
    tax_total = Money.total((t.amount for t in tax_lines), currency)
    return TaxResult(tuple(taxed), tax_lines, subtotal, tax_total, subtotal + tax_total, rounding)


def invoice_from_lines(
    result: TaxResult,
    *,
    invoice_id: str,
    customer_id: str,
    legal_entity: str,
    issue_date: date,
    due_date: date,
    contract_id: str | None = None,
    number: str | None = None,
) -> Invoice:
    """A canonical Invoice from taxed lines; its own validator checks the totals again."""
    if not result.lines:
        raise ValidationError(
            f"Invoice {invoice_id} has no lines to bill",
            field="lines",
            context={"invoice_id": invoice_id},
        )
    lines = [
        InvoiceLine(
            line_no=i,
            description=t.line.description,
            service_item=t.line.service_item,
            quantity=t.line.quantity,
            unit_price=t.line.unit_price,
            amount=t.line.amount,
            tax_code=t.tax_code,
            tax_amount=t.tax_amount,
            billing_event_ids=list(t.line.billing_event_ids),
            rate_card_id=t.line.rate_card_id,
            rate_card_version=t.line.rate_card_version,
        )
        for i, t in enumerate(result.lines, start=1)
    ]
    try:
        return Invoice(
            id=invoice_id,
            number=number,
            customer_id=customer_id,
            contract_id=contract_id,
            legal_entity=legal_entity,
            currency=result.subtotal.currency,
            issue_date=issue_date,
            due_date=due_date,
            lines=lines,
            tax_lines=result.tax_lines,
            tax_rounding=result.rounding,
            subtotal=result.subtotal,
            tax_total=result.tax_total,
            total=result.total,
        )
    except pydantic.ValidationError as exc:
        raise ValidationError(
            f"Invoice {invoice_id} is not valid: {exc.errors()[0]['msg']}",
            detail=str(exc),
            context={"invoice_id": invoice_id},
        ) from exc
