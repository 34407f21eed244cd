"""Reference data sync (scheduled batch): the ERP's exchange rates, tax codes and items are
copied into the hub, where pricing, tax and posting read them.

    fetch_reference -> store_reference

A changed record becomes a new version of the hub's master record (the old one stays, so an
invoice rated last month can still be explained); an unchanged one writes nothing. The run is
scheduled by ``flows.reference_data_sync.schedule`` (crontab, UTC) in ``q2c.yaml``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection

from q2c.canonical.events import CloudEvent, ReferenceSyncRequested
from q2c.canonical.models import ExchangeRate, Item, TaxCode
from q2c.flows.services import Services
from q2c.runtime.flow import Flow, FlowKey, Step, StepContext, StepResult
from q2c.runtime.retry import RetryPolicy

__all__ = ["NAME", "build_flow", "exchange_rate_id", "tax_code_id"]

NAME = "reference_data_sync"


def exchange_rate_id(rate: ExchangeRate) -> str:
    return f"{rate.base}{rate.quote}:{rate.effective_date.isoformat()}"


def tax_code_id(code: TaxCode) -> str:
    return f"{code.legal_entity or '*'}:{code.code}"


def _key(event: CloudEvent, data: BaseModel) -> FlowKey:
    assert isinstance(data, ReferenceSyncRequested)
    return FlowKey(f"reference:{data.as_of.isoformat()}:{event.id}", 1, None)


def _services(context: StepContext) -> Services:
    return context.services  # type: ignore[no-any-return]


def fetch_reference(context: StepContext) -> dict[str, Any]:
    reference = _services(context).reference
    assert isinstance(context.data, ReferenceSyncRequested)
    return {
        "exchange_rates": [
            r.model_dump(mode="json") for r in reference.exchange_rates(context.data.as_of)
        ],
        "tax_codes": [c.model_dump(mode="json") for c in reference.tax_codes()],
        "items": [i.model_dump(mode="json") for i in reference.items()],
    }


def store_reference(context: StepContext) -> StepResult:
    records = _services(context).hub.records
    fetched = context.output_of("fetch_reference")
    rates = [ExchangeRate.model_validate(r) for r in fetched["exchange_rates"]]
    codes = [TaxCode.model_validate(c) for c in fetched["tax_codes"]]
    items = [Item.model_validate(i) for i in fetched["items"]]
    changed: dict[str, int] = {"exchange_rate": 0, "tax_code": 0, "item": 0}

    def write(connection: Connection) -> None:
        for rate in rates:
            changed["exchange_rate"] += records.save_if_changed_in(
                connection, "exchange_rate", rate, canonical_id=exchange_rate_id(rate)
            )
        for code in codes:
            changed["tax_code"] += records.save_if_changed_in(
                connection,
                "tax_code",
                code,
                canonical_id=tax_code_id(code),
                legal_entity=code.legal_entity,
            )
        for item in items:
            changed["item"] += records.save_if_changed_in(
                connection, "item", item, canonical_id=item.code
            )

    return StepResult(
        output={"exchange_rates": len(rates), "tax_codes": len(codes), "items": len(items)},
        writes=[write],
    )


def build_flow(policy: RetryPolicy | None = None) -> Flow:
    retry = policy or RetryPolicy()
    return Flow(
        name=NAME,
        triggers=("reference_data.sync_requested",),
        key=_key,
        steps=(
            Step("fetch_reference", fetch_reference, system="erp", retry=retry),
            Step("store_reference", store_reference, retry=retry),
        ),
    )
