"""Payload history: every inbound and outbound payload, redacted, kept for a retention period.

Authorization headers, cookies and API keys are always redacted; configured PII fields
(``payload_history.redact_fields``) are redacted wherever they occur in a JSON or form body.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from sqlalchemy import Connection, Engine, delete, insert, select

from q2c.connectors.http import Exchange
from q2c.runtime.jsonutil import dumps, loads
from q2c.store.schema import payloads

__all__ = ["FLUSH_EVERY", "REDACTED", "PayloadHistory", "Redactor"]

FLUSH_EVERY = 64

REDACTED = "***redacted***"
_SECRET_HEADERS = {
    "authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "proxy-authorization",
    # webhook signatures: not secrets, but replayable within the tolerance window
    "stripe-signature",
    "x-q2c-signature",
    "x-hubspot-signature-v3",
}
_SECRET_KEYS = {
    "access_token",
    "refresh_token",
    "client_secret",
    "client_assertion",
    "assertion",
    "password",
    "token_secret",
    "consumer_secret",
    "private_key",
    "secret",
    "api_key",
    "webhook_secret",
}


class Redactor:
    def __init__(self, fields: Iterable[str] = ()) -> None:
        self.keys = {f.lower() for f in fields} | _SECRET_KEYS

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {k: (REDACTED if k.lower() in _SECRET_HEADERS else v) for k, v in headers.items()}

    def value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: (REDACTED if str(k).lower() in self.keys else self.value(v))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value

    def _may_name_a_secret(self, text: str) -> bool:
        """False when no key to redact can occur in the JSON ``text``: none is in its
        lower-cased text, and no escape (``\\u0070assword``) can spell one. Walking every
        vendor answer for keys cost a tenth of an in-process call."""
        if "\\" in text:
            return True
        lowered = text.lower()
        return any(key in lowered for key in self.keys)

    def body(self, body: bytes | str | None) -> str | None:
        if not body:
            return None
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        else:
            return dumps(self.value(parsed) if self._may_name_a_secret(text) else parsed)
        if "=" in text and " " not in text.strip():
            pairs = parse_qsl(text, keep_blank_values=True)
            if pairs:
                return urlencode([(k, REDACTED if k.lower() in self.keys else v) for k, v in pairs])
        return text


class PayloadHistory:
    def __init__(
        self,
        engine: Engine,
        *,
        now: Callable[[], datetime],
        retention: timedelta = timedelta(days=90),
        redactor: Redactor | None = None,
        transaction_id: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.engine = engine
        self.now = now
        self.retention = retention
        self.redactor = redactor or Redactor()
        self.transaction_id = transaction_id
        self._pending: list[dict[str, Any]] = []
        self._pending_lock = threading.Lock()

    def record_exchange(self, exchange: Exchange) -> None:
        """``ExchangeRecorder`` for connectors: one outbound call to a vendor.

        Rows are written in small batches: when the calls of one transaction end (the next
        call belongs to another), every ``FLUSH_EVERY`` calls, and on ``flush()`` (the worker
        loop, every reader here, ``Hub.close``). One commit per call cost about 3 ms, a third
        of an in-process vendor call. A process crash can lose the copies of the calls not yet
        flushed, never business data: the journal and the ledgers are written by the steps.
        """
        now = self.now()
        row = {
            "direction": "outbound",
            "system": exchange.system,
            "correlation_id": exchange.correlation_id,
            "transaction_id": self.transaction_id(),
            "operation": f"{exchange.method} {exchange.url}"[:1000],
            "status": exchange.status,
            "elapsed_ms": int(exchange.elapsed_ms),
            "request_headers": dumps(self.redactor.headers(exchange.request_headers)),
            "request_body": self.redactor.body(exchange.request_body),
            "response_headers": dumps(self.redactor.headers(exchange.response_headers)),
            "response_body": self.redactor.body(exchange.response_body),
            "error": exchange.error,
            "created_at": now,
            "expires_at": now + self.retention,
        }
        with self._pending_lock:
            other = bool(self._pending) and (
                self._pending[-1]["transaction_id"] != row["transaction_id"]
                or row["transaction_id"] is None
            )
        if other:
            self.flush()
        with self._pending_lock:
            self._pending.append(row)
            full = len(self._pending) >= FLUSH_EVERY
        if full:
            self.flush()

    def flush(self) -> int:
        """Write the buffered outbound exchanges; returns how many."""
        with self._pending_lock:
            rows, self._pending = self._pending, []
        if rows:
            with self.engine.begin() as connection:
                connection.execute(insert(payloads), rows)
        return len(rows)

    def record_inbound(
        self,
        *,
        system: str,
        operation: str,
        body: bytes | str,
        correlation_id: str | None,
        headers: Mapping[str, str] | None = None,
        status: int | None = None,
        error: str | None = None,
    ) -> None:
        """One payload received; ``error`` says why it was refused (kept so nothing is lost)."""
        now = self.now()
        with self.engine.begin() as connection:
            connection.execute(
                insert(payloads).values(
                    direction="inbound",
                    system=system,
                    correlation_id=correlation_id,
                    operation=operation[:1000],
                    status=status,
                    request_headers=dumps(self.redactor.headers(headers or {})),
                    request_body=self.redactor.body(body),
                    error=error,
                    created_at=now,
                    expires_at=now + self.retention,
                )
            )

    def for_correlation(self, correlation_id: str) -> list[dict[str, Any]]:
        self.flush()
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(payloads)
                .where(payloads.c.correlation_id == correlation_id)
                .order_by(payloads.c.id)
            )
            return [dict(r._mapping) for r in rows]

    def record_correction_in(
        self,
        connection: Connection,
        *,
        system: str,
        transaction_id: str,
        correlation_id: str | None,
        by: str,
        reason: str,
        before: Any,
        after: Any,
    ) -> int:
        """An operator's corrected payload (``direction="edit"``): who, why, before and after.

        Kept inside the caller's transaction, with the change it records."""
        now = self.now()
        result = connection.execute(
            insert(payloads).values(
                direction="edit",
                system=system,
                correlation_id=correlation_id,
                transaction_id=transaction_id,
                operation=f"edit-and-replay by {by}: {reason}"[:1000],
                request_headers=dumps({"edited-by": by, "reason": reason}),
                request_body=self.redactor.body(dumps(after)),
                response_body=self.redactor.body(dumps(before)),
                created_at=now,
                expires_at=now + self.retention,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def get(self, payload_id: int) -> dict[str, Any] | None:
        """One kept payload, redacted again under the current rules (fields added to
        ``redact_fields`` since it was kept are masked too)."""
        self.flush()
        with self.engine.connect() as connection:
            row = connection.execute(
                select(payloads).where(payloads.c.id == payload_id)
            ).one_or_none()
        if row is None:
            return None
        kept = dict(row._mapping)
        for key in ("request_headers", "response_headers"):
            if kept[key]:
                headers = loads(kept[key])
                kept[key] = self.redactor.headers(headers) if isinstance(headers, dict) else {}
            else:
                kept[key] = {}
        for key in ("request_body", "response_body"):
            kept[key] = self.redactor.body(kept[key])
        return kept

    def purge_expired(self) -> int:
        with self.engine.begin() as connection:
            return connection.execute(
                delete(payloads).where(payloads.c.expires_at <= self.now())
            ).rowcount
