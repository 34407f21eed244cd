"""Builds one adapter per configured system and files it under each of its roles.

Vendor modules are imported only when a system uses them. A system marked ``sandbox: true``
is wired to its bundled emulator running in process (demo, tests); otherwise to the vendor's
real API with credentials from the environment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from q2c.config import Q2CConfig, SystemConfig
from q2c.connectors.http import ExchangeRecorder, TokenBucket
from q2c.errors import ConfigError

__all__ = ["Connections", "connect_systems"]


@dataclass
class Connections:
    """Adapters by role (``crm``, ``erp``, ...) and by system name, plus what to close."""

    by_role: dict[str, Any] = field(default_factory=dict)
    by_system: dict[str, Any] = field(default_factory=dict)
    sandboxes: dict[str, Any] = field(default_factory=dict)
    clients: list[httpx.Client] = field(default_factory=list)

    def port(self, role: str) -> Any:
        try:
            return self.by_role[role]
        except KeyError:
            raise ConfigError(
                f"q2c.yaml: systems: no system has the role '{role}'",
                suggested_fix=f"Add '{role}' to the roles of one system in q2c.yaml.",
            ) from None

    def add(self, name: str, roles: Iterable[str], adapter: Any) -> None:
        self.by_system[name] = adapter
        for role in roles:
            self.by_role.setdefault(role, adapter)

    def sandbox_client(
        self, name: str, make: Callable[[], Any], timeout: float
    ) -> tuple[Any, httpx.Client]:
        """The system's in-process emulator (the caller's, else a new one) and a client to it,
        both remembered so they are closed with the connections."""
        sandbox = self.sandboxes.get(name) or make()
        self.sandboxes[name] = sandbox
        client: httpx.Client = sandbox.client(timeout=timeout)
        self.clients.append(client)
        return sandbox, client

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()
        for sandbox in self.sandboxes.values():
            stop = getattr(sandbox, "stop", None)  # a managed server (Tryton) owns a process
            if stop is not None:
                stop()


def connect_systems(
    config: Q2CConfig,
    *,
    recorder: ExchangeRecorder | None = None,
    sandboxes: dict[str, Any] | None = None,
) -> Connections:
    """Adapters for every system; ``sandboxes`` may pass emulators the caller already built."""
    connections = Connections(sandboxes=dict(sandboxes or {}))
    for name, system in config.systems.items():
        bucket = (
            TokenBucket(system.rate_limit.per_second, system.rate_limit.burst)
            if system.rate_limit
            else None
        )
        if system.vendor == "salesforce":
            adapter = _salesforce(name, system, connections, recorder, bucket)
        elif system.vendor == "netsuite":
            adapter = _netsuite(name, system, connections, recorder, bucket)
        elif system.vendor == "stripe":
            adapter = _stripe(name, system, connections, recorder, bucket)
        elif system.vendor == "kantata":
            adapter = _kantata(name, system, connections, recorder, bucket)
        elif system.vendor == "tryton":
            adapter = _tryton(name, system, connections, recorder, bucket)
            if "psa" in system.roles:
                from q2c.connectors.tryton.psa import TrytonPsa

                # one server, two roles: the PSA side speaks through the ERP's session
                connections.add(name, ["psa"], TrytonPsa(adapter.rpc))
                connections.add(name, [r for r in system.roles if r != "psa"], adapter)
                continue
        else:
            raise ConfigError(
                f"q2c.yaml: systems.{name}.vendor: no connector for '{system.vendor}' yet",
                suggested_fix="Use one of the vendors q2c ships a connector for.",
            )
        connections.add(name, system.roles, adapter)
    return connections


def _salesforce(
    name: str,
    system: SystemConfig,
    connections: Connections,
    recorder: ExchangeRecorder | None,
    bucket: TokenBucket | None,
) -> Any:
    from q2c.connectors.salesforce.adapter import connect_salesforce

    if system.sandbox:
        from q2c.connectors.salesforce.emulator import SalesforceSandbox

        sandbox, client = connections.sandbox_client(
            name, SalesforceSandbox, system.timeout_seconds
        )
        return connect_salesforce(
            client,
            login_url=sandbox.base_url,
            client_id=sandbox.client_id,
            client_secret=sandbox.client_secret,
            recorder=recorder,
            bucket=bucket,
        )
    client = httpx.Client(timeout=system.timeout_seconds)
    connections.clients.append(client)
    auth = _require(system.auth, name)
    login_url = system.login_url or "https://login.salesforce.com"
    if auth.flow == "client_credentials":
        return connect_salesforce(
            client,
            login_url=system.base_url or login_url,
            client_id=auth.secret("client_id").get_secret_value(),
            client_secret=auth.secret("client_secret").get_secret_value(),
            recorder=recorder,
            bucket=bucket,
        )
    if auth.flow == "jwt_bearer":
        return connect_salesforce(
            client,
            login_url=login_url,
            client_id=auth.secret("client_id").get_secret_value(),
            jwt_private_key=auth.secret("private_key").get_secret_value(),
            username=auth.username,
            recorder=recorder,
            bucket=bucket,
        )
    raise ConfigError(f"q2c.yaml: systems.{name}.auth.flow: Salesforce does not use {auth.flow}")


def _netsuite(
    name: str,
    system: SystemConfig,
    connections: Connections,
    recorder: ExchangeRecorder | None,
    bucket: TokenBucket | None,
) -> Any:
    from q2c.connectors.netsuite.adapter import connect_netsuite_m2m, connect_netsuite_tba

    if system.sandbox:
        from q2c.connectors.netsuite.sandbox import NetSuiteSandbox

        sandbox, client = connections.sandbox_client(
            name,
            lambda: NetSuiteSandbox(account_id=system.account_id or "1234567_SB1"),
            system.timeout_seconds,
        )
        return connect_netsuite_m2m(
            client,
            account_id=sandbox.account_id,
            client_id=sandbox.m2m.client_id,
            certificate_id=sandbox.m2m.certificate_id,
            private_key_pem=sandbox.m2m.private_key_pem,
            base_url=sandbox.base_url,
            recorder=recorder,
            bucket=bucket,
        )
    auth = _require(system.auth, name)
    if not system.account_id:
        raise ConfigError(f"q2c.yaml: systems.{name}.account_id: NetSuite needs the account id")
    client = httpx.Client(timeout=system.timeout_seconds)
    connections.clients.append(client)
    if auth.flow == "m2m":
        return connect_netsuite_m2m(
            client,
            account_id=system.account_id,
            client_id=auth.secret("client_id").get_secret_value(),
            certificate_id=auth.secret("certificate_id").get_secret_value(),
            private_key_pem=auth.secret("private_key").get_secret_value(),
            base_url=system.base_url,
            recorder=recorder,
            bucket=bucket,
        )
    if auth.flow == "tba":
        return connect_netsuite_tba(
            client,
            account_id=system.account_id,
            consumer_key=auth.secret("consumer_key").get_secret_value(),
            consumer_secret=auth.secret("consumer_secret").get_secret_value(),
            token_id=auth.secret("token_id").get_secret_value(),
            token_secret=auth.secret("token_secret").get_secret_value(),
            base_url=system.base_url,
            recorder=recorder,
            bucket=bucket,
        )
    raise ConfigError(f"q2c.yaml: systems.{name}.auth.flow: NetSuite does not use {auth.flow}")


def _stripe(
    name: str,
    system: SystemConfig,
    connections: Connections,
    recorder: ExchangeRecorder | None,
    bucket: TokenBucket | None,
) -> Any:
    from q2c.connectors.stripe.adapter import connect_stripe

    default_entity = (system.legal_entities or [""])[0] if system.legal_entities else ""
    if system.sandbox:
        from q2c.connectors.stripe.sandbox import StripeSandbox

        sandbox, client = connections.sandbox_client(
            name, StripeSandbox, system.timeout_seconds
        )
        return connect_stripe(
            client,
            api_key=sandbox.api_key,
            base_url=sandbox.base_url,
            recorder=recorder,
            bucket=bucket,
            default_legal_entity=default_entity,
        )
    auth = _require(system.auth, name)
    if auth.flow != "api_key":
        raise ConfigError(f"q2c.yaml: systems.{name}.auth.flow: Stripe uses api_key")
    client = httpx.Client(timeout=system.timeout_seconds)
    connections.clients.append(client)
    return connect_stripe(
        client,
        api_key=auth.secret("api_key").get_secret_value(),
        base_url=system.base_url or "https://api.stripe.com",
        recorder=recorder,
        bucket=bucket,
        default_legal_entity=default_entity,
    )


def _kantata(
    name: str,
    system: SystemConfig,
    connections: Connections,
    recorder: ExchangeRecorder | None,
    bucket: TokenBucket | None,
) -> Any:
    from q2c.connectors.kantata.adapter import connect_kantata

    if system.sandbox:
        from q2c.connectors.kantata.sandbox import KantataSandbox

        sandbox, client = connections.sandbox_client(
            name, KantataSandbox, system.timeout_seconds
        )
        return connect_kantata(
            client,
            access_token=sandbox.access_token,
            base_url=sandbox.base_url,
            client_id=sandbox.client_id,
            client_secret=sandbox.client_secret,
            refresh_token=sandbox.refresh_token,
            recorder=recorder,
            bucket=bucket,
        )
    auth = _require(system.auth, name)
    client = httpx.Client(timeout=system.timeout_seconds)
    connections.clients.append(client)
    base_url = system.base_url or "https://api.mavenlink.com/api/v1"
    if auth.flow == "api_key":  # a personal / integration bearer token
        return connect_kantata(
            client,
            access_token=auth.secret("api_key").get_secret_value(),
            base_url=base_url,
            recorder=recorder,
            bucket=bucket,
        )
    if auth.flow == "client_credentials":
        return connect_kantata(
            client,
            client_id=auth.secret("client_id").get_secret_value(),
            client_secret=auth.secret("client_secret").get_secret_value(),
            base_url=base_url,
            token_url=system.login_url,
            recorder=recorder,
            bucket=bucket,
        )
    raise ConfigError(f"q2c.yaml: systems.{name}.auth.flow: Kantata does not use {auth.flow}")


def _tryton(
    name: str,
    system: SystemConfig,
    connections: Connections,
    recorder: ExchangeRecorder | None,
    bucket: TokenBucket | None,
) -> Any:
    from q2c.connectors.tryton.adapter import connect_tryton

    if system.sandbox:
        from q2c.connectors.tryton.server import TrytonServer

        server = connections.sandboxes.get(name) or TrytonServer().start()
        connections.sandboxes[name] = server
        client = httpx.Client(timeout=max(system.timeout_seconds, 60))
        connections.clients.append(client)
        return server.erp(client, recorder=recorder, bucket=bucket)
    auth = _require(system.auth, name)
    if auth.flow != "password":
        raise ConfigError(f"q2c.yaml: systems.{name}.auth.flow: Tryton uses password")
    if not system.base_url or not system.database:
        raise ConfigError(
            f"q2c.yaml: systems.{name}: Tryton needs base_url and database",
            suggested_fix="Set base_url (e.g. http://erp.internal:8000) and database.",
        )
    client = httpx.Client(timeout=system.timeout_seconds)
    connections.clients.append(client)
    return connect_tryton(
        client,
        base_url=system.base_url,
        database=system.database,
        username=auth.username,
        password=auth.secret("password").get_secret_value(),
        recorder=recorder,
        bucket=bucket,
    )


def _require(auth: Any, name: str) -> Any:
    if auth is None:
        raise ConfigError(
            f"q2c.yaml: systems.{name}.auth: credentials are required unless sandbox: true"
        )
    return auth
