"""One NetSuite account over SuiteTalk REST web services: the calls every port shares.

Record reads (``GET /record/v1/{type}/{id}``, optionally with ``expandSubResources``), upserts
by external id (``PUT /record/v1/{type}/eid:{externalId}``, sublists replaced with
``?replace=``), SuiteQL following its ``next`` links, and the currency table (ISO code <->
internal id) cached per session. Every call goes through ``RestClient`` (auth, pacing, payload
history, error classification); NetSuite errors become ``q2c.errors`` in ``errors.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from q2c.connectors.http import RestClient
from q2c.connectors.netsuite import wire
from q2c.errors import FatalError, MappingMissingError

__all__ = ["RECORD_PATH", "SUITEQL_PATH", "SYSTEM", "NetSuiteSession"]

SYSTEM = "netsuite"
RECORD_PATH = "/services/rest/record/v1"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"
_JSON = {"Content-Type": "application/json", "Accept": "application/json"}


class NetSuiteSession:
    """Record and SuiteQL calls against one account; the ports build on it."""

    system = SYSTEM

    def __init__(
        self,
        rest: RestClient,
        account_id: str,
        *,
        base_url: str | None = None,
        page_size: int = 1000,
    ) -> None:
        if not 1 <= page_size <= 1000:
            raise ValueError("NetSuite pages hold 1 to 1000 rows")
        self.rest = rest
        self.account_id = account_id
        self.base_url = (base_url or wire.base_url_for(account_id)).rstrip("/")
        self.page_size = page_size
        self._currencies: dict[str, str] = {}  # internal id -> ISO code

    # --- reads -----------------------------------------------------------------------------

    def read_record(self, record_type: str, erp_id: str, *, expand: bool = False) -> dict[str, Any]:
        params = {"expandSubResources": "true"} if expand else None
        response = self.rest.request(
            "GET", self._record_url(record_type, erp_id), params=params, headers=_JSON
        )
        body: dict[str, Any] = wire.loads(response.content)
        return body

    def query(self, suiteql: str, *, page_size: int | None = None) -> Iterator[dict[str, str]]:
        """Run a SuiteQL query, following NetSuite's paging; rows without their ``links``."""
        url: str | None = f"{self.base_url}{SUITEQL_PATH}"
        params: dict[str, int] | None = {"limit": page_size or self.page_size, "offset": 0}
        payload = wire.dumps({"q": suiteql})
        headers = {**_JSON, "Prefer": "transient"}
        seen: set[str] = set()
        while url is not None:
            response = self.rest.request(
                "POST", url, params=params, content=payload, headers=headers
            )
            page = wire.loads(response.content)
            for item in page.get("items", []):
                yield {k: v for k, v in item.items() if k != "links"}
            url = _next_link(page, seen) if page.get("hasMore") else None
            params = None  # the next link carries limit and offset

    def list_record_ids(self, record_type: str) -> Iterator[str]:
        """Every internal id of a record type, following the record list's ``next`` links."""
        url: str | None = f"{self.base_url}{RECORD_PATH}/{record_type}"
        params: dict[str, int] | None = {"limit": self.page_size, "offset": 0}
        seen: set[str] = set()
        while url is not None:
            response = self.rest.request("GET", url, params=params, headers=_JSON)
            page = wire.loads(response.content)
            for item in page.get("items", []):
                yield str(item["id"])
            url = _next_link(page, seen) if page.get("hasMore") else None
            params = None

    # --- internals -------------------------------------------------------------------------

    def _record_url(self, record_type: str, key: str) -> str:
        return f"{self.base_url}{RECORD_PATH}/{record_type}/{quote(key, safe=':')}"

    def _upsert(
        self,
        record_type: str,
        external_id: str,
        body: dict[str, Any],
        *,
        replace: Iterable[str] = (),
    ) -> str:
        sublists = ",".join(replace)
        response = self.rest.request(
            "PUT",
            self._record_url(record_type, f"eid:{external_id}"),
            params={"replace": sublists} if sublists else None,
            content=wire.dumps(body),
            headers=_JSON,
        )
        location = response.headers.get("Location")
        if not location:
            raise FatalError(
                f"NetSuite accepted the {record_type} but did not say where it is",
                detail=f"PUT {response.request.url} -> {response.status_code} without Location",
                system=SYSTEM,
            )
        return unquote(urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1])

    def _load_currencies(self) -> None:
        rows = self.query("SELECT id, symbol FROM currency ORDER BY id")
        self._currencies = {row["id"]: row.get("symbol", "") for row in rows}

    def _currency_code(self, currency_id: str) -> str | None:
        if currency_id not in self._currencies:
            self._load_currencies()
        return self._currencies.get(currency_id)

    def _currency_id(self, code: str) -> str:
        for attempt in range(2):
            for currency_id, symbol in self._currencies.items():
                if symbol == code:
                    return currency_id
            if attempt == 0:
                self._load_currencies()
        raise MappingMissingError(
            f"Currency '{code}' is not set up in NetSuite",
            detail=f"no currency record with symbol {code!r} in account {self.account_id}",
            suggested_fix="Add the currency in NetSuite (Lists > Accounting > Currencies), "
            "then replay.",
            field="currency",
            system=SYSTEM,
        )


def _next_link(page: dict[str, Any], seen: set[str]) -> str | None:
    for link in page.get("links", []):
        if link.get("rel") == "next":
            href = str(link["href"])
            if href in seen:  # a server that repeats itself must not loop us forever
                raise FatalError(
                    "NetSuite's paging went in a circle",
                    detail=f"next link {href} repeated",
                    system=SYSTEM,
                )
            seen.add(href)
            return href
    return None
