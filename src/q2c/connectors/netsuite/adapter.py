"""NetSuite as q2c's ERP over SuiteTalk REST web services: one class, every ERP role.

``NetSuiteErp`` implements ``ErpPort`` (customers, projects, sales orders; this module) and,
through ``NetSuiteAccounting`` (``accounting.py``), ``ArLedgerPort``, ``JournalPort`` and
``ReferenceDataPort``; ``NetSuiteSession`` (``session.py``) holds the calls they share.

Writes are upserts by external id (``PUT /record/v1/{type}/eid:{externalId}``), so a step
retried after a timeout lands on the same record; sublists are sent with ``?replace=`` so a
repeated upsert does not append the lines a second time. The record is then read back for
the number NetSuite assigned (customer ``entityId``, order ``tranId``). Lookups use SuiteQL,
following its ``next`` links. Every call goes through ``RestClient`` (auth, pacing, payload
history, error classification) and NetSuite errors become ``q2c.errors`` in ``errors.py``.
"""

from __future__ import annotations

import httpx

from q2c.canonical.models import Contract, Customer, Project
from q2c.connectors.http import ExchangeRecorder, RestClient, TokenBucket
from q2c.connectors.netsuite import wire
from q2c.connectors.netsuite.accounting import NetSuiteAccounting
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
from q2c.connectors.netsuite.session import SYSTEM
from q2c.errors import BusinessFixError
from q2c.flows.ports import ErpCustomer, ErpRecordRef, SalesOrderRefs

__all__ = ["NetSuiteErp", "connect_netsuite_m2m", "connect_netsuite_tba", "translate_error"]


class NetSuiteErp(NetSuiteAccounting):
    """The ERP for one NetSuite account: ``ErpPort``, ``ArLedgerPort``, ``JournalPort`` and
    ``ReferenceDataPort`` in one object, so every ERP role shares one session (token, pacing,
    currency cache)."""

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

    # --- reads ---------------------------------------------------------------------------

    def get_customer(self, erp_id: str) -> ErpCustomer:
        record = self.read_record("customer", erp_id)
        currency = record.get("currency")
        currency_id = str(currency.get("id")) if isinstance(currency, dict) else None
        code = self._currency_code(currency_id) if currency_id else None
        return erp_customer_from_record(record, code)


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
