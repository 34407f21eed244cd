"""Correlation identifier: one id follows a business transaction through every log line,
span and outbound call."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import structlog

__all__ = [
    "CORRELATION_HEADER",
    "bind_correlation",
    "current_correlation_id",
    "current_transaction_id",
]

CORRELATION_HEADER = "X-Correlation-ID"
_correlation: ContextVar[str | None] = ContextVar("q2c_correlation_id", default=None)
_transaction: ContextVar[str | None] = ContextVar("q2c_transaction_id", default=None)


def current_correlation_id() -> str | None:
    return _correlation.get()


@contextmanager
def bind_correlation(correlation_id: str | None = None, **fields: str) -> Iterator[str]:
    """Bind a correlation id (new if None) to this context and to structlog's contextvars."""
    cid = correlation_id or str(uuid.uuid4())
    token = _correlation.set(cid)
    transaction = _transaction.set(fields.get("transaction_id", _transaction.get()))
    with structlog.contextvars.bound_contextvars(correlation_id=cid, **fields):
        try:
            yield cid
        finally:
            _transaction.reset(transaction)
            _correlation.reset(token)


def current_transaction_id() -> str | None:
    """The transaction whose step is running in this context, if any."""
    return _transaction.get()
