"""Fault injection in front of a real server: an httpx transport that consults a FaultPlan.

The vendor emulators inject faults as ASGI middleware; Tryton is a real process, so the same
``FaultPlan`` is applied on the client side instead. A "timeout" forwards the request first
(Tryton applies the write) and then raises ``httpx.ReadTimeout``, the nastiest case for
idempotency; "rate_limit" and "server_error" answer without reaching Tryton.
"""

from __future__ import annotations

import json
import time

import httpx

from q2c.connectors.sandbox import FaultPlan


class FaultyTransport(httpx.BaseTransport):
    def __init__(self, plan: FaultPlan, inner: httpx.BaseTransport | None = None) -> None:
        self.plan = plan
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        fault = self.plan.next_for(request.method, request.url.path)
        if fault is None:
            return self.inner.handle_request(request)
        if fault.kind == "slow":
            time.sleep(fault.delay)
            return self.inner.handle_request(request)
        if fault.kind == "timeout":
            response = self.inner.handle_request(request)
            response.read()
            response.close()
            raise httpx.ReadTimeout("injected: no answer in time", request=request)
        status = fault.status or {"rate_limit": 429, "unavailable": 503}.get(fault.kind, 500)
        headers = {"content-type": "text/html"}
        if fault.kind == "rate_limit" and fault.retry_after is not None:
            headers["retry-after"] = str(int(fault.retry_after))
        body = json.dumps({"injected": fault.kind}).encode()
        return httpx.Response(status, headers=headers, content=body, request=request)

    def close(self) -> None:
        self.inner.close()
