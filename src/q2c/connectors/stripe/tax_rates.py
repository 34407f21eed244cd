"""One Stripe tax rate per canonical tax code (and rate), found or created, cached.

Stripe tax rates are immutable once used: a code whose rate changes (a VAT rise) gets a new
tax rate object, and the previous one is archived (``active=false``) so nobody picks it by
mistake; items already sent keep the rate they were sent with. Rates are exclusive
(``inclusive=false``) and carry ``metadata[q2c_tax_code]``. The line's rate comes from the
flow (``metadata['q2c_tax_rate']``, a fraction: 0.19 = 19 %).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from q2c.connectors.stripe.payloads import TaxRateInfo
from q2c.connectors.stripe.rest import StripeRest, idempotency_key
from q2c.errors import MappingMissingError, ValidationError
from q2c.flows.ports import BillingLine

__all__ = ["TaxRateBook", "line_rate", "rate_info"]

SYSTEM = "stripe"
_FOUR_PLACES = Decimal("0.0001")


def rate_info(rate: Mapping[str, Any]) -> TaxRateInfo:
    metadata = rate.get("metadata") or {}
    return TaxRateInfo(
        rate_id=str(rate["id"]),
        tax_code=str(metadata.get("q2c_tax_code") or rate.get("display_name") or rate["id"]),
        percentage=Decimal(str(rate["percentage"])),
        active=bool(rate.get("active", True)),
    )


def line_rate(line: BillingLine) -> Decimal | None:
    """The tax rate (fraction) the flow put on the line, if any."""
    raw = line.metadata.get("q2c_tax_rate")
    if not raw:
        return None
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise ValidationError(
            f"Line {line.external_id} carries the tax rate {raw!r}, which is not a number",
            field="metadata[q2c_tax_rate]",
            system=SYSTEM,
        ) from None


class TaxRateBook:
    """The account's tax rates by id (archived ones too), loaded once and kept current."""

    def __init__(self, api: StripeRest) -> None:
        self.api = api
        self._rates: dict[str, TaxRateInfo] = {}
        self._loaded = False

    def all(self, *, refresh: bool = False) -> dict[str, TaxRateInfo]:
        if refresh or not self._loaded:
            self._rates = {str(r["id"]): rate_info(r) for r in self.api.list_all("/v1/tax_rates")}
            self._loaded = True
        return self._rates

    def for_lines(self, lines: Sequence[BillingLine]) -> dict[str, TaxRateInfo]:
        """The tax rate of every tax code on ``lines`` (one rate per code per batch)."""
        wanted: dict[str, Decimal | None] = {}
        for line in lines:
            if not line.tax_code:
                continue
            rate = line_rate(line)
            if line.tax_code in wanted and wanted[line.tax_code] != rate:
                raise ValidationError(
                    f"Tax code {line.tax_code} comes with two rates in one billing run "
                    f"({wanted[line.tax_code]} and {rate})",
                    field="tax_code",
                    system=SYSTEM,
                    suggested_fix="Re-sync tax codes from the ERP, then replay the run.",
                )
            wanted[line.tax_code] = rate
        return {code: self.ensure(code, rate) for code, rate in wanted.items()}

    def ensure(self, tax_code: str, fraction: Decimal | None) -> TaxRateInfo:
        """The active Stripe tax rate for a canonical tax code at ``fraction``."""
        active = [r for r in self.all().values() if r.tax_code == tax_code and r.active]
        if fraction is None:
            if len(active) == 1:
                return active[0]
            raise MappingMissingError(
                f"No tax rate is known for tax code {tax_code} in Stripe",
                detail=f"{len(active)} active Stripe tax rates carry q2c_tax_code={tax_code}",
                suggested_fix="Sync tax codes from the ERP so the line carries its rate, "
                "then replay.",
                field="tax_code",
                system=SYSTEM,
            )
        percentage = (fraction * 100).normalize()
        if percentage != percentage.quantize(_FOUR_PLACES) or not 0 <= percentage <= 100:
            raise ValidationError(
                f"Tax code {tax_code} has the rate {fraction}, which Stripe cannot hold "
                "(0 to 100 % with at most 4 decimal places)",
                field="tax_code",
                system=SYSTEM,
            )
        for rate in active:
            if rate.percentage == percentage:
                return rate
        text = format(percentage, "f")
        created = rate_info(
            self.api.post(
                "/v1/tax_rates",
                {
                    "display_name": tax_code[:50],
                    "description": f"q2c tax code {tax_code}",
                    "percentage": text,
                    "inclusive": False,
                    "metadata": {"q2c_tax_code": tax_code},
                },
                key=idempotency_key("tax_rate", tax_code, text),
            )
        )
        self._rates[created.rate_id] = created
        for old in active:
            self.api.post(
                f"/v1/tax_rates/{old.rate_id}",
                {"active": False},
                key=idempotency_key("tax_rate-archive", old.rate_id),
            )
            self._rates[old.rate_id] = TaxRateInfo(
                old.rate_id, old.tax_code, old.percentage, active=False
            )
        return created

    def by_id(self, rate_ids: set[str]) -> dict[str, TaxRateInfo]:
        """Rates for these ids, fetching any the cache has not seen (created elsewhere)."""
        rates = self.all()
        for rate_id in rate_ids - set(rates):
            self._rates[rate_id] = rate_info(self.api.get(f"/v1/tax_rates/{rate_id}"))
        return self._rates
