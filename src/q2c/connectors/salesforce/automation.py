"""Org automation the emulator reproduces: what a real org derives or rolls up on save.

- Opportunity: IsWon / IsClosed / Probability follow StageName; setting SyncedQuoteId starts
  quote syncing (the quote must belong to the opportunity; Amount follows the quote total).
- Quote: AccountId and CurrencyIsoCode come from its opportunity; Subtotal, TotalPrice and
  LineItemCount roll up from its lines; IsSyncing mirrors Opportunity.SyncedQuoteId.
- QuoteLineItem: TotalPrice = Quantity x UnitPrice; LineNumber is an auto-number.
- Account: BillingCountry and BillingCountryCode fill each other, as with country picklists.
Roll-ups are system updates, so they bump the parent's SystemModstamp as Salesforce does.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from q2c.connectors.salesforce.countries import country_code, country_name
from q2c.connectors.salesforce.schema import STAGE_PROBABILITY, SObjectDef
from q2c.connectors.salesforce.wire import ApiError

if TYPE_CHECKING:
    from q2c.connectors.salesforce.state import Record, SalesforceState

__all__ = ["after_delete", "after_save", "before_save"]

_CENT = Decimal("0.01")


def before_save(
    state: SalesforceState, odef: SObjectDef, new: Record, old: Record | None, changes: Record
) -> None:
    handler = _BEFORE.get(odef.name)
    if handler is not None:
        handler(state, new, old, changes)


def after_save(state: SalesforceState, odef: SObjectDef, new: Record, old: Record | None) -> None:
    if odef.name == "QuoteLineItem":
        _roll_up_quote(state, new["QuoteId"])
    elif odef.name == "Opportunity":
        _sync_flags(state, new, old)


def after_delete(state: SalesforceState, odef: SObjectDef, old: Record) -> None:
    if odef.name == "QuoteLineItem" and old["QuoteId"] in state.table("Quote"):
        _roll_up_quote(state, old["QuoteId"])
    elif odef.name == "Quote":
        opp = state.table("Opportunity").get(old["OpportunityId"])
        if opp is not None and opp.get("SyncedQuoteId") == old["Id"]:
            state.save("Opportunity", opp["Id"], {"SyncedQuoteId": None}, system=True)


# --- before-save rules per object --------------------------------------------------------------


def _opportunity(state: SalesforceState, new: Record, old: Record | None, changes: Record) -> None:
    stage = new.get("StageName")
    if old is None or "StageName" in changes:
        new["IsClosed"] = stage in ("Closed Won", "Closed Lost")
        new["IsWon"] = stage == "Closed Won"
        if "Probability" not in changes and stage in STAGE_PROBABILITY:
            new["Probability"] = Decimal(STAGE_PROBABILITY[stage])
    quote_id = changes.get("SyncedQuoteId")
    if quote_id is not None:
        quote = state.table("Quote").get(quote_id)
        if quote is None or quote["OpportunityId"] != new["Id"]:
            raise ApiError.one(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "Quote ID: the quote to sync must belong to this opportunity",
                ["SyncedQuoteId"],
            )
        if quote.get("TotalPrice") is not None:
            new["Amount"] = quote["TotalPrice"]


def _quote(state: SalesforceState, new: Record, old: Record | None, changes: Record) -> None:
    opp = state.table("Opportunity").get(new["OpportunityId"] or "")
    if opp is not None:
        new["AccountId"] = opp.get("AccountId")
        new["CurrencyIsoCode"] = opp.get("CurrencyIsoCode")
        new["IsSyncing"] = opp.get("SyncedQuoteId") == new["Id"]
    if old is None:
        new.update(Subtotal=Decimal("0.00"), TotalPrice=Decimal("0.00"), LineItemCount=0)


def _quote_line(state: SalesforceState, new: Record, old: Record | None, changes: Record) -> None:
    quantity, price = new.get("Quantity"), new.get("UnitPrice")
    if quantity is not None and price is not None:
        new["TotalPrice"] = (quantity * price).quantize(_CENT, rounding=ROUND_HALF_UP)
    quote = state.table("Quote").get(new.get("QuoteId") or "")
    if quote is not None:
        new["CurrencyIsoCode"] = quote.get("CurrencyIsoCode")
    if old is None:
        new["LineNumber"] = f"{state.next_autonumber('QuoteLineItem'):08d}"


def _account(state: SalesforceState, new: Record, old: Record | None, changes: Record) -> None:
    if "BillingCountryCode" in changes and "BillingCountry" not in changes:
        code = changes["BillingCountryCode"]
        new["BillingCountry"] = country_name(code) if code else None
    elif "BillingCountry" in changes and "BillingCountryCode" not in changes:
        new["BillingCountryCode"] = country_code(changes["BillingCountry"])


_BEFORE: dict[str, Any] = {
    "Opportunity": _opportunity,
    "Quote": _quote,
    "QuoteLineItem": _quote_line,
    "Account": _account,
}


# --- roll-ups -------------------------------------------------------------------------------


def _roll_up_quote(state: SalesforceState, quote_id: str) -> None:
    lines = [r for r in state.table("QuoteLineItem").values() if r["QuoteId"] == quote_id]
    total = sum((r["TotalPrice"] or Decimal(0) for r in lines), Decimal("0.00"))
    state.save(
        "Quote",
        quote_id,
        {"Subtotal": total, "TotalPrice": total, "LineItemCount": len(lines)},
        system=True,
    )
    quote = state.table("Quote")[quote_id]
    opp = state.table("Opportunity").get(quote["OpportunityId"])
    if opp is not None and opp.get("SyncedQuoteId") == quote_id and opp.get("Amount") != total:
        state.save("Opportunity", opp["Id"], {"Amount": total}, system=True)


def _sync_flags(state: SalesforceState, new: Record, old: Record | None) -> None:
    before = old.get("SyncedQuoteId") if old else None
    after = new.get("SyncedQuoteId")
    if before == after:
        return
    quotes = state.table("Quote")
    if before is not None and before in quotes:
        state.save("Quote", before, {"IsSyncing": False}, system=True)
    if after is not None:
        state.save("Quote", after, {"IsSyncing": True}, system=True)
