"""Seed a won deal into the emulated org the way a sales rep builds one.

The order matters and mirrors reality: account, products, an open opportunity, a draft quote
with its lines, the quote approved, then the opportunity synced to the quote and moved to
Closed Won. So the change events, timestamps and roll-ups (quote totals, opportunity amount)
come out as a real org would produce them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from q2c.connectors.salesforce.state import SalesforceState

__all__ = ["DealLine", "seed_closed_won_deal"]

DealLine = tuple[str, str, str | None, Decimal | int | str, Decimal | int | str]
"""(product_code, description, role, quantity, unit_price); numbers exact, never floats."""


def seed_closed_won_deal(
    state: SalesforceState,
    *,
    account_name: str,
    tax_id: str | None,
    country: str,
    currency: str,
    legal_entity: str,
    department: str,
    billing_model: str,
    revenue_method: str,
    lines: Sequence[DealLine],
    start: date,
    end: date,
    stage: str = "Closed Won",
    opportunity_name: str | None = None,
    close_date: date | None = None,
    quote_status: str = "Approved",
    version: int = 1,
    billing_street: str | None = "1 Main Street",
    billing_city: str | None = "Springfield",
    billing_postal_code: str | None = None,
    billing_state: str | None = None,
    industry: str | None = "Consulting",
    rate_card: str | None = None,
    not_to_exceed: Decimal | None = None,
    billing_terms: str | None = None,
) -> dict[str, Any]:
    """Create (or reuse) the account and products, then a synced, approved quote and the deal.

    The account is reused when one with the same tax id (or, without one, the same name)
    exists; products are reused by product code. Returns the ids: ``account_id``,
    ``opportunity_id``, ``quote_id``, ``product_ids`` (code -> id), ``quote_line_ids``.
    """
    with state.atomic():
        account_id = _account(
            state,
            account_name,
            tax_id,
            {
                "Name": account_name,
                "Tax_Id__c": tax_id,
                "BillingCountry": country,
                "BillingStreet": billing_street,
                "BillingCity": billing_city,
                "BillingPostalCode": billing_postal_code,
                "BillingState": billing_state,
                "CurrencyIsoCode": currency,
                "Legal_Entity__c": legal_entity,
                "Industry": industry,
            },
        )
        product_ids = {code: _product(state, code, description) for code, description, *_ in lines}
        opportunity_id = state.insert(
            "Opportunity",
            {
                "Name": opportunity_name or f"{account_name} - {department}",
                "AccountId": account_id,
                "StageName": "Negotiation/Review",
                "CloseDate": close_date or start,
                "CurrencyIsoCode": currency,
                "Department__c": department,
                "Billing_Model__c": billing_model,
                "Revenue_Method__c": revenue_method,
                "Start_Date__c": start,
                "End_Date__c": end,
                "Rate_Card__c": rate_card,
                "Not_To_Exceed__c": not_to_exceed,
                "Billing_Terms__c": billing_terms,
            },
        )
        quote_id = state.insert(
            "Quote",
            {
                "Name": opportunity_name or f"{account_name} - {department}",
                "OpportunityId": opportunity_id,
                "Q2C_Version__c": version,
            },
        )
        line_ids = [
            state.insert(
                "QuoteLineItem",
                {
                    "QuoteId": quote_id,
                    "Product2Id": product_ids[code],
                    "Description": description,
                    "Role__c": role,
                    "Quantity": quantity,
                    "UnitPrice": unit_price,
                },
            )
            for code, description, role, quantity, unit_price in lines
        ]
        state.update("Quote", quote_id, {"Status": quote_status})
        state.update("Opportunity", opportunity_id, {"SyncedQuoteId": quote_id})
        state.update("Opportunity", opportunity_id, {"StageName": stage})
    return {
        "account_id": account_id,
        "opportunity_id": opportunity_id,
        "quote_id": quote_id,
        "product_ids": product_ids,
        "quote_line_ids": line_ids,
    }


def _account(state: SalesforceState, name: str, tax_id: str | None, fields: dict[str, Any]) -> str:
    existing = state.find("Account", "Tax_Id__c", tax_id) if tax_id else []
    if not tax_id:
        existing = state.find("Account", "Name", name)
    if existing:
        return str(existing[0]["Id"])
    return state.insert("Account", {k: v for k, v in fields.items() if v is not None})


def _product(state: SalesforceState, code: str, description: str) -> str:
    existing = state.find("Product2", "ProductCode", code)
    if existing:
        return str(existing[0]["Id"])
    return state.insert(
        "Product2", {"Name": description or code, "ProductCode": code, "Family": "Services"}
    )
