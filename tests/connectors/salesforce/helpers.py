"""Helpers shared by the Salesforce tests: raw REST access to the emulator, a seeded deal."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx

from q2c.connectors.salesforce import SalesforceSandbox
from q2c.connectors.salesforce.seed import seed_closed_won_deal

V = "/services/data/v62.0"


class OrgApi:
    """Raw REST access to the emulator with a valid session (for emulator behaviour tests)."""

    def __init__(self, sandbox: SalesforceSandbox, client: httpx.Client) -> None:
        self.sandbox = sandbox
        self.client = client
        self.token = self.login()

    def login(self) -> str:
        response = self.client.post(
            "/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.sandbox.client_id,
                "client_secret": self.sandbox.client_secret,
            },
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        url = path if path.startswith("/services/") else f"{V}/{path.lstrip('/')}"
        return self.client.request(method, url, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.call("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.call("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.call("DELETE", path, **kwargs)

    def query(self, soql: str, **kwargs: Any) -> httpx.Response:
        return self.get("query", params={"q": soql}, **kwargs)


def seed_deal(sandbox: SalesforceSandbox, **overrides: Any) -> dict[str, Any]:
    """A realistic won deal: two roles on a T&M engagement, in EUR, for a German customer."""
    params: dict[str, Any] = {
        "account_name": "Nordwind Logistik GmbH",
        "tax_id": "DE811234567",
        "country": "Germany",
        "currency": "EUR",
        "legal_entity": "EU01",
        "department": "Consulting-EMEA",
        "billing_model": "Time and Materials",
        "revenue_method": "As Invoiced",
        "lines": [
            ("SVC-ARCH", "Solution architect", "Architect", 40, "185.50"),
            ("SVC-DEV", "Developer", "Developer", "120.5", "99.99"),
        ],
        "start": date(2026, 12, 1),
        "end": date(2027, 5, 31),
        "billing_street": "Hafenstrasse 12\nGebaeude B",
        "billing_city": "Hamburg",
        "billing_postal_code": "20457",
    }
    params.update(overrides)
    return seed_closed_won_deal(sandbox.state, **params)
