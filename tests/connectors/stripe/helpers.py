"""Helpers shared by the Stripe tests: a controllable clock, a raw wire client, builders."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import httpx

from q2c.canonical.models import Customer
from q2c.canonical.money import Money
from q2c.connectors.stripe import forms
from q2c.connectors.stripe.adapter import StripeBilling
from q2c.flows.ports import BillingLine

START = 1_767_225_600  # 2026-01-01T00:00:00Z
DUE = date(2026, 2, 28)


@dataclass
class Clock:
    """Account time the tests move by hand (Stripe's ``created`` is whole seconds)."""

    now: float = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Wire:
    """Raw Stripe requests (form-encoded, bearer auth), for emulator-level tests."""

    http: httpx.Client
    api_key: str
    headers: dict[str, str] = field(default_factory=dict)

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", **self.headers, **(extra or {})}

    def post(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        extra = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        if key is not None:
            extra["Idempotency-Key"] = key
        return self.http.post(
            path, content=forms.encode(params or {}), headers=self._headers(extra)
        )

    def get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        query = forms.encode(params) if params else ""
        return self.http.get(path + (f"?{query}" if query else ""), headers=self._headers(None))

    def delete(self, path: str) -> httpx.Response:
        return self.http.delete(path, headers=self._headers(None))

    def ok(self, response: httpx.Response) -> dict[str, Any]:
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def error_of(response: httpx.Response) -> dict[str, Any]:
    """Stripe's error object, after checking the envelope."""
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["type"] and error["message"]
    return error


def customer(customer_id: str = "C-1", **overrides: Any) -> Customer:
    values: dict[str, Any] = {
        "id": customer_id,
        "legal_name": f"Customer {customer_id} Ltd",
        "country": "US",
        "currency": "USD",
        "legal_entity": "US01",
        "email": f"ap+{customer_id.lower()}@example.com",
    }
    values.update(overrides)
    return Customer(**values)


def line(
    external_id: str,
    amount: str,
    *,
    currency: str = "USD",
    quantity: str = "1",
    unit_price: str | None = None,
    tax_code: str | None = None,
    tax_rate: str | None = None,
    service_item: str = "CONSULT-SR",
    metadata: dict[str, str] | None = None,
) -> BillingLine:
    extra = dict(metadata or {})
    if tax_rate is not None:
        extra["q2c_tax_rate"] = tax_rate
    return BillingLine(
        external_id=external_id,
        description=f"Services {external_id}",
        service_item=service_item,
        quantity=Decimal(quantity),
        unit_price=Money.of(unit_price or amount, currency),
        amount=Money.of(amount, currency),
        period_start=date(2026, 1, 1),
        period_end=date(2026, 1, 31),
        tax_code=tax_code,
        metadata=extra,
    )


def new_draft(
    billing: StripeBilling,
    customer_id: str,
    key: str,
    *,
    currency: str = "USD",
    contract_id: str = "K-1",
) -> str:
    """A billing run's empty draft invoice (the first step: lines go onto it afterwards)."""
    return billing.create_invoice(
        customer_id,
        external_id=key,
        currency=currency,
        due_date=DUE,
        memo=f"Run {key}",
        metadata={"q2c_legal_entity": "US01", "q2c_contract_id": contract_id},
    )
