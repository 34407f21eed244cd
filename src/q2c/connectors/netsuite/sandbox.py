"""A NetSuite sandbox account in a box: state, credentials, fault plan and the ASGI app.

Tests and the demo create one ``NetSuiteSandbox``, seed its reference data (subsidiaries,
departments, currencies, items) and connect the real adapter to it through ``client()``
(in process) or by serving ``app`` (``q2c sandbox``). The credentials it registers are the
ones a NetSuite administrator would hand over: for M2M a client id, a certificate id and the
certificate's key pair; for TBA a consumer key/secret and a token id/secret.
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
        return ids

    def _seed(self, record_type: str, external_id: str, body: dict[str, Any]) -> str:
        record_id, _ = self.state.upsert(record_type, external_id, body)
        return record_id
