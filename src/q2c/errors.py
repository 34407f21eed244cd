"""One error root for q2c, classified by what the runtime should do with it.

    Q2CError                      business-readable ``message`` + technical ``detail``
    ├── RetriableError            try again later (connection, timeout, 429, 5xx)
    │   └── RateLimitedError      the vendor said slow down; carries ``retry_after`` seconds
    ├── BusinessFixError          a person must fix data or configuration, then replay
    │   ├── ValidationError       the payload breaks the canonical contract
    │   ├── MappingMissingError   a value has no mapping for the target system
    │   ├── ApprovalRefusedError  an ERP approval check (credit, tax registration) failed
    │   ├── OwnershipError        a system wrote an object it does not own
    │   └── NotFoundError         a referenced record does not exist
    └── FatalError                a bug or a broken contract: stop, never retry
        ├── AuthError             credentials rejected by the vendor
        └── ConfigError           q2c.yaml is wrong

Adapters translate vendor errors into these at the edge (``raise ... from exc``) so that no
vendor type leaks into flows or the runtime.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApprovalRefusedError",
    "AuthError",
    "BusinessFixError",
    "ConfigError",
    "FatalError",
    "MappingMissingError",
    "NotFoundError",
    "OwnershipError",
    "Q2CError",
    "RateLimitedError",
    "RetriableError",
    "ValidationError",
]


class Q2CError(Exception):
    """Root of every q2c error.

    ``message`` is written for a finance operator; ``detail`` is for the engineer;
    ``suggested_fix`` tells the operator what to change before replaying.
    """

    kind = "fatal"
    default_fix = "Contact the integration team with the technical detail below."

    def __init__(
        self,
        message: str,
        *,
        detail: str = "",
        suggested_fix: str | None = None,
        system: str | None = None,
        field: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.suggested_fix = suggested_fix or self.default_fix
        self.system = system
        self.field = field
        self.context = dict(context or {})

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "error": type(self).__name__,
            "message": self.message,
            "detail": self.detail,
            "suggested_fix": self.suggested_fix,
            "system": self.system,
            "field": self.field,
            "context": self.context,
        }


class RetriableError(Q2CError):
    kind = "retriable"
    default_fix = "The system was unavailable; q2c retries automatically. Replay if it persists."


class RateLimitedError(RetriableError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class BusinessFixError(Q2CError):
    kind = "business_fix"
    default_fix = "Correct the data or configuration named in the message, then replay."


class ValidationError(BusinessFixError):
    default_fix = "Correct the field named in the message at its source system, then replay."


class MappingMissingError(BusinessFixError):
    default_fix = "Add the missing value mapping in q2c.yaml (mappings section), then replay."


class ApprovalRefusedError(BusinessFixError):
    default_fix = "Have credit control or tax review the customer in the ERP, then replay."


class OwnershipError(BusinessFixError):
    default_fix = "Change the write in the source system, or the ownership rule in q2c.yaml."


class NotFoundError(BusinessFixError):
    default_fix = "Create the referenced record in its system of record, then replay."


class FatalError(Q2CError):
    kind = "fatal"


class AuthError(FatalError):
    default_fix = "Check the connection's credentials (environment variables named in q2c.yaml)."


class ConfigError(FatalError):
    default_fix = "Correct q2c.yaml at the key named in the message."
