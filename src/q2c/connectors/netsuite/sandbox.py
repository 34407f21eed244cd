"""A NetSuite sandbox account in a box: state, credentials, fault plan and the ASGI app.

Tests and the demo create one ``NetSuiteSandbox``, seed its reference data (subsidiaries,
departments, currencies, items; then, for the ledger, GL accounts, tax codes, sale items with
income accounts and exchange rates) and connect the real adapter to it through ``client()``
(in process) or by serving ``app`` (``q2c sandbox``). ``reference`` accumulates the internal
ids of everything seeded, keyed the way flows map canonical codes to NetSuite ids. The
credentials it registers are the ones a NetSuite administrator would hand over: for M2M a
client id, a certificate id and the certificate's key pair; for TBA a consumer key/secret and
a token id/secret.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from q2c.connectors.netsuite.adapter import NetSuiteErp, connect_netsuite_m2m, connect_netsuite_tba
from q2c.connectors.netsuite.emulator import (
    ConcurrencyGovernor,
    EmulatorConfig,
    build_app,
    netsuite_error_body,
)
from q2c.connectors.netsuite.seed import (
    DEFAULT_ACCOUNTS,
    DEFAULT_ENTITIES,
    DEFAULT_ITEMS,
    DEFAULT_RATES,
    DEFAULT_TAX_CODES,
    GlAccount,
    LedgerEntity,
    SaleItem,
    SeedRate,
    SeedTaxCode,
)
from q2c.connectors.netsuite.server_auth import AccountAuth, LoginAttempt, M2MClient, TbaToken
from q2c.connectors.netsuite.state import NetSuiteState
from q2c.connectors.netsuite.wire import base_url_for
from q2c.connectors.sandbox import ASGIApp, FaultInjector, FaultPlan, InProcessTransport

__all__ = [
    "M2MCredentials",
    "NetSuiteSandbox",
    "TbaCredentials",
    "generate_rsa_key_pem",
    "public_key_pem",
]

CURRENCY_NAMES = {
    "USD": "US Dollar",
    "EUR": "Euro",
    "GBP": "British pound",
    "CAD": "Canadian Dollar",
    "AUD": "Australian Dollar",
    "JPY": "Yen",
    "CHF": "Swiss Franc",
}
# The keys of ``NetSuiteSandbox.reference`` (each maps a code or key to an internal id).
REFERENCE_KEYS = (
    "subsidiaries",
    "departments",
    "classes",
    "locations",
    "currencies",
    "items",
    "accounts",
    "tax_codes",
    "exchange_rates",
)


def generate_rsa_key_pem(bits: int = 3072) -> bytes:
    """A new RSA private key (PKCS#8 PEM), the size NetSuite asks for M2M certificates."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(private_key_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@functools.cache
def _default_key_pair() -> tuple[bytes, bytes]:
    # Key generation takes a noticeable fraction of a second; sandboxes share one key pair
    # (each still gets its own client id and certificate id).
    private = generate_rsa_key_pem()
    return private, public_key_pem(private)


@dataclass(frozen=True)
class M2MCredentials:
    client_id: str
    certificate_id: str
    private_key_pem: bytes
    public_key_pem: bytes


@dataclass(frozen=True)
class TbaCredentials:
    consumer_key: str
    consumer_secret: str
    token_id: str
    token_secret: str


class NetSuiteSandbox:
    """One emulated NetSuite account with registered integration credentials."""

    def __init__(
        self,
        *,
        account_id: str = "1234567_SB1",
        base_url: str | None = None,
        concurrency_limit: int = 15,
        private_key_pem: bytes | None = None,
    ) -> None:
        self.account_id = account_id
        self.base_url = (base_url or base_url_for(account_id)).rstrip("/")
        self.state = NetSuiteState()
        self.faults = FaultPlan()
        self.auth = AccountAuth(account_id)
        self.config = EmulatorConfig(account_id)
        private, public = (
            (private_key_pem, public_key_pem(private_key_pem))
            if private_key_pem
            else _default_key_pair()
        )
        self.m2m = M2MCredentials(
            client_id=secrets.token_hex(32),
            certificate_id=secrets.token_urlsafe(32),
            private_key_pem=private,
            public_key_pem=public,
        )
        self.tba = TbaCredentials(*(secrets.token_hex(32) for _ in range(4)))
        self.auth.register_m2m(
            M2MClient(self.m2m.client_id, self.m2m.certificate_id, self.m2m.public_key_pem)
        )
        self.auth.register_tba(
            TbaToken(
                self.tba.consumer_key,
                self.tba.consumer_secret,
                self.tba.token_id,
                self.tba.token_secret,
            )
        )
        self.asgi = build_app(self.state, self.auth, self.config)
        self.governor = ConcurrencyGovernor(
            FaultInjector(cast(ASGIApp, self.asgi), self.faults, error_body=netsuite_error_body),
            concurrency_limit,
        )
        self.app = self.governor
        self.reference: dict[str, dict[str, str]] = {key: {} for key in REFERENCE_KEYS}
        self._transports: list[InProcessTransport] = []

    # --- connecting --------------------------------------------------------------------------

    def client(self, timeout: float = 5.0) -> httpx.Client:
        """An httpx client whose requests reach this sandbox in process."""
        transport = InProcessTransport(self.app)
        self._transports.append(transport)
        return httpx.Client(transport=transport, timeout=timeout, base_url=self.base_url)

    def erp_m2m(self, *, timeout: float = 5.0, page_size: int = 1000, **kwargs: Any) -> NetSuiteErp:
        """The real adapter wired to this sandbox with its M2M credentials."""
        return connect_netsuite_m2m(
            self.client(timeout),
            account_id=self.account_id,
            client_id=self.m2m.client_id,
            certificate_id=self.m2m.certificate_id,
            private_key_pem=self.m2m.private_key_pem,
            base_url=self.base_url,
            page_size=page_size,
            **kwargs,
        )

    def erp_tba(self, *, timeout: float = 5.0, page_size: int = 1000, **kwargs: Any) -> NetSuiteErp:
        """The real adapter wired to this sandbox with its TBA credentials."""
        return connect_netsuite_tba(
            self.client(timeout),
            account_id=self.account_id,
            consumer_key=self.tba.consumer_key,
            consumer_secret=self.tba.consumer_secret,
            token_id=self.tba.token_id,
            token_secret=self.tba.token_secret,
            base_url=self.base_url,
            page_size=page_size,
            **kwargs,
        )

    def close(self) -> None:
        for transport in self._transports:
            transport.close()
        self._transports.clear()

    # --- controlling the account ------------------------------------------------------------

    @property
    def concurrency_limit(self) -> int:
        return self.governor.limit

    @concurrency_limit.setter
    def concurrency_limit(self, value: int) -> None:
        self.governor.limit = value

    def deny(self, record_type: str, access: str = "write") -> None:
        """Take a permission away from the integration role (403 INSUFFICIENT_PERMISSION)."""
        if access not in ("read", "write"):
            raise ValueError("access is 'read' or 'write'")
        self.config.denied.add((record_type, "read" if access == "read" else "write"))

    def expire_tokens(self) -> None:
        self.auth.expire_tokens()

    @property
    def token_requests(self) -> int:
        return self.auth.token_requests

    @property
    def login_audit(self) -> list[LoginAttempt]:
        return list(self.auth.audit)

    def seed_reference_data(
        self,
        *,
        subsidiaries: Mapping[str, str] | None = None,
        departments: Iterable[str] = (),
        currencies: Iterable[str] = (),
        items: Iterable[str] = (),
        classes: Iterable[str] = (),
        locations: Iterable[str] = (),
    ) -> dict[str, dict[str, str]]:
        """Create reference records (idempotent: keyed by external id); returns their ids.

        ``subsidiaries`` maps a legal-entity code to its name; every other list holds codes
        that double as names. The first currency is the base currency and every subsidiary's.
        """
        ids: dict[str, dict[str, str]] = {
            "currencies": {},
            "subsidiaries": {},
            "departments": {},
            "items": {},
            "classes": {},
            "locations": {},
        }
        for index, code in enumerate(currencies):
            ids["currencies"][code] = self._seed(
                "currency",
                code,
                {
                    "name": CURRENCY_NAMES.get(code, code),
                    "symbol": code,
                    "isBaseCurrency": index == 0,
                    "exchangeRate": 1,
                },
            )
        base_currency = next(iter(ids["currencies"].values()), None)
        for code, name in (subsidiaries or {}).items():
            body: dict[str, Any] = {"name": name}
            if base_currency:
                body["currency"] = {"id": base_currency}
            ids["subsidiaries"][code] = self._seed("subsidiary", code, body)
        for name in departments:
            ids["departments"][name] = self._seed("department", name, {"name": name})
        for name in classes:
            ids["classes"][name] = self._seed("classification", name, {"name": name})
        for name in locations:
            ids["locations"][name] = self._seed("location", name, {"name": name})
        for code in items:
            ids["items"][code] = self._seed(
                "serviceSaleItem", code, {"itemId": code, "displayName": code}
            )
        self._remember(ids)
        return ids

    def seed_ledger_reference_data(
        self,
        *,
        entities: Iterable[LedgerEntity] = DEFAULT_ENTITIES,
        currencies: Iterable[str] = ("USD", "EUR", "GBP"),
        accounts: Iterable[GlAccount] = DEFAULT_ACCOUNTS,
        tax_codes: Iterable[SeedTaxCode] = DEFAULT_TAX_CODES,
        items: Iterable[SaleItem] = DEFAULT_ITEMS,
        rates: Iterable[SeedRate] = DEFAULT_RATES,
    ) -> dict[str, dict[str, str]]:
        """What posting invoices, payments and journals needs; idempotent (external ids).

        Subsidiaries get their country and currency (upserted by legal-entity code, so call
        this after ``seed_reference_data``); tax codes are created for the entities'
        countries only, rates for pairs of seeded currencies only. Service items seeded
        earlier without an income account get the ``REVENUE`` account. Returns the ids by
        key: ``subsidiaries`` (entity code), ``currencies`` (ISO code), ``accounts`` (the
        ``GlAccount`` key: AR, UNBILLED, DEFERRED_REVENUE, REVENUE, ...), ``tax_codes`` (tax
        code name), ``items`` (item code), ``exchange_rates`` ("EUR/USD@2025-01-01").
        """
        entities = list(entities)
        codes = list(dict.fromkeys([*currencies, *(e.currency for e in entities)]))
        ids: dict[str, dict[str, str]] = {
            "subsidiaries": {},
            "currencies": {},
            "accounts": {},
            "tax_codes": {},
            "items": {},
            "exchange_rates": {},
        }
        known = self.reference["currencies"]
        for code in codes:
            body: dict[str, Any] = {"name": CURRENCY_NAMES.get(code, code), "symbol": code}
            if code not in known:
                body |= {"isBaseCurrency": not known and code == codes[0], "exchangeRate": 1}
            ids["currencies"][code] = known[code] = self._seed("currency", code, body)
        for entity in entities:
            ids["subsidiaries"][entity.code] = self._seed(
                "subsidiary",
                entity.code,
                {
                    "name": entity.name,
                    "country": entity.country,
                    "currency": {"id": ids["currencies"][entity.currency]},
                },
            )
        for account in accounts:
            ids["accounts"][account.key] = self._seed(
                "account",
                account.key,
                {"acctNumber": account.number, "acctName": account.name, "acctType": account.type},
            )
        countries = {entity.country for entity in entities}
        tax_account = ids["accounts"].get("TAX_PAYABLE")
        for tax in tax_codes:
            if tax.country not in countries:
                continue
            body = {
                "itemId": tax.code,
                "description": tax.description,
                "rate": tax.percent,
                "country": tax.country,
                "exempt": tax.exempt,
            }
            if tax_account:
                body["taxAccount"] = {"id": tax_account}
            ids["tax_codes"][tax.code] = self._seed("salesTaxItem", tax.code, body)
        for item in items:
            ids["items"][item.code] = self._seed(
                item.record_type,
                item.code,
                {
                    "itemId": item.code,
                    "displayName": item.name,
                    "incomeAccount": {"id": ids["accounts"][item.income_account]},
                    "custitem_q2c_kind": item.kind,
                },
            )
        self._give_income_account(ids["accounts"].get("REVENUE"))
        for rate in rates:
            if rate.base in ids["currencies"] and rate.transaction in ids["currencies"]:
                ids["exchange_rates"][rate.key] = self._seed(
                    "currencyRate",
                    rate.key,
                    {
                        "baseCurrency": {"id": ids["currencies"][rate.base]},
                        "transactionCurrency": {"id": ids["currencies"][rate.transaction]},
                        "exchangeRate": rate.rate,
                        "effectiveDate": rate.effective.isoformat(),
                    },
                )
        self._remember(ids)
        return ids

    def _give_income_account(self, account_id: str | None) -> None:
        if account_id is None:
            return
        for item in self.state.records("serviceSaleItem"):
            if not item.get("incomeAccount"):
                update = {"incomeAccount": {"id": account_id}, "custitem_q2c_kind": "service"}
                self.state.update("serviceSaleItem", item["id"], update)

    def _remember(self, ids: Mapping[str, Mapping[str, str]]) -> None:
        for key, values in ids.items():
            self.reference.setdefault(key, {}).update(values)

    def _seed(self, record_type: str, external_id: str, body: dict[str, Any]) -> str:
        record_id, _ = self.state.upsert(record_type, external_id, body)
        return record_id
