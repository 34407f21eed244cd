"""The HTTP edge every REST connector shares.

``RestClient`` sends one request and turns the outcome into either a response or a
``q2c.errors`` error: transport failures, 5xx and 429 are retriable (429 carries Retry-After),
401/403 are auth errors, other 4xx go through the vendor's own error translator. It does not
retry: retries are declared per step and driven by the runtime. Authentication is an
``httpx.Auth`` (token refresh on 401 lives there), the correlation id goes out as a header, a
token bucket paces calls per connection, and every exchange can be recorded for payload history.
Every call is counted and timed (``q2c_vendor_calls_total``, ``q2c_vendor_call_seconds``) and,
with tracing on, gets a client span whose W3C ``traceparent`` goes out with the request.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from q2c.errors import AuthError, Q2CError, RateLimitedError, RetriableError
from q2c.mapping.value_maps import system_display_name
from q2c.observability import vendor_call_span
from q2c.runtime.context import CORRELATION_HEADER, current_correlation_id
from q2c.runtime.metrics import observe_vendor_call

__all__ = [
    "Exchange",
    "ExchangeRecorder",
    "RestClient",
    "TokenBucket",
    "parse_retry_after",
]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    return max(0.0, (when - current).total_seconds())


class TokenBucket:
    """Per-connection pacing: ``rate`` requests per second with bursts up to ``capacity``.

    Small enough to own; it waits only inside the connector edge, never in business code.
    """

    def __init__(
        self,
        rate: float,
        capacity: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("token bucket needs a positive rate and capacity")
        self.rate = rate
        self.capacity = capacity
        self._tokens = float(capacity)
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, waiting if needed; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait:
            self._sleep(wait)
        return wait


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request/response pair as payload history keeps it."""

    system: str
    method: str
    url: str
    request_headers: Mapping[str, str]
    request_body: bytes
    status: int | None
    response_headers: Mapping[str, str]
    response_body: bytes
    elapsed_ms: float
    correlation_id: str | None
    error: str | None = None


class ExchangeRecorder(Protocol):
    def __call__(self, exchange: Exchange) -> None: ...


ErrorTranslator = Callable[[httpx.Response], Q2CError]


class RestClient:
    """One connection to one vendor API."""

    def __init__(
        self,
        *,
        system: str,
        client: httpx.Client,
        translate_error: ErrorTranslator,
        auth: httpx.Auth | None = None,
        bucket: TokenBucket | None = None,
        recorder: ExchangeRecorder | None = None,
    ) -> None:
        self.system = system
        self.display = system_display_name(system)
        self.client = client
        self.translate_error = translate_error
        self.auth = auth
        self.bucket = bucket
        self.recorder = recorder

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        if self.bucket is not None:
            self.bucket.acquire()
        out_headers = dict(headers or {})
        correlation_id = current_correlation_id()
        if correlation_id:
            out_headers[CORRELATION_HEADER] = correlation_id
        request = self.client.build_request(
            method, url, json=json, params=params, data=data, content=content, headers=out_headers
        )
        started = time.perf_counter()
        with vendor_call_span(self.system, request) as call:
            try:
                response = self.client.send(request, auth=self.auth or httpx.USE_CLIENT_DEFAULT)
                response.read()
            except httpx.TimeoutException as exc:
                self._record(request, None, started, f"timeout: {exc}", "timeout")
                raise RetriableError(
                    f"{self.display} did not answer in time",
                    detail=f"{method} {request.url}: {type(exc).__name__}: {exc}",
                    system=self.system,
                ) from exc
            except httpx.TransportError as exc:
                self._record(request, None, started, f"transport: {exc}", "unreachable")
                raise RetriableError(
                    f"{self.display} could not be reached",
                    detail=f"{method} {request.url}: {type(exc).__name__}: {exc}",
                    system=self.system,
                ) from exc
            except Q2CError:
                raise
            self._record(request, response, started, None, str(response.status_code))
            call.response(response.status_code)
            if response.is_success:
                return response
            raise self._classify(response)

    def _classify(self, response: httpx.Response) -> Q2CError:
        status = response.status_code
        where = f"{response.request.method} {response.request.url} -> {status}"
        body = response.text[:2000]
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return RateLimitedError(
                f"{self.display} asked q2c to slow down (rate limit)",
                retry_after=retry_after,
                detail=f"{where}: {body}",
                system=self.system,
            )
        if status >= 500:
            return RetriableError(
                f"{self.display} had a server error ({status})",
                detail=f"{where}: {body}",
                system=self.system,
            )
        if status == 401:
            return AuthError(
                f"{self.display} rejected q2c's credentials",
                detail=f"{where}: {body}",
                system=self.system,
            )
        error = self.translate_error(response)
        if not error.detail:
            error.detail = f"{where}: {body}"
        error.system = error.system or self.system
        return error

    def _record(
        self,
        request: httpx.Request,
        response: httpx.Response | None,
        started: float,
        error: str | None,
        status: str,
    ) -> None:
        elapsed = time.perf_counter() - started
        observe_vendor_call(self.system, request.method, status, elapsed)
        if self.recorder is None:
            return
        self.recorder(
            Exchange(
                system=self.system,
                method=request.method,
                url=str(request.url),
                request_headers=dict(request.headers),
                request_body=request.content,
                status=response.status_code if response is not None else None,
                response_headers=dict(response.headers) if response is not None else {},
                response_body=response.content if response is not None else b"",
                elapsed_ms=elapsed * 1000,
                correlation_id=current_correlation_id(),
                error=error,
            )
        )
