"""Change Data Capture: OpportunityChangeEvent payloads to ``OpportunityClosedWon`` events.

Pure functions, no I/O. A change event arrives either as CometD / Streaming API JSON (field
names in ``changedFields``) or decoded from Pub/Sub API Avro, where ``changedFields`` is a
bitmap list (``['0x650004E0', '4-0x10']``) whose bits index the event schema's fields
(``GET sobjects/OpportunityChangeEvent/eventSchema``); pass that field order to decode it.

Only a CREATE or UPDATE whose StageName is (now) 'Closed Won' counts. Gap and overflow events
carry no field values: they mean "re-read the records", so they yield nothing here and the
poller (``SalesforceCrm.closed_won_since``) picks the records up. An amount delivered as an
Avro double is dropped rather than turned into an inexact Decimal; the proposal read via REST
is the source of money truth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from q2c.canonical.events import OpportunityClosedWon
from q2c.canonical.money import MINOR_UNITS, Money
from q2c.errors import ValidationError

__all__ = ["changed_fields", "encode_bitmap", "parse_opportunity_change_event"]

_EPOCH = date(1970, 1, 1)


def encode_bitmap(names: Sequence[str], field_order: Sequence[str]) -> list[str]:
    """The Pub/Sub bitmap form of a list of top-level field names (the inverse of decoding)."""
    value = 0
    for name in names:
        value |= 1 << list(field_order).index(name)
    return [f"0x{value:X}"] if value else []


def changed_fields(
    header: Mapping[str, Any],
    *,
    field_order: Sequence[str] | None = None,
    key: str = "changedFields",
) -> list[str]:
    """Field names from a header's changedFields (or nulledFields / diffFields): names or bitmaps.

    A nested bitmap (``'4-0x10'``) marks sub-fields of the compound field at position 4; it is
    reported as that compound field's name.
    """
    raw = list(header.get(key) or [])
    if not raw or not any(isinstance(v, str) and "0x" in v for v in raw):
        return [str(v) for v in raw]
    if field_order is None:
        raise ValidationError(
            "A Salesforce change event arrived with bitmap-encoded fields and no schema to "
            "decode them",
            detail=f"{key}={raw}; pass the event schema's field order "
            "(GET sobjects/OpportunityChangeEvent/eventSchema)",
            system="salesforce",
        )
    names: list[str] = []
    for entry in raw:
        parent, _, bitmap = str(entry).rpartition("-")
        if parent:
            names.append(field_order[int(parent)])
            continue
        value = int(bitmap, 16)
        names.extend(field_order[i] for i in range(value.bit_length()) if value >> i & 1)
    return list(dict.fromkeys(names))


def parse_opportunity_change_event(
    event: Mapping[str, Any], *, field_order: Sequence[str] | None = None
) -> list[OpportunityClosedWon]:
    """Closed-won opportunities announced by one change event (empty if it announces none).

    ``event`` is the CometD message (``{"payload": {...}, "event": {"replayId": ...}}``) or the
    decoded payload itself (``{"ChangeEventHeader": {...}, "StageName": ...}``).
    """
    payload = event if "ChangeEventHeader" in event else event.get("payload")
    if not isinstance(payload, Mapping) or not isinstance(
        payload.get("ChangeEventHeader"), Mapping
    ):
        raise ValidationError(
            "A Salesforce change event has no ChangeEventHeader",
            detail=f"event keys: {sorted(event)}",
            system="salesforce",
        )
    header = payload["ChangeEventHeader"]
    if header.get("entityName") != "Opportunity":
        return []
    change_type = header.get("changeType")
    if change_type not in ("CREATE", "UPDATE", "UNDELETE"):
        return []
    stage_is_won = payload.get("StageName") == "Closed Won"
    if change_type == "UPDATE":
        stage_is_won = stage_is_won and "StageName" in changed_fields(
            header, field_order=field_order
        )
    if not stage_is_won:
        return []
    return [
        OpportunityClosedWon(
            opportunity_id=str(record_id),
            account_id=_text(payload.get("AccountId")),
            quote_id=_text(payload.get("SyncedQuoteId")),
            amount=_amount(payload.get("Amount"), payload.get("CurrencyIsoCode")),
            close_date=_date(payload.get("CloseDate")),
            crm="salesforce",
        )
        for record_id in header.get("recordIds") or []
    ]


def _text(value: Any) -> str | None:
    return str(value) if value else None


def _amount(value: Any, currency: Any) -> Money | None:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        return None  # absent, or an Avro double that cannot be trusted to the cent
    if not isinstance(currency, str) or currency not in MINOR_UNITS:
        return None
    try:
        return Money.of(value, currency)
    except ValueError:
        return None


def _date(value: Any) -> date | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):  # Avro date: days since the epoch
        return _EPOCH + timedelta(days=value)
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None
