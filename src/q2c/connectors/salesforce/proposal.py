"""Message translator: Salesforce records to the canonical ``Proposal`` (pure, no I/O).

Input is what ``SalesforceCrm.fetch_proposal`` reads: the Opportunity with its Account fields,
the opportunity's quotes, and the synced quote's lines with their product codes. Every gap a
finance operator could fix in Salesforce becomes a ``ValidationError`` naming the Salesforce
object, record id and field ("Opportunity 006... has no approved quote synced").
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import pydantic

from q2c.canonical.events import OpportunityClosedWon
from q2c.canonical.models import (
    Address,
    BillingModel,
    BillingTerms,
    Customer,
    Proposal,
    ProposalLine,
    RevenueMethod,
)
from q2c.canonical.money import MINOR_UNITS, Money
from q2c.connectors.salesforce.countries import country_code
from q2c.connectors.salesforce.wire import parse_datetime
from q2c.errors import ValidationError

__all__ = ["build_proposal", "closed_won_event", "parse_billing_model", "parse_revenue_method"]

SYSTEM = "salesforce"
Record = dict[str, Any]

_BILLING_ALIASES = {
    "t_and_m": BillingModel.TIME_AND_MATERIALS,
    "tm": BillingModel.TIME_AND_MATERIALS,
    "time_and_material": BillingModel.TIME_AND_MATERIALS,
    "fixed_price": BillingModel.FIXED_FEE,
    "fixed": BillingModel.FIXED_FEE,
    "milestones": BillingModel.MILESTONE,
    "recurring_retainer": BillingModel.RETAINER,
    "usage_based": BillingModel.USAGE,
}
_REVENUE_ALIASES = {
    "ratable": RevenueMethod.STRAIGHT_LINE,
    "straightline": RevenueMethod.STRAIGHT_LINE,
    "milestones": RevenueMethod.MILESTONE,
    "poc": RevenueMethod.PERCENT_COMPLETE,
    "percentage_of_completion": RevenueMethod.PERCENT_COMPLETE,
    "percent_of_completion": RevenueMethod.PERCENT_COMPLETE,
    "invoiced": RevenueMethod.AS_INVOICED,
}


def _invalid(message: str, *, field: str, record_id: str, detail: str = "") -> ValidationError:
    return ValidationError(
        message,
        field=field,
        system=SYSTEM,
        detail=detail or message,
        context={"record_id": record_id},
    )


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", value.lower().replace("&", " and ")).strip("_")


def parse_billing_model(value: str | None) -> BillingModel | None:
    """'Time and Materials', 'Time & Materials', 'T&M', 'time_and_materials' -> T&M, etc."""
    if not value:
        return None
    slug = _slug(value)
    try:
        return BillingModel(slug)
    except ValueError:
        return _BILLING_ALIASES.get(slug)


def parse_revenue_method(value: str | None) -> RevenueMethod | None:
    if not value:
        return None
    slug = _slug(value)
    try:
        return RevenueMethod(slug)
    except ValueError:
        return _REVENUE_ALIASES.get(slug)


def closed_won_event(record: Record) -> OpportunityClosedWon:
    """The ``opportunity.closed_won`` data of one queried Opportunity row."""
    currency = record.get("CurrencyIsoCode")
    amount = record.get("Amount")
    money = None
    if amount is not None and isinstance(currency, str) and currency in MINOR_UNITS:
        money = Money.of(amount, currency)
    close = record.get("CloseDate")
    quote = record.get("SyncedQuote") or {}
    account = record.get("Account") or {}
    version = quote.get("Q2C_Version__c")
    return OpportunityClosedWon(
        opportunity_id=record["Id"],
        account_id=record.get("AccountId"),
        quote_id=record.get("SyncedQuoteId"),
        amount=money,
        close_date=date.fromisoformat(close) if close else None,
        proposal_version=int(version) if version is not None and version >= 1 else 1,
        legal_entity=account.get("Legal_Entity__c") or None,
        crm=SYSTEM,
    )


def build_proposal(opportunity: Record, quotes: list[Record], lines: list[Record]) -> Proposal:
    """Assemble and validate the canonical Proposal; raises ``ValidationError`` on any gap."""
    opp_id = opportunity["Id"]
    label = f"Opportunity {opp_id} ('{opportunity.get('Name')}')"
    if not opportunity.get("IsWon"):
        raise _invalid(
            f"{label} is not Closed Won (its stage is '{opportunity.get('StageName')}')",
            field="StageName",
            record_id=opp_id,
        )
    account = opportunity.get("Account")
    if not opportunity.get("AccountId") or not isinstance(account, dict):
        raise _invalid(f"{label} has no account", field="AccountId", record_id=opp_id)
    synced_id = opportunity.get("SyncedQuoteId")
    quote = next((q for q in quotes if q["Id"] == synced_id), None)
    if synced_id is None or quote is None:
        raise _invalid(
            f"{label} has no approved quote synced", field="SyncedQuoteId", record_id=opp_id
        )
    quote_id = quote["Id"]
    if quote.get("Status") != "Approved":
        raise _invalid(
            f"Quote {quote_id} synced to {label} is '{quote.get('Status')}', not Approved",
            field="Status",
            record_id=quote_id,
        )
    currency = quote.get("CurrencyIsoCode") or opportunity.get("CurrencyIsoCode")
    if currency not in MINOR_UNITS:
        raise _invalid(
            f"{label} has no valid currency ({currency!r})",
            field="CurrencyIsoCode",
            record_id=opp_id,
        )
    quote_lines = [line for line in lines if line.get("QuoteId") == quote_id]
    if not quote_lines:
        raise _invalid(
            f"Quote {quote_id} synced to {label} has no line items",
            field="QuoteLineItems",
            record_id=quote_id,
        )
    customer = _customer(opportunity["AccountId"], account, currency)
    proposal_lines = [_line(i, line, currency) for i, line in enumerate(quote_lines, start=1)]
    total = quote.get("TotalPrice")
    try:
        return Proposal(
            id=quote_id,
            xrefs={SYSTEM: quote_id},
            version=_version(quote),
            opportunity_id=opp_id,
            name=str(quote.get("Name") or opportunity.get("Name") or quote_id),
            customer=customer,
            legal_entity=customer.legal_entity,
            currency=currency,
            billing_model=_required_enum(
                opportunity, "Billing_Model__c", parse_billing_model, label, BillingModel
            ),
            revenue_method=_required_enum(
                opportunity, "Revenue_Method__c", parse_revenue_method, label, RevenueMethod
            ),
            start_date=_required_date(opportunity, "Start_Date__c", label),
            end_date=_required_date(opportunity, "End_Date__c", label),
            department=_required_text(opportunity, "Department__c", label, opp_id),
            lines=proposal_lines,
            total=Money.of(total, currency)
            if total is not None
            else Money.total((line.amount for line in proposal_lines), currency),
            approved_at=parse_datetime(quote["LastModifiedDate"]),
            rate_card_id=opportunity.get("Rate_Card__c") or None,
            not_to_exceed=Money.of(opportunity["Not_To_Exceed__c"], currency)
            if opportunity.get("Not_To_Exceed__c") is not None
            else None,
            billing_terms=_billing_terms(opportunity, label, opp_id),
        )
    except pydantic.ValidationError as exc:
        raise _from_pydantic(exc, f"Quote {quote_id} on {label}", quote_id) from exc


def _billing_terms(opportunity: Record, label: str, record_id: str) -> BillingTerms | None:
    """``Billing_Terms__c`` holds the CPQ's billing terms as JSON; a malformed value is the
    CPQ admin's to fix, so it is reported with the field and the parser's reason."""
    raw = opportunity.get("Billing_Terms__c")
    if not raw:
        return None
    try:
        return BillingTerms.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "(document)"
        raise _invalid(
            f"{label} has billing terms that are not valid: {where}: {first.get('msg')}",
            field="Billing_Terms__c",
            record_id=record_id,
            detail=str(exc),
        ) from exc


def _customer(account_id: str, account: Record, currency: str) -> Customer:
    label = f"Account {account_id} ('{account.get('Name')}')"
    raw_country = account.get("BillingCountryCode") or account.get("BillingCountry")
    country = country_code(raw_country)
    if country is None:
        raise _invalid(
            f"{label} has no recognisable billing country ({raw_country!r}); use an ISO "
            "country name or code",
            field="BillingCountry",
            record_id=account_id,
        )
    legal_entity = account.get("Legal_Entity__c")
    if not legal_entity:
        raise _invalid(
            f"{label} has no legal entity", field="Legal_Entity__c", record_id=account_id
        )
    street, city = account.get("BillingStreet"), account.get("BillingCity")
    address = None
    if street and city:
        street_lines = [s.strip() for s in str(street).splitlines() if s.strip()]
        address = Address(
            line1=street_lines[0],
            line2=", ".join(street_lines[1:]) or None,
            city=city,
            region=account.get("BillingState"),
            postal_code=account.get("BillingPostalCode"),
            country=country,
        )
    try:
        return Customer(
            id=account_id,
            xrefs={SYSTEM: account_id},
            legal_name=str(account.get("Name") or ""),
            display_name=account.get("Name"),
            tax_id=account.get("Tax_Id__c"),
            country=country,
            currency=account.get("CurrencyIsoCode") or currency,
            legal_entity=legal_entity,
            billing_address=address,
            phone=account.get("Phone"),
            industry=account.get("Industry"),
        )
    except pydantic.ValidationError as exc:
        raise _from_pydantic(exc, label, account_id) from exc


def _line(number: int, line: Record, currency: str) -> ProposalLine:
    product = line.get("Product2") or {}
    code = product.get("ProductCode") if isinstance(product, dict) else None
    line_id = line.get("Id", "?")
    if not code:
        raise _invalid(
            f"Quote line {line_id} has no product code",
            field="Product2.ProductCode",
            record_id=line_id,
        )
    for name in ("Quantity", "UnitPrice", "TotalPrice"):
        if line.get(name) is None:
            raise _invalid(f"Quote line {line_id} has no {name}", field=name, record_id=line_id)
    return ProposalLine(
        line_no=number,
        service_item=code,
        description=line.get("Description") or product.get("Name") or "",
        role=line.get("Role__c"),
        quantity=line["Quantity"],
        unit_price=Money.of(line["UnitPrice"], currency),
        amount=Money.of(line["TotalPrice"], currency),
    )


def _version(quote: Record) -> int:
    raw = quote.get("Q2C_Version__c")
    if raw is None:
        return 1
    value = Decimal(raw) if isinstance(raw, int | str) else raw
    if not isinstance(value, Decimal) or value != value.to_integral_value() or value < 1:
        raise _invalid(
            f"Quote {quote['Id']} has an invalid Q2C version {raw!r}",
            field="Q2C_Version__c",
            record_id=quote["Id"],
        )
    return int(value)


def _required_text(record: Record, field: str, label: str, record_id: str) -> str:
    value = record.get(field)
    if not value:
        raise _invalid(
            f"{label} has no {field.removesuffix('__c').replace('_', ' ')}",
            field=field,
            record_id=record_id,
        )
    return str(value)


def _required_date(record: Record, field: str, label: str) -> date:
    value = _required_text(record, field, label, record["Id"])
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _invalid(
            f"{label} has an invalid {field}: {value!r}", field=field, record_id=record["Id"]
        ) from None


def _required_enum(record: Record, field: str, parse: Any, label: str, enum: Any) -> Any:
    value = _required_text(record, field, label, record["Id"])
    parsed = parse(value)
    if parsed is None:
        allowed = ", ".join(e.value for e in enum)
        raise _invalid(
            f"{label} has {field.removesuffix('__c').replace('_', ' ')} '{value}', "
            f"which q2c does not know (expected one of: {allowed})",
            field=field,
            record_id=record["Id"],
        )
    return parsed


def _from_pydantic(exc: pydantic.ValidationError, label: str, record_id: str) -> ValidationError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return ValidationError(
        f"{label} cannot become a q2c proposal: {where}: {first.get('msg')}",
        detail=str(exc),
        field=where or None,
        system=SYSTEM,
        context={"record_id": record_id},
    )
