"""NetSuite as q2c's ERP: ``ErpPort`` over SuiteTalk REST web services.

Writes are upserts by external id (``PUT /record/v1/{type}/eid:{externalId}``), so a step
retried after a timeout lands on the same record; sublists are sent with ``?replace=`` so a
repeated upsert does not append the lines a second time. The record is then read back for
the number NetSuite assigned (customer ``entityId``, order ``tranId``). Lookups use SuiteQL,
following its ``next`` links. Every call goes through ``RestClient`` (auth, pacing, payload
history, error classification) and NetSuite errors become ``q2c.errors`` in ``errors.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from q2c.canonical.models import Contract, Customer, Project
from q2c.connectors.http import ExchangeRecorder, RestClient, TokenBucket
from q2c.connectors.netsuite import wire
from q2c.connectors.netsuite.auth import NetSuiteM2MAuth, NetSuiteTBAAuth, token_url_for
from q2c.connectors.netsuite.errors import translate_error
from q2c.connectors.netsuite.payloads import (
    CUSTOMER_COLUMNS,
    customer_body,
    erp_customer_from_record,
    erp_customer_from_row,
    normalize_tax_id,
    project_body,
    sales_order_body,
    sql_literal,
)
from q2c.errors import BusinessFixError, FatalError, MappingMissingError
from q2c.flows.ports import ErpCustomer, ErpRecordRef, SalesOrderRefs

__all__ = ["NetSuiteErp", "connect_netsuite_m2m", "connect_netsuite_tba", "translate_error"]

SYSTEM = "netsuite"
RECORD_PATH = "/services/rest/record/v1"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"
_JSON = {"Content-Type": "application/json", "Accept": "application/json"}


class NetSuiteErp:
    """The ERP port for one NetSuite account."""

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

    # --- ErpPort ---------------------------------------------------------------------------

    def find_customer(
        self, *, external_id: str | None, tax_id: str | None, legal_name: str | None
    ) -> ErpCustomer | None:
        """Match on external id (the CRM id), then tax id, then exact legal name (any case)."""
        criteria: list[tuple[str, str, str]] = []
        if external_id:
            condition = f"c.externalid = {sql_literal(external_id)}"
            criteria.append(("external id", external_id, condition))
        if tax_id and normalize_tax_id(tax_id):
            normalized = sql_literal(normalize_tax_id(tax_id))
            condition = f"UPPER(REPLACE(c.vatregnumber, ' ', '')) = {normalized}"
            criteria.append(("tax id", tax_id, condition))
        if legal_name:
            condition = f"UPPER(c.companyname) = UPPER({sql_literal(legal_name)})"
            criteria.append(("legal name", legal_name, condition))
        for what, value, condition in criteria:
            rows = list(self.query(f"{CUSTOMER_COLUMNS} WHERE {condition} ORDER BY c.id"))
            if len(rows) == 1:
                return erp_customer_from_row(rows[0])
            if len(rows) > 1:
                raise _ambiguous(what, value, rows)
        return None

    def upsert_customer(
        self, customer: Customer, *, external_id: str, subsidiary: str
    ) -> ErpCustomer:
        body = customer_body(
            customer, subsidiary=subsidiary, currency_id=self._currency_id(customer.currency)
        )
        replace = ("addressBook",) if "addressBook" in body else ()
        erp_id = self._upsert("customer", external_id, body, replace=replace)
        return self.get_customer(erp_id)

    def upsert_project(
        self,
        project: Project,
        *,
        external_id: str,
        customer_erp_id: str,
        subsidiary: str,
        department: str | None,
    ) -> ErpRecordRef:
        body = project_body(
            project, customer_erp_id=customer_erp_id, subsidiary=subsidiary, department=department
        )
        erp_id = self._upsert("job", external_id, body)
        record = self.read_record("job", erp_id)
        return ErpRecordRef(erp_id=erp_id, external_id=external_id, number=record.get("entityId"))

    def upsert_sales_order(
        self, contract: Contract, *, external_id: str, refs: SalesOrderRefs
    ) -> ErpRecordRef:
        body = sales_order_body(
            contract, refs=refs, currency_id=self._currency_id(contract.currency)
        )
        erp_id = self._upsert("salesOrder", external_id, body, replace=("item",))
        record = self.read_record("salesOrder", erp_id)
        return ErpRecordRef(erp_id=erp_id, external_id=external_id, number=record.get("tranId"))

    # --- reads -----------------------------------------------------------------------------

    def get_customer(self, erp_id: str) -> ErpCustomer:
        record = self.read_record("customer", erp_id)
        currency = record.get("currency")
        currency_id = str(currency.get("id")) if isinstance(currency, dict) else None
        code = self._currency_code(currency_id) if currency_id else None
        return erp_customer_from_record(record, code)

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


def _ambiguous(what: str, value: str, rows: list[dict[str, str]]) -> BusinessFixError:
    candidates = [
        f"{r.get('entityid', '?')} {r.get('companyname', '')} (id {r['id']})" for r in rows
    ]
    return BusinessFixError(
        f"{len(rows)} NetSuite customers match the {what} '{value}': " + "; ".join(candidates),
        detail=f"find_customer by {what} {value!r} matched internal ids {[r['id'] for r in rows]}",
        suggested_fix=(
            "Decide which NetSuite customer this is: set its External ID to the CRM account id "
            "(or merge the duplicates in NetSuite), then replay."
        ),
        system=SYSTEM,
        context={"candidates": [{"erp_id": r["id"], "number": r.get("entityid")} for r in rows]},
    )


def connect_netsuite_m2m(
    client: httpx.Client,
    *,
    account_id: str,
    client_id: str,
    certificate_id: str,
    private_key_pem: bytes | str,
    recorder: ExchangeRecorder | None = None,
    bucket: TokenBucket | None = None,
    base_url: str | None = None,
    algorithm: str = "PS256",
    page_size: int = 1000,
) -> NetSuiteErp:
    """A ``NetSuiteErp`` signing in with OAuth 2.0 client credentials (M2M)."""
    base = (base_url or wire.base_url_for(account_id)).rstrip("/")
    auth = NetSuiteM2MAuth(
        token_url=token_url_for(base),
        client_id=client_id,
        certificate_id=certificate_id,
        private_key_pem=private_key_pem,
        algorithm=algorithm,
    )
    return _erp(client, auth, account_id, base, page_size, recorder, bucket)


def connect_netsuite_tba(
    client: httpx.Client,
    *,
    account_id: str,
    consumer_key: str,
    consumer_secret: str,
    token_id: str,
    token_secret: str,
    recorder: ExchangeRecorder | None = None,
    bucket: TokenBucket | None = None,
    base_url: str | None = None,
    page_size: int = 1000,
) -> NetSuiteErp:
    """A ``NetSuiteErp`` signing each request with token-based authentication (TBA)."""
    auth = NetSuiteTBAAuth(
        account_id=account_id,
        consumer_key=consumer_key,
        consumer_secret=consumer_secret,
        token_id=token_id,
        token_secret=token_secret,
    )
    return _erp(client, auth, account_id, base_url, page_size, recorder, bucket)


def _erp(
    client: httpx.Client,
    auth: httpx.Auth,
    account_id: str,
    base_url: str | None,
    page_size: int,
    recorder: ExchangeRecorder | None,
    bucket: TokenBucket | None,
) -> NetSuiteErp:
    rest = RestClient(
        system=SYSTEM,
        client=client,
        translate_error=translate_error,
        auth=auth,
        bucket=bucket,
        recorder=recorder,
    )
    return NetSuiteErp(rest, account_id, base_url=base_url, page_size=page_size)
