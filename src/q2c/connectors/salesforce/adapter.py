"""``SalesforceCrm``: the CRM port over Salesforce's REST API.

- ``closed_won_since``: a SOQL poll on SystemModstamp (the field Salesforce indexes for exactly
  this), oldest first, following ``nextRecordsUrl`` to the end.
- ``fetch_proposal``: one ``composite`` call with three queries (opportunity with its account,
  the opportunity's quotes, the quote lines with product codes), translated by ``proposal``.
- ``write_back``: reads the current values, then one ``composite`` allOrNone request patching
  the opportunity and its account; a repeated write-back changes nothing and writes nothing.
Every call goes through ``RestClient`` (auth, pacing, payload history, error translation), and
every response is parsed with Decimal numbers so no amount is ever a float.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import structlog

from q2c.canonical.models import Proposal
from q2c.connectors.http import ExchangeRecorder, RestClient, TokenBucket
from q2c.connectors.salesforce.auth import ClientCredentialsAuth, JwtBearerAuth, SalesforceAuth
from q2c.connectors.salesforce.errors import error_from_body, translate_error
from q2c.connectors.salesforce.ids import KEY_PREFIXES, normalize_id
from q2c.connectors.salesforce.proposal import build_proposal, closed_won_event
from q2c.connectors.salesforce.wire import dumps, loads, parse_datetime, soql_datetime
from q2c.errors import ConfigError, NotFoundError, ValidationError
from q2c.flows.ports import AccountStatus, ClosedWonPage

__all__ = ["ERP_ID_FIELDS", "SalesforceCrm", "UpsertResult", "connect_salesforce", "soql_quote"]

log = structlog.get_logger(__name__)
SYSTEM = "salesforce"

ERP_ID_FIELDS: dict[str, str] = {
    "customer": "ERP_Customer_Id__c",
    "project": "ERP_Project_Id__c",
    "sales_order": "ERP_Sales_Order_Id__c",
}
"""Keys ``write_back`` understands (``customer_id``, ``erp_customer_id`` ... work too)."""

_OPPORTUNITY_FIELDS = (
    "Id, Name, StageName, IsWon, CloseDate, Amount, CurrencyIsoCode, AccountId, SyncedQuoteId, "
    "Department__c, Billing_Model__c, Revenue_Method__c, Start_Date__c, End_Date__c, "
    "Rate_Card__c, Not_To_Exceed__c, Billing_Terms__c, "
    "Account.Name, Account.Tax_Id__c, Account.BillingStreet, Account.BillingCity, "
    "Account.BillingState, Account.BillingPostalCode, Account.BillingCountry, "
    "Account.CurrencyIsoCode, Account.Legal_Entity__c, Account.Phone, Account.Industry"
)
_QUOTE_FIELDS = (
    "Id, Name, Status, IsSyncing, Q2C_Version__c, CurrencyIsoCode, TotalPrice, LastModifiedDate"
)
_LINE_FIELDS = (
    "Id, QuoteId, LineNumber, Quantity, UnitPrice, TotalPrice, Description, "
    "Role__c, Product2.ProductCode, Product2.Name"
)


def soql_quote(value: str) -> str:
    """A SOQL string literal: backslash and quote escaped, so data never becomes syntax."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True, slots=True)
class UpsertResult:
    id: str
    created: bool


class SalesforceCrm:
    """CRM port implementation; construct with a ``RestClient`` or use ``connect_salesforce``."""

    system = SYSTEM

    def __init__(
        self, rest: RestClient, api_version: str = "v62.0", *, skip_provisioned: bool = False
    ) -> None:
        self.rest = rest
        self.api_version = api_version if api_version.startswith("v") else f"v{api_version}"
        self.base = f"/services/data/{self.api_version}"
        self.skip_provisioned = skip_provisioned

    # --- CrmPort ----------------------------------------------------------------------------

    def closed_won_since(self, watermark: str | None) -> ClosedWonPage:
        """Won opportunities changed after ``watermark`` (a SystemModstamp), oldest first.

        Each event carries the synced quote's version (``proposal_version``) and the account's
        legal entity. q2c's own write-back bumps SystemModstamp, so a provisioned opportunity
        comes round once more with the same version: the inbox drops it as a duplicate, while
        a re-approved quote (a new version) is picked up. ``skip_provisioned=True`` leaves out
        opportunities already marked Q2C_Status__c = 'Provisioned' instead, for orgs where
        quotes are never re-versioned after provisioning.
        """
        where = ["IsWon = true"]
        if watermark:
            try:
                where.append(f"SystemModstamp > {soql_datetime(parse_datetime(watermark))}")
            except ValueError as exc:
                raise ValidationError(
                    f"The Salesforce polling watermark {watermark!r} is not a datetime",
                    detail=str(exc),
                    system=SYSTEM,
                    field="watermark",
                ) from exc
        if self.skip_provisioned:
            where.append("Q2C_Status__c != 'Provisioned'")
        rows = self.query_all(
            "SELECT Id, AccountId, SyncedQuoteId, Amount, CurrencyIsoCode, CloseDate, "
            "SyncedQuote.Q2C_Version__c, Account.Legal_Entity__c, "
            f"SystemModstamp FROM Opportunity WHERE {' AND '.join(where)} "
            "ORDER BY SystemModstamp ASC, Id ASC"
        )
        events = [closed_won_event(row) for row in rows]
        latest = max((row["SystemModstamp"] for row in rows), key=parse_datetime, default=watermark)
        return ClosedWonPage(opportunities=events, watermark=latest)

    def fetch_proposal(self, opportunity_id: str) -> Proposal:
        opp_id = self._record_id(opportunity_id, "Opportunity")
        literal = soql_quote(opp_id)
        results = self.composite(
            [
                self._query_sub(
                    "opportunity",
                    f"SELECT {_OPPORTUNITY_FIELDS} FROM Opportunity WHERE Id = {literal}",
                ),
                self._query_sub(
                    "quotes", f"SELECT {_QUOTE_FIELDS} FROM Quote WHERE OpportunityId = {literal}"
                ),
                self._query_sub(
                    "lines",
                    f"SELECT {_LINE_FIELDS} FROM QuoteLineItem "
                    f"WHERE Quote.OpportunityId = {literal} ORDER BY LineNumber ASC",
                ),
            ],
            all_or_none=False,
        )
        opportunities = self._drain(results["opportunity"])
        if not opportunities:
            raise NotFoundError(
                f"Salesforce opportunity {opp_id} does not exist, or q2c's integration user "
                "cannot see it",
                detail=f"SOQL on Opportunity Id = {opp_id} returned no rows",
                system=SYSTEM,
                field="Id",
                context={"record_id": opp_id},
            )
        return build_proposal(
            opportunities[0], self._drain(results["quotes"]), self._drain(results["lines"])
        )

    def write_back(self, opportunity_id: str, erp_ids: dict[str, str]) -> None:
        """Put ERP ids on the opportunity (and the ERP customer id on its account).

        Sets Q2C_Status__c = 'Provisioned'. Only fields whose value differs are written, in one
        composite allOrNone request, so a replay neither duplicates nor bumps timestamps.
        """
        opp_id = self._record_id(opportunity_id, "Opportunity")
        desired = self._erp_fields(erp_ids)
        rows = self.query_all(
            "SELECT Id, AccountId, ERP_Customer_Id__c, ERP_Project_Id__c, ERP_Sales_Order_Id__c, "
            f"Q2C_Status__c, Account.ERP_Customer_Id__c FROM Opportunity WHERE Id = "
            f"{soql_quote(opp_id)}"
        )
        if not rows:
            raise NotFoundError(
                f"Salesforce opportunity {opp_id} does not exist, so ERP ids cannot be written "
                "back",
                detail=f"write_back({opp_id}, {erp_ids})",
                system=SYSTEM,
                context={"record_id": opp_id},
            )
        current = rows[0]
        opp_changes = {
            k: v
            for k, v in {**desired, "Q2C_Status__c": "Provisioned"}.items()
            if current.get(k) != v
        }
        subrequests = []
        if opp_changes:
            subrequests.append(
                {
                    "method": "PATCH",
                    "referenceId": "opportunity",
                    "url": f"{self.base}/sobjects/Opportunity/{opp_id}",
                    "body": opp_changes,
                }
            )
        customer = desired.get("ERP_Customer_Id__c")
        account = current.get("Account") or {}
        if customer and current.get("AccountId") and account.get("ERP_Customer_Id__c") != customer:
            subrequests.append(
                {
                    "method": "PATCH",
                    "referenceId": "account",
                    "url": f"{self.base}/sobjects/Account/{current['AccountId']}",
                    "body": {"ERP_Customer_Id__c": customer},
                }
            )
        if subrequests:
            self.composite(subrequests, all_or_none=True)

    def update_account_status(self, account_id: str, status: AccountStatus) -> None:
        """Receivable status on the account; only the fields that differ are written, so a
        replay changes nothing (not even LastModifiedDate)."""
        record_id = self._record_id(account_id, "Account")
        desired: dict[str, Any] = {
            "AR_Status__c": status.status,
            "Open_Balance__c": status.open_balance.amount,
            "Unapplied_Credit__c": status.unapplied_credit.amount,
            "Last_Payment_Date__c": (
                status.last_payment_on.isoformat() if status.last_payment_on else None
            ),
        }
        current = self.get("Account", record_id, list(desired))
        changes = {
            name: value
            for name, value in desired.items()
            if not _same_value(current.get(name), value)
        }
        if changes:
            self.rest.request(
                "PATCH",
                f"{self.base}/sobjects/Account/{quote(record_id, safe='')}",
                content=dumps(changes),
                headers={"Content-Type": "application/json"},
            )

    # --- general REST helpers (also used by the conformance harness and the demo) -----------

    def query_all(self, soql: str) -> list[dict[str, Any]]:
        """Every row of a SOQL query, following ``nextRecordsUrl`` until ``done``."""
        body = self._json(self.rest.request("GET", f"{self.base}/query", params={"q": soql}))
        return self._drain(body)

    def get(self, sobject: str, record_id: str, fields: list[str] | None = None) -> dict[str, Any]:
        params = {"fields": ",".join(fields)} if fields else None
        body: dict[str, Any] = self._json(
            self.rest.request(
                "GET", f"{self.base}/sobjects/{sobject}/{quote(record_id, safe='')}", params=params
            )
        )
        return body

    def upsert(
        self, sobject: str, external_id_field: str, external_id: str, fields: Mapping[str, Any]
    ) -> UpsertResult:
        """Create or update by external id: a retried upsert lands on the same record."""
        url = f"{self.base}/sobjects/{sobject}/{external_id_field}/{quote(external_id, safe='')}"
        response = self.rest.request(
            "PATCH", url, content=dumps(dict(fields)), headers={"Content-Type": "application/json"}
        )
        if response.status_code == 204:  # API versions before 46.0 answer an update with 204
            return UpsertResult(self._json(self.rest.request("GET", url))["Id"], False)
        body = self._json(response)
        return UpsertResult(str(body["id"]), bool(body.get("created", response.status_code == 201)))

    def composite(self, subrequests: list[dict[str, Any]], *, all_or_none: bool) -> dict[str, Any]:
        """Run a composite request; returns each sub-response body by referenceId.

        A failed sub-request raises its translated error (not the PROCESSING_HALTED echoes an
        allOrNone rollback gives the others).
        """
        payload = {"allOrNone": all_or_none, "compositeRequest": subrequests}
        response = self.rest.request(
            "POST",
            f"{self.base}/composite",
            content=dumps(payload),
            headers={"Content-Type": "application/json"},
        )
        entries = self._json(response).get("compositeResponse", [])
        failures = [e for e in entries if e.get("httpStatusCode", 500) >= 400]
        if failures:
            primary = next((e for e in failures if not _halted(e)), failures[0])
            sub = next((s for s in subrequests if s["referenceId"] == primary["referenceId"]), {})
            raise error_from_body(
                primary["httpStatusCode"],
                primary.get("body"),
                where=f"composite {sub.get('method')} {sub.get('url')} "
                f"-> {primary['httpStatusCode']}",
                sobject=_sobject_in(sub.get("url", "")),
            )
        return {e["referenceId"]: e.get("body") for e in entries}

    # --- internals -------------------------------------------------------------------------

    def _query_sub(self, reference: str, soql: str) -> dict[str, Any]:
        return {
            "method": "GET",
            "referenceId": reference,
            "url": f"{self.base}/query/?q={quote_plus(soql)}",
        }

    def _drain(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        records = list(body.get("records", []))
        while not body.get("done", True) and body.get("nextRecordsUrl"):
            body = self._json(self.rest.request("GET", body["nextRecordsUrl"]))
            records.extend(body.get("records", []))
        return records

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        return loads(response.content) if response.content else {}

    @staticmethod
    def _record_id(value: str, sobject: str) -> str:
        normalized = normalize_id(value)
        if normalized is None or not normalized.startswith(KEY_PREFIXES[sobject]):
            raise NotFoundError(
                f"{value!r} is not a Salesforce {sobject} id",
                detail=f"expected a 15/18-character id starting {KEY_PREFIXES[sobject]}",
                system=SYSTEM,
                context={"record_id": value},
            )
        return normalized

    @staticmethod
    def _erp_fields(erp_ids: Mapping[str, str]) -> dict[str, str]:
        fields: dict[str, str] = {}
        ignored = []
        for key, value in erp_ids.items():
            slug = key.lower().removeprefix("erp_").removesuffix("__c").removesuffix("_id")
            field = ERP_ID_FIELDS.get(slug.replace("salesorder", "sales_order"))
            if field is None:
                ignored.append(key)
            elif value:
                fields[field] = str(value)
        if ignored:
            log.warning(
                "salesforce.write_back.ignored_keys", keys=ignored, known=sorted(ERP_ID_FIELDS)
            )
        if not fields:
            raise ValidationError(
                "No ERP id to write back to Salesforce",
                detail=f"erp_ids={dict(erp_ids)}; expected keys {sorted(ERP_ID_FIELDS)}",
                system=SYSTEM,
            )
        return fields


def _halted(entry: dict[str, Any]) -> bool:
    body = entry.get("body")
    return isinstance(body, list) and bool(body) and body[0].get("errorCode") == "PROCESSING_HALTED"


def _sobject_in(url: str) -> str | None:
    parts = url.split("/sobjects/", 1)
    return parts[1].split("/", 1)[0] if len(parts) == 2 else None


def connect_salesforce(
    client: httpx.Client,
    *,
    login_url: str,
    client_id: str,
    client_secret: str | None = None,
    jwt_private_key: str | bytes | None = None,
    username: str | None = None,
    recorder: ExchangeRecorder | None = None,
    bucket: TokenBucket | None = None,
    api_version: str = "v62.0",
) -> SalesforceCrm:
    """Wire a ``SalesforceCrm``: client credentials if a secret is given, else JWT bearer."""
    auth: SalesforceAuth
    if client_secret and jwt_private_key:
        raise ConfigError(
            "Salesforce connection has both a client secret and a JWT key; "
            "configure one OAuth flow",
            system=SYSTEM,
        )
    if client_secret:
        auth = ClientCredentialsAuth(login_url, client_id, client_secret)
    elif jwt_private_key:
        if not username:
            raise ConfigError(
                "The Salesforce JWT bearer flow needs the integration username",
                system=SYSTEM,
                field="username",
            )
        auth = JwtBearerAuth(login_url, client_id, username, jwt_private_key)
    else:
        raise ConfigError(
            "Salesforce connection needs a client secret or a JWT private key", system=SYSTEM
        )
    rest = RestClient(
        system=SYSTEM,
        client=client,
        translate_error=translate_error,
        auth=auth,
        bucket=bucket,
        recorder=recorder,
    )
    return SalesforceCrm(rest, api_version=api_version)


def _same_value(current: Any, desired: Any) -> bool:
    """Currency fields come back as JSON numbers (parsed as Decimal or int): 5 == 5.00."""
    if isinstance(desired, Decimal) and isinstance(current, int | Decimal):
        return Decimal(current) == desired
    return bool(current == desired)
