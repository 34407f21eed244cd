"""The adapter's view of Stripe's v1 wire: form-encoded writes, lists, search, keys.

``StripeRest`` sends through ``RestClient`` (auth, pacing, payload history, error
classification) and knows Stripe's conventions: POST bodies are form-encoded and carry an
``Idempotency-Key``; lists are paged with ``limit`` / ``starting_after`` while ``has_more``;
search results with ``page`` / ``next_page``. JSON is read with exact decimals (tax rate
percentages are JSON numbers).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import httpx

from q2c.connectors.http import RestClient
from q2c.connectors.stripe import forms
from q2c.errors import BusinessFixError, FatalError

__all__ = ["StripeRest", "idempotency_key", "search_literal"]

SYSTEM = "stripe"
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
MAX_IDEMPOTENCY_KEY = 255


def idempotency_key(*parts: str) -> str:
    """An Idempotency-Key from external ids; hashed past Stripe's 255 characters."""
    key = "q2c:" + ":".join(parts)
    if len(key) <= MAX_IDEMPOTENCY_KEY:
        return key
    return f"q2c:{parts[0]}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def search_literal(value: str) -> str:
    """A quoted string for Stripe's search query language."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


class StripeRest:
    """One Stripe account on the wire."""

    def __init__(self, rest: RestClient, *, base_url: str, page_size: int = 100) -> None:
        if not 1 <= page_size <= 100:
            raise ValueError("Stripe pages hold 1 to 100 objects")
        self.rest = rest
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        query = forms.encode(params) if params else ""
        return f"{self.base_url}{path}" + (f"?{query}" if query else "")

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(response.content, parse_float=Decimal)
        return body

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self._json(self.rest.request("GET", self.url(path, params)))

    def post(self, path: str, params: Mapping[str, Any], *, key: str) -> dict[str, Any]:
        headers = {**_FORM, "Idempotency-Key": key}
        body = forms.encode(params).encode()
        return self._json(self.rest.request("POST", self.url(path), content=body, headers=headers))

    def list_all(
        self, path: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every object of a list endpoint, following ``starting_after`` while ``has_more``."""
        query = {"limit": self.page_size, **(params or {})}
        seen: set[str] = set()
        while True:
            page = self.get(path, query)
            data = page.get("data") or []
            yield from data
            if not page.get("has_more") or not data:
                return
            cursor = str(data[-1]["id"])
            if cursor in seen:  # a server repeating itself must not loop us forever
                raise FatalError(
                    "Stripe's paging went in a circle",
                    detail=f"{path}: starting_after {cursor} repeated",
                    system=SYSTEM,
                )
            seen.add(cursor)
            query["starting_after"] = cursor

    def search(self, resource: str, query: str) -> list[dict[str, Any]]:
        """Every match of a Search API query (``/v1/<resource>/search``), following pages."""
        params: dict[str, Any] = {"query": query, "limit": self.page_size}
        found: list[dict[str, Any]] = []
        while True:
            page = self.get(f"/v1/{resource}/search", params)
            found.extend(page.get("data") or [])
            if not page.get("has_more") or not page.get("next_page"):
                return found
            params["page"] = page["next_page"]

    def find_by_metadata(self, resource: str, name: str, value: str) -> dict[str, Any] | None:
        """The one object whose ``metadata[name]`` is ``value`` (None; several: a fix)."""
        query = f"metadata[{search_literal(name)}]:{search_literal(value)}"
        matches = self.search(resource, query)
        if len(matches) > 1:
            ids = ", ".join(str(m["id"]) for m in matches)
            raise BusinessFixError(
                f"{len(matches)} Stripe {resource} carry the q2c key '{value}' ({ids})",
                detail=f"search {query} in {resource} matched {ids}",
                suggested_fix=f"Delete or void the duplicate {resource} in Stripe (keep one), "
                "then replay.",
                system=SYSTEM,
                context={"ids": [m["id"] for m in matches]},
            )
        return matches[0] if matches else None
