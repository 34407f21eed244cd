"""Revenue recognition domain (ASC 606 / IFRS 15), pure: no I/O, no clock.

- ``schedules``: plan a contract's revenue by straight-line, milestone, percent-complete or
  as-invoiced, always exact to the minor unit;
- ``recognition``: recognize what is due by a date, as journal-ready deferred → earned entries
  with idempotency keys;
- ``change_orders``: re-plan the unrecognized rest of a schedule for a new contract value.
"""

from q2c.revenue.change_orders import apply_change_order
from q2c.revenue.errors import (
    ChangeOrderBelowRecognizedError,
    NoRemainingPeriodError,
    RevenuePlanError,
    UnknownMilestoneError,
)
from q2c.revenue.recognition import MilestoneCompleted, RecognitionEntry, recognize
from q2c.revenue.schedules import (
    EffortPeriod,
    Invoiced,
    Milestone,
    plan_schedule,
    schedule_version,
    update_progress,
)

__all__ = [
    "ChangeOrderBelowRecognizedError",
    "EffortPeriod",
    "Invoiced",
    "Milestone",
    "MilestoneCompleted",
    "NoRemainingPeriodError",
    "RecognitionEntry",
    "RevenuePlanError",
    "UnknownMilestoneError",
    "apply_change_order",
    "plan_schedule",
    "recognize",
    "schedule_version",
    "update_progress",
]
