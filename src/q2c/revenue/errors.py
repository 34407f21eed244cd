"""Revenue errors: every one needs a person to fix data, so all are business-fix errors.

    BusinessFixError (q2c.errors)
    ├── ValidationError
    │   └── RevenuePlanError                 inputs cannot make a schedule that sums to the value
    ├── NotFoundError
    │   └── UnknownMilestoneError            a completion names a milestone the schedule lacks
    ├── ChangeOrderBelowRecognizedError      the new value is below revenue already booked
    └── NoRemainingPeriodError               value is left but no open period can take it

The messages are written for the revenue accountant who works the exception queue.
"""

from __future__ import annotations

from q2c.errors import BusinessFixError, NotFoundError, ValidationError

__all__ = [
    "ChangeOrderBelowRecognizedError",
    "NoRemainingPeriodError",
    "RevenuePlanError",
    "UnknownMilestoneError",
]


class RevenuePlanError(ValidationError):
    default_fix = (
        "Correct the revenue inputs named in the message (milestones, effort plan, contract "
        "dates or value) at their source system, then replay."
    )


class UnknownMilestoneError(NotFoundError):
    default_fix = "Check the milestone number in the PSA against the contract's revenue plan."


class ChangeOrderBelowRecognizedError(BusinessFixError):
    """The change order would need revenue already booked to be taken back.

    Under ASC 606-10-25-13 a prospective modification only re-plans what is still to come;
    reducing revenue that was already recognized is a cumulative catch-up reversal, an
    accounting decision q2c does not take on its own.
    """

    default_fix = (
        "Book the cumulative catch-up reversal in the ERP after review by revenue accounting, "
        "or correct the change-order value, then replay."
    )


class NoRemainingPeriodError(BusinessFixError):
    default_fix = (
        "Extend the contract end date (or add a milestone) on the change order so the "
        "remaining value has a period to be recognized in, then replay."
    )
