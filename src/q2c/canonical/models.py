"""Canonical business objects, version 1.

Contract-first: these classes generate the JSON Schemas under ``contracts/v1/``; a change that
breaks a published schema needs a new version (``q2c contracts check``).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from q2c.canonical.base import (
    CanonicalModel,
    CanonicalObject,
    CurrencyCode,
    ExactDecimal,
    NonNegativeDecimal,
)
from q2c.canonical.money import Money

__all__ = [
    "Address",
    "BillingEvent",
    "BillingEventKind",
    "BillingModel",
    "BillingScheduleLine",
    "BillingTerms",
    "ChangeOrder",
    "Contract",
    "ContractLine",
    "Customer",
    "DimensionMap",
    "ExchangeRate",
    "ExpenseTerms",
    "Invoice",
    "InvoiceLine",
    "Item",
    "LegalEntity",
    "Payment",
    "PaymentApplication",
    "Project",
    "Proposal",
    "ProposalLine",
    "RateCard",
    "RateCardLine",
    "RetainerBillingTerms",
    "RevenueEntry",
    "RevenueMethod",
    "RevenueSchedule",
    "TaxCode",
    "TaxLine",
    "UsagePricing",
    "UsageTier",
]


class BillingModel(StrEnum):
    TIME_AND_MATERIALS = "time_and_materials"
    FIXED_FEE = "fixed_fee"
    MILESTONE = "milestone"
    RETAINER = "retainer"
    USAGE = "usage"


class RevenueMethod(StrEnum):
    STRAIGHT_LINE = "straight_line"
    MILESTONE = "milestone"
    PERCENT_COMPLETE = "percent_complete"
    AS_INVOICED = "as_invoiced"


class BillingEventKind(StrEnum):
    TIME = "time"
    EXPENSE = "expense"
    MILESTONE = "milestone"
    USAGE = "usage"
    RETAINER_PERIOD = "retainer_period"
    FIXED_FEE_INSTALLMENT = "fixed_fee_installment"


# --- parties -------------------------------------------------------------------------------


class Address(CanonicalModel):
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = None
    city: str = Field(min_length=1, max_length=100)
    region: str | None = None
    postal_code: str | None = None
    country: str = Field(pattern="^[A-Z]{2}$", description="ISO-3166 alpha-2")


class LegalEntity(CanonicalObject):
    code: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=200)
    country: str = Field(pattern="^[A-Z]{2}$")
    base_currency: CurrencyCode
    tax_id: str | None = None
    region: str | None = None
    business_unit: str | None = None


class Customer(CanonicalObject):
    legal_name: str = Field(min_length=1, max_length=200)
    display_name: str | None = None
    tax_id: str | None = Field(default=None, max_length=40)
    country: str = Field(pattern="^[A-Z]{2}$")
    currency: CurrencyCode
    legal_entity: str = Field(min_length=1, description="LegalEntity code that bills them")
    billing_address: Address | None = None
    email: str | None = None
    phone: str | None = None
    industry: str | None = None
    credit_limit: Money | None = None
    status: Literal["prospect", "active", "on_hold", "inactive"] = "active"


# --- commercial ----------------------------------------------------------------------------


class ExpenseTerms(CanonicalModel):
    markup_percent: NonNegativeDecimal = Decimal(0)
    non_billable_categories: list[str] = Field(default_factory=list)


class RetainerBillingTerms(CanonicalModel):
    """A recurring period fee that buys an hours allowance; unused hours roll over up to a cap,
    hours beyond the allowance are billed at the overage rate (true-up)."""

    period_fee: Money
    hours_allowance: NonNegativeDecimal
    overage_rate: Money | None = None
    rollover_cap_hours: NonNegativeDecimal = Decimal(0)


class UsageTier(CanonicalModel):
    up_to: ExactDecimal | None = Field(description="upper bound of the tier; null = open")
    unit_price: Money


class UsagePricing(CanonicalModel):
    mode: Literal["graduated", "volume"] = "graduated"
    tiers: list[UsageTier] = Field(min_length=1)
    service_item: str = "USAGE"


class BillingTerms(CanonicalModel):
    """How delivery is billed under a contract, beyond its billing model."""

    tax_code: str | None = Field(default=None, description="default tax code for its lines")
    payment_terms_days: int = Field(default=30, ge=0, le=365)
    expenses: ExpenseTerms = Field(default_factory=ExpenseTerms)
    expenses_count_toward_cap: bool = True
    retainer: RetainerBillingTerms | None = None
    usage: UsagePricing | None = None


class ProposalLine(CanonicalModel):
    line_no: int = Field(ge=1)
    service_item: str = Field(min_length=1)
    description: str = ""
    role: str | None = None
    quantity: NonNegativeDecimal
    unit_price: Money
    amount: Money


class Proposal(CanonicalObject):
    """An approved quote/proposal: scope and price as the CPQ published it, versioned."""

    version: int = Field(ge=1)
    opportunity_id: str
    name: str = Field(min_length=1, max_length=200)
    customer: Customer
    legal_entity: str
    currency: CurrencyCode
    billing_model: BillingModel
    revenue_method: RevenueMethod
    start_date: date
    end_date: date
    department: str = Field(min_length=1)
    lines: list[ProposalLine] = Field(min_length=1)
    total: Money
    not_to_exceed: Money | None = None
    approved_at: datetime
    rate_card_id: str | None = None
    billing_terms: BillingTerms | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Proposal:
        if self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        for line in self.lines:
            for name, money in (("unit_price", line.unit_price), ("amount", line.amount)):
                if money.currency != self.currency:
                    raise ValueError(
                        f"line {line.line_no} {name} is in {money.currency}, "
                        f"the proposal is in {self.currency}"
                    )
        if self.total.currency != self.currency:
            raise ValueError(f"total is in {self.total.currency}, proposal in {self.currency}")
        lines_total = Money.total((line.amount for line in self.lines), self.currency)
        if lines_total.rounded() != self.total.rounded():
            raise ValueError(f"total {self.total} differs from the sum of its lines {lines_total}")
        return self


class BillingScheduleLine(CanonicalModel):
    sequence: int = Field(ge=1)
    bill_date: date
    description: str
    amount: Money


class ContractLine(CanonicalModel):
    line_no: int = Field(ge=1)
    service_item: str
    description: str = ""
    role: str | None = None
    quantity: NonNegativeDecimal
    unit_price: Money
    amount: Money


class Contract(CanonicalObject):
    """The engagement: what was sold, how it is billed and how revenue is recognised."""

    number: str
    customer_id: str
    legal_entity: str
    currency: CurrencyCode
    billing_model: BillingModel
    revenue_method: RevenueMethod
    start_date: date
    end_date: date
    total_value: Money
    not_to_exceed: Money | None = None
    lines: list[ContractLine] = Field(min_length=1)
    billing_schedule: list[BillingScheduleLine] = Field(default_factory=list)
    rate_card_id: str | None = None
    rate_card_version: int | None = None
    department: str | None = None
    proposal_id: str | None = None
    proposal_version: int | None = None
    status: Literal["draft", "active", "suspended", "closed"] = "active"
    billing_terms: BillingTerms = Field(default_factory=BillingTerms)

    @model_validator(mode="after")
    def _coherent(self) -> Contract:
        if self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        return self


class ChangeOrder(CanonicalModel):
    """An approved modification of a contract, numbered 1, 2, 3... per contract.

    What it states replaces the contract's: ``total_value``, ``not_to_exceed``, ``end_date``,
    ``billing_terms``; ``added_lines`` are appended (and, unless ``total_value`` is stated,
    raise the contract value by their amounts). Applied prospectively from
    ``effective_date``: what was billed or recognized before stays.
    """

    contract_id: str = Field(min_length=1, max_length=200)
    change_number: int = Field(ge=1, description="1 for the first change order of a contract")
    effective_date: date
    total_value: Money | None = Field(default=None, description="the new contract value")
    not_to_exceed: Money | None = Field(default=None, description="the new not-to-exceed cap")
    end_date: date | None = None
    added_lines: list[ContractLine] = Field(default_factory=list)
    billing_terms: BillingTerms | None = None
    approved_by: str = Field(min_length=1, max_length=200)
    approved_at: datetime | None = None
    reason: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _changes_something(self) -> ChangeOrder:
        if (
            self.total_value is None
            and self.not_to_exceed is None
            and self.end_date is None
            and not self.added_lines
            and self.billing_terms is None
        ):
            raise ValueError(
                "a change order must change something: total_value, not_to_exceed, end_date, "
                "added_lines or billing_terms"
            )
        for name, money in (
            ("total_value", self.total_value),
            ("not_to_exceed", self.not_to_exceed),
        ):
            if money is not None and money.amount < 0:
                raise ValueError(f"{name} must not be negative, got {money}")
        return self


class Project(CanonicalObject):
    code: str
    name: str
    customer_id: str
    contract_id: str | None = None
    legal_entity: str
    start_date: date
    end_date: date | None = None
    department: str | None = None
    manager: str | None = None
    status: Literal["planned", "active", "on_hold", "closed"] = "active"

    @model_validator(mode="after")
    def _coherent(self) -> Project:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        return self


class RateCardLine(CanonicalModel):
    role: str | None = None
    service_item: str
    unit: Literal["hour", "day", "unit", "month"] = "hour"
    rate: Money


class RateCard(CanonicalObject):
    """One immutable version of a rate card; a change is a new version, never an edit."""

    name: str
    version: int = Field(ge=1)
    currency: CurrencyCode
    effective_from: date
    effective_to: date | None = None
    lines: list[RateCardLine] = Field(min_length=1)

    @model_validator(mode="after")
    def _coherent(self) -> RateCard:
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise ValueError("effective_to is before effective_from")
        for line in self.lines:
            if line.rate.currency != self.currency:
                raise ValueError(f"rate for {line.service_item} is not in {self.currency}")
        return self


# --- delivery and money --------------------------------------------------------------------


class BillingEvent(CanonicalObject):
    kind: BillingEventKind
    project_id: str
    contract_id: str | None = None
    work_date: date
    quantity: ExactDecimal = Field(
        default=Decimal(1),
        description="negative quantities are accepted here and refused by the billing flow "
        "with a business message, so a PSA correction is parked rather than lost",
    )
    unit: Literal["hour", "day", "unit", "month", "each"] = "hour"
    role: str | None = None
    service_item: str | None = None
    amount: Money | None = None
    description: str = ""
    expense_category: str | None = None
    billable: bool = True
    approved_at: datetime | None = None
    source_system: str | None = None
    percent: ExactDecimal | None = Field(
        default=None, description="a milestone billed as this percent of the contract value"
    )
    rest_of: str | None = Field(
        default=None,
        description="the entry whose unbilled rest this is, after a cap billed it in part",
    )
    priced_amount: Money | None = Field(
        default=None,
        description="the rest's amount in the contract currency, billed as is (not rated again)",
    )

    @model_validator(mode="after")
    def _rest_is_priced(self) -> BillingEvent:
        if (self.rest_of is None) != (self.priced_amount is None):
            raise ValueError("rest_of and priced_amount go together: the rest of a capped entry")
        return self


class TaxLine(CanonicalModel):
    tax_code: str
    rate: ExactDecimal
    base: Money
    amount: Money


class InvoiceLine(CanonicalModel):
    line_no: int = Field(ge=1)
    description: str
    service_item: str
    quantity: ExactDecimal
    unit_price: Money
    amount: Money
    tax_code: str | None = None
    tax_amount: Money | None = None
    billing_event_ids: list[str] = Field(default_factory=list)
    rate_card_id: str | None = None
    rate_card_version: int | None = None


class Invoice(CanonicalObject):
    number: str | None = None
    customer_id: str
    contract_id: str | None = None
    legal_entity: str
    currency: CurrencyCode
    issue_date: date
    due_date: date
    lines: list[InvoiceLine] = Field(min_length=1)
    tax_lines: list[TaxLine] = Field(default_factory=list)
    tax_rounding: Literal["line", "document"] = "line"
    subtotal: Money
    tax_total: Money
    total: Money
    status: Literal["draft", "finalized", "posted", "paid", "void"] = "finalized"

    @model_validator(mode="after")
    def _totals(self) -> Invoice:
        if self.due_date < self.issue_date:
            raise ValueError(f"due_date {self.due_date} is before issue_date {self.issue_date}")
        if (self.subtotal + self.tax_total).rounded() != self.total.rounded():
            raise ValueError(
                f"total {self.total} is not subtotal {self.subtotal} + tax {self.tax_total}"
            )
        return self


class PaymentApplication(CanonicalModel):
    invoice_id: str
    amount: Money


class Payment(CanonicalObject):
    customer_id: str
    amount: Money
    received_on: date
    method: Literal["card", "ach", "wire", "check", "sepa", "other"] = "other"
    reference: str | None = None
    applications: list[PaymentApplication] = Field(default_factory=list)


class RevenueEntry(CanonicalModel):
    period_start: date
    period_end: date
    amount: Money
    status: Literal["planned", "recognized"] = "planned"

    @model_validator(mode="after")
    def _coherent(self) -> RevenueEntry:
        if self.period_end < self.period_start:
            raise ValueError(
                f"period_end {self.period_end} is before period_start {self.period_start}"
            )
        return self


class RevenueSchedule(CanonicalObject):
    contract_id: str
    method: RevenueMethod
    total: Money
    entries: list[RevenueEntry] = Field(default_factory=list)


# --- reference data ------------------------------------------------------------------------


class TaxCode(CanonicalModel):
    code: str
    name: str
    rate: ExactDecimal
    jurisdiction: str
    legal_entity: str | None = None


class ExchangeRate(CanonicalModel):
    base: CurrencyCode
    quote: CurrencyCode
    rate: ExactDecimal = Field(description="units of quote per one unit of base")
    effective_date: date
    source: str = "erp"


class DimensionMap(CanonicalModel):
    dimension: Literal["department", "class", "location", "cost_centre", "subsidiary"]
    canonical_value: str
    system: str
    external_value: str
    legal_entity: str | None = None


class Item(CanonicalModel):
    code: str
    name: str
    kind: Literal["service", "expense", "fee", "usage"] = "service"
    unit: str = "hour"
    income_account: str | None = None
