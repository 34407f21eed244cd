"""Scheduled flows: a crontab (UTC) turned into trigger events for the inbox.

Each fire time becomes an event whose id is the schedule name and the fire time, so several
workers ticking the same schedule produce one event the inbox accepts once — no leader
election needed. Missed fire times (the hub was down) coalesce into one run at the latest.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel
from sqlalchemy import Engine

from q2c.canonical.events import new_event
from q2c.runtime.inbox import Inbox, Receipt
from q2c.runtime.poller import Watermarks

__all__ = ["FlowSchedule"]


class FlowSchedule:
    def __init__(
        self,
        db: Engine,
        inbox: Inbox,
        *,
        name: str,
        crontab: str,
        event_type: str,
        data: Callable[[datetime], BaseModel],
        now: Callable[[], datetime],
    ) -> None:
        self.inbox = inbox
        self.name = f"schedule:{name}"
        self.trigger = CronTrigger.from_crontab(crontab, timezone=UTC)
        self.event_type = event_type
        self.data = data
        self.now = now
        self._marks = Watermarks(db, now)

    def next_fire_after(self, moment: datetime) -> datetime:
        fire: datetime = self.trigger.get_next_fire_time(None, moment + timedelta(seconds=1))
        return fire.astimezone(UTC)

    def poll(self) -> list[Receipt]:
        """Emit the trigger event if a fire time has passed since the last one (the worker
        polls schedules like it polls systems)."""
        now = self.now()
        mark = self._marks.get(self.name)
        if mark is None:  # first start: begin from now, do not replay the past
            self._marks.save(self.name, now.isoformat())
            return []
        due: datetime | None = None
        fire = self.next_fire_after(datetime.fromisoformat(mark))
        while fire <= now:
            due, fire = fire, self.next_fire_after(fire)
        if due is None:
            return []
        event = new_event(
            self.event_type,
            self.data(due),
            source="urn:q2c:scheduler",
            subject=self.name,
            event_id=f"{self.name}@{due.isoformat()}",
        )
        receipts = self.inbox.accept([event])
        self._marks.save(self.name, due.isoformat())
        return receipts
