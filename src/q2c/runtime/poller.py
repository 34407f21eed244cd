"""Polling consumer for CRMs without push: closed-won opportunities since a watermark.

Each opportunity becomes an ``opportunity.closed_won`` CloudEvent whose id is the opportunity
and proposal version, so a re-poll (our own write-back bumps SystemModstamp) is a duplicate
the inbox drops. The watermark is saved only after the events are in the inbox: a crash in
between means a re-poll, never a loss.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from q2c.canonical.events import new_event
from q2c.flows.ports import CrmPort
from q2c.runtime.inbox import Inbox, Receipt
from q2c.store.schema import watermarks

__all__ = ["ClosedWonPoller"]


class ClosedWonPoller:
    def __init__(
        self, db: Engine, inbox: Inbox, crm: CrmPort, *, now: Callable[[], datetime]
    ) -> None:
        self.db = db
        self.inbox = inbox
        self.crm = crm
        self.now = now
        self.name = f"{crm.system}:opportunity.closed_won"

    def watermark(self) -> str | None:
        with self.db.connect() as connection:
            return connection.execute(
                select(watermarks.c.value).where(watermarks.c.name == self.name)
            ).scalar_one_or_none()

    def poll(self) -> list[Receipt]:
        page = self.crm.closed_won_since(self.watermark())
        events = [
            new_event(
                "opportunity.closed_won",
                opportunity,
                source=f"urn:q2c:{self.crm.system}:poller",
                subject=opportunity.opportunity_id,
                event_id=f"{opportunity.opportunity_id}:v{opportunity.proposal_version}",
            )
            for opportunity in page.opportunities
        ]
        receipts = self.inbox.accept(events)
        if page.watermark is not None:
            self._save(page.watermark)
        return receipts

    def _save(self, value: str) -> None:
        now = self.now()
        with self.db.begin() as connection:
            dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(watermarks).values(
                name=self.name, value=value, updated_at=now
            )
            connection.execute(
                statement.on_conflict_do_update(
                    index_elements=["name"], set_={"value": value, "updated_at": now}
                )
            )
