"""Canonical models: coherent documents, no unknown keys, and errors that say exactly what."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from q2c.canonical import models
from q2c.canonical.events import OpportunityClosedWon, PeriodClosed, ProjectActivated
from q2c.canonical.events import TransactionFailed as TransactionFailedData
from q2c.canonical.money import Money
from tests.canonical.factories import DELETE, MODEL_PAYLOADS, edit, usd

MODEL_CLASSES: dict[str, type[BaseModel]] = {
    **{name: getattr(models, name) for name in models.__all__},
    "OpportunityClosedWon": OpportunityClosedWon,
    "PeriodClosed": PeriodClosed,
    "ProjectActivated": ProjectActivated,
    "TransactionFailed": TransactionFailedData,
}


def only_error(model: type[BaseModel], payload: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(PydanticValidationError) as caught:
        model.model_validate(payload)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize("name", sorted(MODEL_PAYLOADS))
def test_every_factory_payload_is_valid_and_round_trips_through_json(name):
    model = MODEL_CLASSES[name]
    instance = model.model_validate(MODEL_PAYLOADS[name]())
    assert model.model_validate_json(instance.model_dump_json()) == instance


def test_every_public_model_has_a_factory():
    public = {
        name
        for name in models.__all__
        if isinstance(getattr(models, name), type) and issubclass(getattr(models, name), BaseModel)
    }
    assert public - set(MODEL_PAYLOADS) <= {
        "BillingScheduleLine",
        "ContractLine",
        "ExpenseTerms",  # inside BillingTerms
        "RetainerBillingTerms",
        "UsagePricing",
        "UsageTier",
        "InvoiceLine",
        "PaymentApplication",
        "RateCardLine",
        "RevenueEntry",
        "TaxLine",
    }


# --- proposal: the total is the sum of the lines ---------------------------------------------


def test_proposal_total_must_equal_the_sum_of_its_lines():
    error = only_error(
        models.Proposal, edit(MODEL_PAYLOADS["Proposal"](), "total", usd("26000.00"))
    )
    assert error["loc"] == ()
    assert error["type"] == "value_error"
    assert error["msg"] == (
        "Value error, total 26,000.00 USD differs from the sum of its lines 26,025.00 USD"
    )


def test_proposal_total_is_compared_after_rounding_to_the_minor_unit():
    payload = edit(MODEL_PAYLOADS["Proposal"](), "lines.1.amount", usd("6025.004"))
    assert models.Proposal.model_validate(payload).total == Money.of("26025.00", "USD")


def test_proposal_lines_must_be_in_the_proposal_currency():
    payload = edit(
        MODEL_PAYLOADS["Proposal"](), "lines.1.amount", {"amount": "6025.00", "currency": "EUR"}
    )
    error = only_error(models.Proposal, payload)
    assert error["loc"] == ()
    assert error["msg"] == "Value error, line 2 amount is in EUR, the proposal is in USD"


def test_proposal_total_must_be_in_the_proposal_currency():
    payload = edit(MODEL_PAYLOADS["Proposal"](), "total", {"amount": "26025.00", "currency": "GBP"})
    assert only_error(models.Proposal, payload)["msg"] == (
        "Value error, total is in GBP, proposal in USD"
    )


def test_proposal_needs_at_least_one_line():
    error = only_error(models.Proposal, edit(MODEL_PAYLOADS["Proposal"](), "lines", []))
    assert error["loc"] == ("lines",)
    assert error["msg"] == "List should have at least 1 item after validation, not 0"


# --- dates are coherent ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "path", "value", "message"),
    [
        (
            "Proposal",
            "end_date",
            "2026-11-30",
            "end_date 2026-11-30 is before start_date 2026-12-01",
        ),
        (
            "Contract",
            "end_date",
            "2026-11-30",
            "end_date 2026-11-30 is before start_date 2026-12-01",
        ),
        (
            "Project",
            "end_date",
            "2026-11-30",
            "end_date 2026-11-30 is before start_date 2026-12-01",
        ),
        ("RateCard", "effective_to", "2026-12-31", "effective_to is before effective_from"),
        (
            "Invoice",
            "due_date",
            "2027-01-30",
            "due_date 2027-01-30 is before issue_date 2027-01-31",
        ),
        (
            "PeriodClosed",
            "period_end",
            "2026-10-31",
            "period_end 2026-10-31 is before period_start 2026-11-01",
        ),
    ],
)
def test_end_dates_cannot_precede_start_dates(name, path, value, message):
    error = only_error(MODEL_CLASSES[name], edit(MODEL_PAYLOADS[name](), path, value))
    assert error["loc"] == ()
    assert error["msg"] == f"Value error, {message}"


def test_revenue_entry_period_is_coherent():
    payload = edit(MODEL_PAYLOADS["RevenueSchedule"](), "entries.0.period_end", "2026-11-30")
    error = only_error(models.RevenueSchedule, payload)
    assert error["loc"] == ("entries", 0)
    assert error["msg"] == ("Value error, period_end 2026-11-30 is before period_start 2026-12-01")


def test_same_day_start_and_end_is_fine():
    payload = edit(MODEL_PAYLOADS["Project"](), "end_date", "2026-12-01")
    assert models.Project.model_validate(payload).end_date.isoformat() == "2026-12-01"


def test_open_ended_project_and_rate_card_are_fine():
    assert models.Project.model_validate(edit(MODEL_PAYLOADS["Project"](), "end_date", None))
    assert models.RateCard.model_validate(edit(MODEL_PAYLOADS["RateCard"](), "effective_to", None))


def test_dates_must_be_dates():
    error = only_error(
        models.Project, edit(MODEL_PAYLOADS["Project"](), "start_date", "2026-13-01")
    )
    assert error["loc"] == ("start_date",)
    assert error["msg"].startswith("Input should be a valid date")


# --- other document rules --------------------------------------------------------------------


def test_invoice_total_is_subtotal_plus_tax():
    error = only_error(models.Invoice, edit(MODEL_PAYLOADS["Invoice"](), "total", usd("1608.70")))
    assert error["loc"] == ()
    assert error["msg"] == (
        "Value error, total 1,608.70 USD is not subtotal 1,500.00 USD + tax 108.75 USD"
    )


def test_invoice_in_mixed_currencies_is_refused():
    payload = edit(
        MODEL_PAYLOADS["Invoice"](), "tax_total", {"amount": "108.75", "currency": "EUR"}
    )
    assert only_error(models.Invoice, payload)["msg"] == "Value error, cannot combine USD with EUR"


def test_rate_card_rates_are_in_its_currency():
    payload = edit(MODEL_PAYLOADS["RateCard"](), "lines.0.rate", {"amount": "1", "currency": "EUR"})
    assert only_error(models.RateCard, payload)["msg"] == (
        "Value error, rate for CONSULT-SR is not in USD"
    )


# --- unknown keys are refused, by name --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "path", "loc"),
    [
        ("Customer", "nickname", ("nickname",)),
        ("Customer", "billing_address.colour", ("billing_address", "colour")),
        ("Proposal", "lines.1.discount", ("lines", 1, "discount")),
        ("Proposal", "customer.vat", ("customer", "vat")),
        ("Invoice", "tax_lines.0.jurisdiction", ("tax_lines", 0, "jurisdiction")),
        ("PeriodClosed", "closed_by", ("closed_by",)),
    ],
)
def test_extra_fields_are_refused_with_the_field_named(name, path, loc):
    error = only_error(MODEL_CLASSES[name], edit(MODEL_PAYLOADS[name](), path, "x"))
    assert error["loc"] == loc
    assert error["type"] == "extra_forbidden"
    assert error["msg"] == "Extra inputs are not permitted"


# --- precise field errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "path", "value", "loc", "msg"),
    [
        ("Customer", "legal_name", DELETE, ("legal_name",), "Field required"),
        ("Customer", "legal_name", "", ("legal_name",), "String should have at least 1 character"),
        ("Customer", "country", "USA", ("country",), "String should match pattern '^[A-Z]{2}$'"),
        (
            "Customer",
            "currency",
            "usd",
            ("currency",),
            "Value error, unknown currency 'usd': use an active ISO-4217 code such as USD",
        ),
        ("Customer", "tax_id", "X" * 41, ("tax_id",), "String should have at most 40 characters"),
        (
            "Customer",
            "status",
            "deleted",
            ("status",),
            "Input should be 'prospect', 'active', 'on_hold' or 'inactive'",
        ),
        (
            "Customer",
            "credit_limit",
            {"amount": 5000.0, "currency": "USD"},
            ("credit_limit",),
            'amount must be a decimal string such as "1250.00", got the floating-point number '
            "5000.0; floats cannot represent every cent exactly",
        ),
        ("Customer", "id", "", ("id",), "String should have at least 1 character"),
        (
            "Proposal",
            "billing_model",
            "hourly",
            ("billing_model",),
            "Input should be 'time_and_materials', 'fixed_fee', 'milestone', 'retainer' or 'usage'",
        ),
        ("Proposal", "version", 0, ("version",), "Input should be greater than or equal to 1"),
        (
            "Proposal",
            "lines.0.quantity",
            "-1",
            ("lines", 0, "quantity"),
            "Value error, must not be negative, got -1",
        ),
        (
            "Proposal",
            "lines.0.quantity",
            1.5,
            ("lines", 0, "quantity"),
            'Value error, value must be a decimal string such as "1250.00", got the '
            "floating-point number 1.5; floats cannot represent every cent exactly",
        ),
        (
            "Proposal",
            "customer.country",
            "us",
            ("customer", "country"),
            "String should match pattern '^[A-Z]{2}$'",
        ),
        (
            "BillingEvent",
            "kind",
            "overtime",
            ("kind",),
            "Input should be 'time', 'expense', 'milestone', 'usage', 'retainer_period' or "
            "'fixed_fee_installment'",
        ),
        (
            "TaxCode",
            "rate",
            "seven",
            ("rate",),
            "Value error, value 'seven' is not a decimal number",
        ),
    ],
)
def test_validation_errors_are_precise(name, path, value, loc, msg):
    error = only_error(MODEL_CLASSES[name], edit(MODEL_PAYLOADS[name](), path, value))
    assert error["loc"] == loc
    assert error["msg"] == msg


def test_models_are_immutable_and_strip_whitespace():
    customer = models.Customer.model_validate(
        edit(MODEL_PAYLOADS["Customer"](), "legal_name", "  Globex Corporation  ")
    )
    assert customer.legal_name == "Globex Corporation"
    with pytest.raises(PydanticValidationError) as caught:
        customer.legal_name = "Initech"  # type: ignore[misc]
    assert caught.value.errors()[0]["type"] == "frozen_instance"


def test_canonical_objects_carry_schema_version_and_xrefs():
    customer = models.Customer.model_validate(MODEL_PAYLOADS["Customer"]())
    assert customer.schema_version == 1
    assert customer.xrefs == {"salesforce": "001A000001"}


def test_decimals_serialise_as_fixed_point_strings():
    tax = models.TaxCode.model_validate(edit(MODEL_PAYLOADS["TaxCode"](), "rate", "7.25E-2"))
    assert tax.model_dump(mode="json")["rate"] == "0.0725"
