"""Correlation identifier: one id follows a business transaction through every log line,
span and outbound call."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import structlog

__all__ = ["CORRELATION_HEADER", "bind_correlation", "current_correlation_id"]

CORRELATION_HEADER = "X-Correlation-ID"
_correlation: ContextVar[str | None] = ContextVar("q2c_correlation_id", default=None)


def current_correlation_id() -> str | None:
    return _correlation.get()


@contextmanager
def bind_correlation(correlation_id: str | None = None, **fields: str) -> Iterator[str]:
    """Bind a correlation id (new if None) to this context and to structlog's contextvars."""
    cid = correlation_id or str(uuid.uuid4())
    token = _correlation.set(cid)
    with structlog.contextvars.bound_contextvars(correlation_id=cid, **fields):
        try:
            yield cid
        finally:
            _correlation.reset(token)
