"""Builds one adapter per configured system and files it under each of its roles.

Vendor modules are imported only when a system uses them. A system marked ``sandbox: true``
is wired to its bundled emulator running in process (demo, tests); otherwise to the vendor's
real API with credentials from the environment.
"""

from __future__ import annotations

from collections.abc import Iterable
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

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()


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

        sandbox = connections.sandboxes.get(name) or SalesforceSandbox()
        connections.sandboxes[name] = sandbox
        client = sandbox.client(timeout=system.timeout_seconds)
        connections.clients.append(client)
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

        sandbox = connections.sandboxes.get(name) or NetSuiteSandbox(
            account_id=system.account_id or "1234567_SB1"
        )
        connections.sandboxes[name] = sandbox
        client = sandbox.client(timeout=system.timeout_seconds)
        connections.clients.append(client)
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


def _require(auth: Any, name: str) -> Any:
    if auth is None:
        raise ConfigError(
            f"q2c.yaml: systems.{name}.auth: credentials are required unless sandbox: true"
        )
    return auth
