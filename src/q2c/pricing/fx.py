"""Currency conversion with the exchange rate effective on the document date (pure).

Rules:

- A canonical ``ExchangeRate`` says: one ``base`` is worth ``rate`` ``quote``.
- The rate used for ``A→B`` on a date is the direct ``A→B`` row with the latest
  ``effective_date`` on or before that date. Only when no direct row is effective is the latest
  effective ``B→A`` row used, inverted (``1 / rate``).
- Arithmetic runs in a Decimal context of 28 significant digits (independent of the caller's
  context); the converted amount is rounded **once**, at the end, to the target currency's
  minor unit (half-up unless told otherwise).
- The same currency converts at exactly 1 without needing a row.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import date
from decimal import Decimal, localcontext

from q2c.canonical.models import ExchangeRate
from q2c.canonical.money import Money, RoundingMode
from q2c.errors import BusinessFixError, ValidationError

__all__ = ["FX_PRECISION", "ExchangeRateTable"]

FX_PRECISION = 28
"""Significant digits used for every FX multiplication and inversion."""


class ExchangeRateTable:
    """Exchange rates by pair and effective date; read-only once built."""

    def __init__(self, rates: Iterable[ExchangeRate]) -> None:
        by_pair: dict[tuple[str, str], dict[date, Decimal]] = {}
        for row in rates:
            if row.base == row.quote:
                raise ValidationError(
                    f"Exchange rate {row.base}→{row.quote} converts a currency to itself",
                    field="quote",
                )
            if row.rate <= 0:
                raise ValidationError(
                    f"Exchange rate {row.base}→{row.quote} on {row.effective_date} must be "
                    f"positive, got {row.rate}",
                    field="rate",
                )
            dated = by_pair.setdefault((row.base, row.quote), {})
            known = dated.get(row.effective_date)
            if known is not None and known != row.rate:
                raise ValidationError(
                    f"Two {row.base}→{row.quote} exchange rates for {row.effective_date}: "
                    f"{known} and {row.rate}",
                    field="rate",
                )
            dated[row.effective_date] = row.rate
        self._dates = {pair: sorted(d) for pair, d in by_pair.items()}
        self._rates = by_pair

    def _latest(self, base: str, quote: str, on: date) -> Decimal | None:
        dates = self._dates.get((base, quote))
        if not dates:
            return None
        i = bisect_right(dates, on)
        return self._rates[(base, quote)][dates[i - 1]] if i else None

    def rate(self, from_currency: str, to_currency: str, on: date) -> Decimal:
        """Units of ``to_currency`` per one ``from_currency`` effective on ``on``."""
        if from_currency == to_currency:
            return Decimal(1)
        direct = self._latest(from_currency, to_currency, on)
        if direct is not None:
            return direct
        reverse = self._latest(to_currency, from_currency, on)
        if reverse is not None:
            with localcontext() as ctx:
                ctx.prec = FX_PRECISION
                return Decimal(1) / reverse
        raise BusinessFixError(
            f"No {from_currency}→{to_currency} exchange rate effective on {on}",
            detail=f"no {from_currency}/{to_currency} or {to_currency}/{from_currency} row "
            f"with effective_date on or before {on}",
            suggested_fix="Load the exchange rate in the ERP (reference-data sync), then replay.",
            context={"from": from_currency, "to": to_currency, "on": on.isoformat()},
        )

    def convert(
        self, money: Money, to_currency: str, on: date, *, rounding: RoundingMode = "half_up"
    ) -> Money:
        """``money`` in ``to_currency`` at the rate effective on ``on``, rounded once."""
        return self.convert_exact(money, to_currency, on).rounded(rounding)

    def convert_exact(self, money: Money, to_currency: str, on: date) -> Money:
        """Like ``convert`` but unrounded (28 significant digits), for unit prices."""
        rate = self.rate(money.currency, to_currency, on)
        with localcontext() as ctx:
            ctx.prec = FX_PRECISION
            return Money(money.amount * rate, to_currency)
