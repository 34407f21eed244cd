"""Rate card publication: the CPQ (or billing) publishes a rate card version; the hub keeps
it, immutable once a billed line used it.

    publish_version

``RateCardBook`` enforces the rules: an identical re-publication is a no-op; a changed version
that billed lines already used is refused with "create version N+1 instead"; versions may not
overlap; a new version may not start before a date an older version already billed. The
business key carries a digest of the content, so a corrected, not yet used version is a new
transaction rather than a duplicate.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection

from q2c.canonical.events import CloudEvent
from q2c.canonical.models import RateCard
from q2c.flows.delivery_to_billing import rate_book
from q2c.flows.services import Services
from q2c.runtime.flow import Flow, FlowKey, Step, StepContext, StepResult
from q2c.runtime.jsonutil import dumps
from q2c.runtime.retry import RetryPolicy

__all__ = ["NAME", "build_flow"]

NAME = "rate_card_publication"


def _key(event: CloudEvent, data: BaseModel) -> FlowKey:
    assert isinstance(data, RateCard)
    digest = hashlib.sha256(dumps(data.model_dump(mode="json")).encode()).hexdigest()[:12]
    return FlowKey(f"{data.id}:v{data.version}:{digest}", 1, None)


def publish_version(context: StepContext) -> StepResult:
    services: Services = context.services
    hub = services.hub
    card = context.data
    assert isinstance(card, RateCard)
    book = rate_book(hub, card.id)  # raises a business error when the rules refuse it
    book.add_version(card)
    output: dict[str, Any] = {
        "rate_card_id": card.id,
        "version": card.version,
        "effective_from": card.effective_from.isoformat(),
    }

    def write(connection: Connection) -> None:
        hub.records.save_in(
            connection, "rate_card", card, canonical_id=card.id, version=card.version
        )

    return StepResult(output=output, writes=[write])


def build_flow(policy: RetryPolicy | None = None) -> Flow:
    return Flow(
        name=NAME,
        triggers=("rate_card.published",),
        key=_key,
        steps=(Step("publish_version", publish_version, retry=policy or RetryPolicy()),),
    )
