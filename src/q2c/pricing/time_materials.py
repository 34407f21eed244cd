"""Time & materials: time at the rate card on the work date, expenses passed through.

Rules (recomputable by hand):

- **Time**: rate = the rate card line for the event's role / service item in the version
  effective on the work date (see ``rate_cards``). Line amount = round(hours * rate). When the
  rate card is in another currency than the contract, the unit price is the rate converted at
  the rate effective on the document date, unrounded; the amount is still round(hours * price).
- **Expenses**: billed amount = expense amount * (1 + markup % / 100), converted to the
  contract currency at the rate effective on the document date, rounded once. The line has
  quantity 1 and that amount as unit price. Expenses marked not billable, or in a non-billable
  category, produce no line and are reported in ``held`` (reason ``non_billable``); so does
  time marked not billable.
- **Not-to-exceed**: when the contract has one, the cap rule of ``rating`` applies to the
  time lines and (unless ``expenses_count_toward_cap`` is false) the expense lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, localcontext

from q2c.canonical.models import BillingEvent, BillingEventKind, Contract, RateCardLine
from q2c.canonical.money import Money, RoundingMode
from q2c.errors import BusinessFixError, ValidationError
from q2c.pricing.fx import ExchangeRateTable
from q2c.pricing.rate_cards import RateCardBook
from q2c.pricing.rating import HeldItem, RatedLine, RatingOutcome, apply_cap, line_amount

__all__ = ["ExpensePolicy", "rate_expense", "rate_time", "rate_time_and_materials"]


@dataclass(frozen=True, slots=True)
class ExpensePolicy:
    """How expenses are re-billed: one markup for all, some categories never billed."""

    markup_percent: Decimal = Decimal(0)
    non_billable_categories: frozenset[str] = field(default_factory=frozenset)
    service_item: str = "EXPENSE"

    def __post_init__(self) -> None:
        if not isinstance(self.markup_percent, Decimal):
            raise TypeError("markup_percent must be a Decimal, never a float")


def _convert(
    money: Money, currency: str, fx: ExchangeRateTable | None, on: date | None, *, exact: bool
) -> Money:
    if money.currency == currency:
        return money
    if fx is None or on is None:
        raise BusinessFixError(
            f"{money.currency} amount needs conversion to {currency} but no exchange rates "
            f"or document date were given",
            detail="pass fx= and document_date= to the rating call",
        )
    return fx.convert_exact(money, currency, on) if exact else fx.convert(money, currency, on)


def rate_time(
    event: BillingEvent,
    *,
    contract: Contract,
    book: RateCardBook,
    fx: ExchangeRateTable | None = None,
    document_date: date | None = None,
    rounding: RoundingMode = "half_up",
) -> RatedLine:
    """Price one approved time entry at the rate card effective on its work date."""
    if event.kind is not BillingEventKind.TIME:
        raise ValidationError(f"Billing event {event.id} is {event.kind}, not time", field="kind")
    if contract.rate_card_id is None:
        raise BusinessFixError(
            f"Contract {contract.number} has no rate card; time entry {event.id} cannot be rated",
            suggested_fix="Attach a rate card to the contract, then replay.",
            context={"contract_id": contract.id, "billing_event_id": event.id},
        )
    rate_line, version = book.rate_for(
        contract.rate_card_id, role=event.role, service_item=event.service_item, on=event.work_date
    )
    if rate_line.unit != event.unit:
        raise BusinessFixError(
            f"Time entry {event.id} is in {event.unit}s but rate card "
            f"{contract.rate_card_id!r} v{version} prices {rate_line.service_item} per "
            f"{rate_line.unit}",
            context={"billing_event_id": event.id, "rate_card_id": contract.rate_card_id},
        )
    unit_price = _convert(rate_line.rate, contract.currency, fx, document_date, exact=True)
    amount = line_amount(event.quantity, unit_price, rounding)
    return _time_line(event, contract, rate_line, version, unit_price, amount)


def _time_line(
    event: BillingEvent,
    contract: Contract,
    rate_line: RateCardLine,
    version: int,
    unit_price: Money,
    amount: Money,
) -> RatedLine:
    return RatedLine(
        billing_event_ids=(event.id,),
        contract_id=contract.id,
        kind=BillingEventKind.TIME,
        description=event.description or f"{event.role or rate_line.service_item} time",
        service_item=rate_line.service_item,
        quantity=event.quantity,
        unit_price=unit_price,
        amount=amount,
        work_date=event.work_date,
        rate_card_id=contract.rate_card_id,
        rate_card_version=version,
    )


class _TimeRater:
    """``rate_time`` for many entries of one contract: a month of time has a handful of
    (role, service item, work date) rates and (hours, unit price) amounts, so each is worked
    out once (measured: a third of the rating time per entry). Same checks, same errors, in
    the same order as ``rate_time``."""

    def __init__(
        self,
        contract: Contract,
        book: RateCardBook,
        fx: ExchangeRateTable | None,
        document_date: date | None,
        rounding: RoundingMode,
    ) -> None:
        self.contract = contract
        self.book = book
        self.fx = fx
        self.document_date = document_date
        self.rounding: RoundingMode = rounding
        self._prices: dict[tuple[str | None, str | None, date], tuple[RateCardLine, int, Money]]
        self._prices = {}
        self._amounts: dict[tuple[Decimal, Money], Money] = {}

    def rate(self, event: BillingEvent) -> RatedLine:
        contract = self.contract
        rate_card_id = contract.rate_card_id
        priced = self._prices.get((event.role, event.service_item, event.work_date))
        if rate_card_id is None or priced is None or priced[0].unit != event.unit:
            # first entry at this rate, or one rate_time refuses: rate_time says why
            line = rate_time(
                event,
                contract=contract,
                book=self.book,
                fx=self.fx,
                document_date=self.document_date,
                rounding=self.rounding,
            )
            rate_line, _ = self.book.rate_for(
                line.rate_card_id or "",
                role=event.role,
                service_item=event.service_item,
                on=event.work_date,
            )
            assert line.rate_card_version is not None
            self._prices[(event.role, event.service_item, event.work_date)] = (
                rate_line,
                line.rate_card_version,
                line.unit_price,
            )
            self._amounts[(event.quantity, line.unit_price)] = line.amount
            return line
        rate_line, version, unit_price = priced
        amount = self._amounts.get((event.quantity, unit_price))
        if amount is None:
            # equal quantities (0.5, 0.50) round to the same cents: one amount serves both
            amount = self._amounts[(event.quantity, unit_price)] = line_amount(
                event.quantity, unit_price, self.rounding
            )
        return _time_line(event, contract, rate_line, version, unit_price, amount)


def rate_expense(
    event: BillingEvent,
    *,
    contract: Contract,
    policy: ExpensePolicy,
    fx: ExchangeRateTable | None = None,
    document_date: date | None = None,
    rounding: RoundingMode = "half_up",
) -> RatedLine | HeldItem:
    """Pass an expense through (with markup), or report it as not billable."""
    if event.kind is not BillingEventKind.EXPENSE:
        raise ValidationError(f"Billing event {event.id} is {event.kind}, not an expense")
    if event.amount is None:
        raise ValidationError(f"Expense {event.id} has no amount", field="amount")
    category = event.expense_category
    excluded = {c.casefold() for c in policy.non_billable_categories}  # "Meals" is "meals"
    if not event.billable or (category is not None and category.casefold() in excluded):
        why = "marked not billable" if not event.billable else f"category {category!r}"
        return HeldItem(
            billing_event_ids=(event.id,),
            contract_id=contract.id,
            kind=BillingEventKind.EXPENSE,
            work_date=event.work_date,
            amount=event.amount,
            reason="non_billable",
            message=f"Expense {event.id} of {event.amount} on {event.work_date} is not "
            f"billable ({why}); no invoice line was created",
        )
    with localcontext() as ctx:
        ctx.prec = 28
        factor = 1 + policy.markup_percent / 100
        marked_up = Money(event.amount.amount * factor, event.amount.currency)
    amount = _convert(marked_up, contract.currency, fx, document_date, exact=True).rounded(rounding)
    return RatedLine(
        billing_event_ids=(event.id,),
        contract_id=contract.id,
        kind=BillingEventKind.EXPENSE,
        description=event.description or f"Expense: {category or 'other'}",
        service_item=event.service_item or policy.service_item,
        quantity=Decimal(1),
        unit_price=amount,
        amount=amount,
        work_date=event.work_date,
    )


def rest_line(event: BillingEvent, contract: Contract) -> RatedLine:
    """The unbilled rest of an entry a cap billed in part: its priced amount, as one unit, so
    the entry's parts add up to what it was rated at; the cap applies to it again."""
    assert event.priced_amount is not None
    amount = event.priced_amount
    if amount.currency != contract.currency:
        raise ValidationError(
            f"The rest of {event.rest_of} is priced in {amount.currency}, contract "
            f"{contract.number} bills in {contract.currency}",
            field="priced_amount",
        )
    return RatedLine(
        billing_event_ids=(event.id,),
        contract_id=contract.id,
        kind=event.kind,
        description=event.description,
        service_item=event.service_item or "",
        quantity=Decimal(1),
        unit_price=amount,
        amount=amount,
        work_date=event.work_date,
    )


def rate_time_and_materials(
    events: Iterable[BillingEvent],
    *,
    contract: Contract,
    book: RateCardBook,
    already_billed: Money | None = None,
    expense_policy: ExpensePolicy | None = None,
    fx: ExchangeRateTable | None = None,
    document_date: date | None = None,
    expenses_count_toward_cap: bool = True,
    rounding: RoundingMode = "half_up",
) -> RatingOutcome:
    """Rate approved time and expenses of one contract and apply its not-to-exceed cap."""
    policy = expense_policy or ExpensePolicy()
    time_rater = _TimeRater(contract, book, fx, document_date, rounding)
    capped: list[RatedLine] = []
    uncapped: list[RatedLine] = []
    held: list[HeldItem] = []
    for event in events:
        if event.contract_id is not None and event.contract_id != contract.id:
            raise ValidationError(
                f"Billing event {event.id} belongs to contract {event.contract_id}, "
                f"not {contract.id}",
                field="contract_id",
            )
        if event.priced_amount is not None:
            capped.append(rest_line(event, contract))
        elif event.kind is BillingEventKind.TIME and not event.billable:
            held.append(
                HeldItem(
                    billing_event_ids=(event.id,),
                    contract_id=contract.id,
                    kind=BillingEventKind.TIME,
                    work_date=event.work_date,
                    amount=None,
                    reason="non_billable",
                    message=f"Time entry {event.id} on {event.work_date} is marked not "
                    f"billable; no invoice line was created",
                )
            )
        elif event.kind is BillingEventKind.TIME:
            capped.append(time_rater.rate(event))
        elif event.kind is BillingEventKind.EXPENSE:
            rated = rate_expense(
                event,
                contract=contract,
                policy=policy,
                fx=fx,
                document_date=document_date,
                rounding=rounding,
            )
            if isinstance(rated, HeldItem):
                held.append(rated)
            else:
                (capped if expenses_count_toward_cap else uncapped).append(rated)
        else:
            raise ValidationError(
                f"Billing event {event.id} is {event.kind}; a time & materials contract bills "
                f"time and expenses only",
                field="kind",
            )
    if contract.not_to_exceed is None:
        outcome = RatingOutcome(tuple(capped))
    else:
        outcome = apply_cap(
            capped,
            contract_label=contract.number,
            cap=contract.not_to_exceed,
            already_billed=already_billed or Money.zero(contract.currency),
        )
    return outcome + RatingOutcome(tuple(uncapped), tuple(held))
