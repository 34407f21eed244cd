"""``q2c.yaml``: systems, credentials, ownership, mappings and rollout, validated up front.

An integration engineer edits this file by hand, so every mistake is reported with the exact
key path (``q2c.yaml: systems.netsuite.auth.client_id_env: environment variable NS_CLIENT_ID is
not set``) before anything connects. Validation runs in two passes: pydantic checks the shape
(``extra="forbid"`` everywhere, so a typo is an error rather than a silently ignored key),
then cross-field checks follow references between sections (systems named in ownership,
legal entities named in mappings and flows, credentials present in the environment).

Secrets never live in the file: ``*_env`` keys name environment variables and ``*_file`` keys
name files. Resolved secrets are held as ``SecretStr`` on the auth section, so they never
appear in ``repr``, logs or ``model_dump_json``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from q2c.canonical.base import CurrencyCode
from q2c.canonical.models import LegalEntity
from q2c.canonical.money import Money
from q2c.config_checks import (
    CANONICAL_OBJECTS,
    VENDOR_AUTH_FLOWS,
    Issue,
    check_config,
    config_error,
    issue_from_pydantic,
)
from q2c.errors import ConfigError
from q2c.mapping.value_maps import ANY_ENTITY, MappingEntry, parse_mappings

__all__ = [
    "CANONICAL_OBJECTS",
    "CONFIG_VERSION",
    "DEFAULT_STORE_URL",
    "FLOW_NAMES",
    "VENDOR_AUTH_FLOWS",
    "ApiClientConfig",
    "ApiConfig",
    "ApiKeyAuth",
    "ApiRateLimit",
    "ApprovalConfig",
    "ClientCredentialsAuth",
    "ErpMigrationConfig",
    "ExternalIssuerConfig",
    "FlowConfig",
    "FlowsConfig",
    "JwtBearerAuth",
    "LegalEntityConfig",
    "LocalTransport",
    "NatsTransport",
    "NetSuiteM2MAuth",
    "ObservabilityConfig",
    "OwnershipRuleConfig",
    "PasswordAuth",
    "Q2CConfig",
    "RetryConfig",
    "StoreConfig",
    "SystemConfig",
    "TokenBasedAuth",
    "TokenSigningConfig",
    "TracingConfig",
    "WebhookConfig",
    "default_demo_config",
    "load_config",
    "parse_config",
]

CONFIG_VERSION = 1
DEFAULT_STORE_URL = "sqlite:///.q2c/q2c.db"
Role = Literal["crm", "cpq", "psa", "billing", "erp"]
Vendor = Literal["salesforce", "netsuite", "hubspot", "stripe", "kantata", "tryton"]
FlowMode = Literal["live", "shadow", "off"]
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        # never echo the value: someone may have pasted the secret itself here
        raise ValueError(
            "must name an environment variable (upper-case letters, digits and underscores, "
            "like SF_CLIENT_SECRET), not hold the secret itself"
        )
    return value


EnvVarName = Annotated[str, AfterValidator(_env_name)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


# --- store and transport -------------------------------------------------------------------


class StoreConfig(_Section):
    """Where the inbox, journal, outbox and xref live: SQLite (embedded) or PostgreSQL."""

    url: str = DEFAULT_STORE_URL
    password_env: EnvVarName | None = None
    _password: SecretStr | None = PrivateAttr(default=None)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError(
                "must start with sqlite:/// or postgresql+psycopg:// (e.g. sqlite:///.q2c/q2c.db)"
            )
        if re.match(r"^[a-z+]+://[^/@]*:[^/@]*@", value):
            raise ValueError("holds a password: remove it and name it with password_env")
        return value

    @property
    def password(self) -> SecretStr | None:
        return self._password


class LocalTransport(_Section):
    """In-process delivery through the store's outbox; no broker."""

    kind: Literal["local"] = "local"


class NatsTransport(_Section):
    """NATS JetStream, for several workers partitioned by legal entity / region."""

    kind: Literal["nats"]
    url: str = "nats://127.0.0.1:4222"
    stream: str = Field(default="Q2C", pattern=r"^[A-Za-z0-9_-]+$")
    credentials_file: Path | None = None
    # Inbound: other systems and q2c nodes send CloudEvents to the hub over JetStream. With
    # no subjects the worker consumes nothing from NATS (it only publishes).
    inbound_subjects: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_*>.-]+$")]] = Field(
        default_factory=list, max_length=20
    )
    inbound_stream: str = Field(default="Q2C_INBOUND", pattern=r"^[A-Za-z0-9_-]+$")
    durable: str = Field(default="q2c-hub", pattern=r"^[A-Za-z0-9_-]+$")
    inbound_batch: int = Field(default=100, ge=1, le=1000)
    ack_wait_seconds: float = Field(default=30.0, gt=0, le=3600)
    redelivery_delay_seconds: float = Field(default=5.0, ge=0, le=3600)


TransportConfig = Annotated[LocalTransport | NatsTransport, Field(discriminator="kind")]


class LegalEntityConfig(_Section):
    code: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=200)
    country: str = Field(pattern="^[A-Z]{2}$")
    base_currency: CurrencyCode
    tax_id: str | None = None
    region: str | None = None
    business_unit: str | None = None

    def to_canonical(self) -> LegalEntity:
        return LegalEntity(id=self.code, **self.model_dump())


# --- systems and credentials ---------------------------------------------------------------


class _Auth(_Section):
    """Credentials named, never written: ``*_env`` fields resolve from the environment,
    ``*_file`` fields from files. ``secret("client_secret")`` gives the resolved value."""

    _secrets: dict[str, SecretStr] = PrivateAttr(default_factory=dict)

    def secret(self, name: str) -> SecretStr:
        try:
            return self._secrets[name]
        except KeyError:
            raise ConfigError(
                f"credential {name!r} is not available (sandbox system or not configured)"
            ) from None

    @property
    def secrets(self) -> Mapping[str, SecretStr]:
        return dict(self._secrets)

    def references(self) -> Iterator[tuple[str, str, str]]:
        """(key, "env" | "file", variable name or path) for every credential reference."""
        for key in type(self).model_fields:
            value = getattr(self, key)
            if value is not None and key.endswith(("_env", "_file")):
                yield key, key.rsplit("_", 1)[1], str(value)


class ClientCredentialsAuth(_Auth):
    flow: Literal["client_credentials"]
    client_id_env: EnvVarName
    client_secret_env: EnvVarName


class JwtBearerAuth(_Auth):
    flow: Literal["jwt_bearer"]
    client_id_env: EnvVarName
    username: str
    private_key_file: Path


class NetSuiteM2MAuth(_Auth):
    flow: Literal["m2m"]
    client_id_env: EnvVarName
    certificate_id_env: EnvVarName
    private_key_file: Path


class TokenBasedAuth(_Auth):
    flow: Literal["tba"]
    consumer_key_env: EnvVarName
    consumer_secret_env: EnvVarName
    token_id_env: EnvVarName
    token_secret_env: EnvVarName


class ApiKeyAuth(_Auth):
    flow: Literal["api_key"]
    api_key_env: EnvVarName
    webhook_secret_env: EnvVarName | None = Field(
        default=None, description="the vendor's webhook signing secret (Stripe: whsec_...)"
    )


class PasswordAuth(_Auth):
    flow: Literal["password"]
    username: str
    password_env: EnvVarName


AuthConfig = Annotated[
    Union[  # noqa: UP007 - a discriminated union reads better as a list
        ClientCredentialsAuth,
        JwtBearerAuth,
        NetSuiteM2MAuth,
        TokenBasedAuth,
        ApiKeyAuth,
        PasswordAuth,
    ],
    Field(discriminator="flow"),
]


class RateLimitConfig(_Section):
    per_second: float = Field(gt=0)
    burst: int = Field(ge=1)


class SystemConfig(_Section):
    """One connection. ``sandbox: true`` runs the bundled emulator in process, no credentials."""

    vendor: Vendor
    roles: list[Role] = Field(min_length=1)
    sandbox: bool = False
    base_url: str | None = Field(default=None, pattern=r"^https?://")
    login_url: str | None = Field(default=None, pattern=r"^https?://")
    api_version: str | None = None
    auth: AuthConfig | None = None
    account_id: str | None = None
    database: str | None = Field(default=None, description="Tryton: the database to log in to")
    legal_entities: list[str] | None = Field(
        default=None, description="legal entity codes this system serves; omitted: all"
    )
    rate_limit: RateLimitConfig | None = None
    timeout_seconds: float = Field(default=10, gt=0, le=600)

    def serves(self, legal_entity: str) -> bool:
        return self.legal_entities is None or legal_entity in self.legal_entities


# --- rules, rollout, retention --------------------------------------------------------------


class OwnershipRuleConfig(_Section):
    create: list[str] = Field(default_factory=list)
    update: list[str] | None = Field(default=None, description="omitted: same as create")

    @property
    def updaters(self) -> list[str]:
        return self.create if self.update is None else self.update


class ApprovalConfig(_Section):
    """ERP approval checks before a new customer is created."""

    max_new_customer_credit_limit: Money | None = None
    require_tax_id: bool = True


class RetryConfig(_Section):
    attempts: int = Field(default=6, ge=1, le=100)
    initial_seconds: float = Field(default=0.5, gt=0)
    max_seconds: float = Field(default=60, gt=0)
    multiplier: float = Field(default=2.0, ge=1)
    jitter: float = Field(default=0.2, ge=0, le=1)


class FlowConfig(_Section):
    """Phased rollout: live for ``enabled_for``, computed-but-not-written for ``shadow_for``."""

    enabled_for: list[str] = Field(default_factory=list)
    shadow_for: list[str] = Field(default_factory=list)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    max_replays: int = Field(default=5, ge=0)
    schedule: str | None = Field(
        default=None,
        description="crontab expression (UTC) for scheduled flows, e.g. '0 2 * * *'",
    )

    @field_validator("schedule")
    @classmethod
    def _crontab(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(
                f"{value!r} is not a crontab expression (minute hour day month weekday): {exc}"
            ) from None
        return value

    def mode(self, legal_entity: str) -> FlowMode:
        if legal_entity in self.enabled_for or ANY_ENTITY in self.enabled_for:
            return "live"
        if legal_entity in self.shadow_for or ANY_ENTITY in self.shadow_for:
            return "shadow"
        return "off"


class FlowsConfig(_Section):
    opportunity_to_project: FlowConfig = Field(default_factory=FlowConfig)
    delivery_to_billing: FlowConfig = Field(default_factory=FlowConfig)
    invoice_to_ledger: FlowConfig = Field(default_factory=FlowConfig)
    payment_to_ledger: FlowConfig = Field(default_factory=FlowConfig)
    revenue_recognition: FlowConfig = Field(default_factory=FlowConfig)
    reference_data_sync: FlowConfig = Field(default_factory=FlowConfig)

    @model_validator(mode="after")
    def _shadow_only_where_it_is_built(self) -> FlowsConfig:
        # Shadow mode records intended writes instead of sending them; the money path's
        # later steps read back what the earlier ones wrote in billing and the ERP, so a
        # shadow run of it would have nothing true to compare. Refuse it rather than park.
        for name in FLOW_NAMES:
            if name != "opportunity_to_project" and getattr(self, name).shadow_for:
                raise ValueError(
                    f"{name}.shadow_for: shadow mode is available for opportunity_to_project "
                    f"only; run {name} live (enabled_for) for the legal entities to bill, or "
                    "leave it off"
                )
        return self


FLOW_NAMES = tuple(FlowsConfig.model_fields)


class ErpMigrationConfig(_Section):
    """ERP migration parallel run: two ERPs for the same legal entities.

    Every posting (customer, project, sales order, AR invoice, customer payment, journal
    entry) goes to the system of record first, then to the other ERP with the same external
    id; the flows keep the system of record's ids. Cut-over is ``system_of_record: target``:
    no flow changes, and the legacy ERP keeps receiving the postings until the section is
    removed. ``q2c reconcile`` compares the two ERPs' receivables per customer.
    """

    legacy: str = Field(description="the ERP being replaced (a name under systems)")
    target: str = Field(description="the ERP being introduced (a name under systems)")
    system_of_record: Literal["legacy", "target"] = "legacy"
    legal_entities: list[str] = Field(
        min_length=1, description="legal entity codes whose postings go to both ERPs"
    )

    @property
    def record_system(self) -> str:
        return self.legacy if self.system_of_record == "legacy" else self.target

    @property
    def secondary_system(self) -> str:
        return self.target if self.system_of_record == "legacy" else self.legacy


class PayloadHistoryConfig(_Section):
    retention_days: int = Field(default=90, ge=1)
    redact_fields: list[str] = Field(
        default_factory=lambda: ["email", "phone", "tax_id", "vatRegNumber", "Tax_Id__c"]
    )


# --- HTTP API: clients, token signing, external issuer, webhooks -----------------------------

ApiScope = Literal["read", "operate", "ingest", "admin"]


class ApiRateLimit(_Section):
    """Per-client request budget: a token bucket refilled at ``requests_per_minute``."""

    requests_per_minute: int = Field(default=600, ge=1, le=1_000_000)
    burst: int = Field(default=60, ge=1, le=100_000)


class ApiClientConfig(_Section):
    """One OAuth2 client-credentials client of ``POST /v1/token``."""

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    secret_env: EnvVarName
    scopes: list[ApiScope] = Field(min_length=1)
    rate_limit: ApiRateLimit = Field(default_factory=ApiRateLimit)
    _secret: SecretStr | None = PrivateAttr(default=None)

    @property
    def secret(self) -> SecretStr | None:
        return self._secret


class TokenSigningConfig(_Section):
    """How q2c signs the tokens it issues. HS256 without ``key_env`` uses a random key made
    at start-up: tokens then die with the process and are not shared between replicas."""

    algorithm: Literal["HS256", "RS256", "EdDSA"] = "HS256"
    key_env: EnvVarName | None = Field(default=None, description="HS256 shared secret")
    private_key_file: Path | None = Field(default=None, description="RS256/EdDSA PEM key")
    issuer: str = Field(default="q2c", min_length=1)
    audience: str = Field(default="q2c-api", min_length=1)
    ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    _key: SecretStr | None = PrivateAttr(default=None)

    @property
    def key(self) -> SecretStr | None:
        return self._key


JwsAlgorithm = Literal["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]


class ExternalIssuerConfig(_Section):
    """Tokens from an identity provider, verified against its JWKS."""

    issuer: str = Field(min_length=1)
    jwks_url: str = Field(pattern=r"^https?://")
    audience: str = Field(min_length=1)
    algorithms: tuple[JwsAlgorithm, ...] = Field(default=("RS256",), min_length=1)
    scope_claim: str = "scope"
    client_claim: str = Field(default="azp", description="falls back to client_id, then sub")
    rate_limit: ApiRateLimit = Field(default_factory=ApiRateLimit)


class WebhookConfig(_Section):
    """A ``POST /v1/webhooks/{name}`` endpoint. ``stripe`` checks Stripe-Signature; ``kantata``
    (Kantata signs nothing, so its relay signs) and ``hmac`` check the generic HMAC-SHA256
    headers. ``system`` names the configured system whose records are fetched."""

    kind: Literal["stripe", "kantata", "hmac"]
    system: str | None = Field(default=None, description="omitted: the endpoint's name")
    secret_env: EnvVarName | None = None
    tolerance_seconds: int = Field(default=300, ge=1, le=3600)
    signature_header: str = Field(default="X-Q2C-Signature", min_length=1)
    timestamp_header: str = Field(default="X-Q2C-Timestamp", min_length=1)
    _secret: SecretStr | None = PrivateAttr(default=None)

    @property
    def secret(self) -> SecretStr | None:
        return self._secret


class ApiConfig(_Section):
    """``q2c serve``: who may call the API. Auth is on unless ``auth: disabled`` (local only)."""

    auth: Literal["enabled", "disabled"] = "enabled"
    token: TokenSigningConfig = Field(default_factory=TokenSigningConfig)
    clients: list[ApiClientConfig] = Field(default_factory=list)
    external_issuer: ExternalIssuerConfig | None = None
    webhooks: dict[str, WebhookConfig] = Field(default_factory=dict)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)


# --- observability --------------------------------------------------------------------------


class TracingConfig(_Section):
    """OpenTelemetry traces of every run: inbound event -> steps -> vendor calls. Off by default
    (then it costs a flag check); ``otlp`` sends to ``endpoint``, else to the collector the
    standard ``OTEL_EXPORTER_OTLP_*`` environment variables name (default localhost:4318)."""

    enabled: bool = False
    exporter: Literal["otlp", "console", "none"] = "otlp"
    endpoint: str | None = Field(default=None, pattern=r"^https?://")
    sample_ratio: float = Field(default=1.0, ge=0, le=1)
    service_name: str = Field(default="q2c", min_length=1)


class ObservabilityConfig(_Section):
    tracing: TracingConfig = Field(default_factory=TracingConfig)


class PartitionsConfig(_Section):
    key: Literal["legal_entity", "region", "business_unit"] = "legal_entity"


class Q2CConfig(_Section):
    """The whole of ``q2c.yaml``, validated and with secrets resolved."""

    version: int
    store: StoreConfig = Field(default_factory=StoreConfig)
    transport: TransportConfig = Field(default_factory=LocalTransport)
    legal_entities: list[LegalEntityConfig] = Field(min_length=1)
    systems: dict[str, SystemConfig] = Field(min_length=1)
    ownership: dict[str, OwnershipRuleConfig] = Field(default_factory=dict)
    mappings: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    approval: ApprovalConfig = Field(default_factory=ApprovalConfig)
    flows: FlowsConfig = Field(default_factory=FlowsConfig)
    erp_migration: ErpMigrationConfig | None = None
    payload_history: PayloadHistoryConfig = Field(default_factory=PayloadHistoryConfig)
    partitions: PartitionsConfig = Field(default_factory=PartitionsConfig)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    _entries: tuple[MappingEntry, ...] = PrivateAttr(default=())

    @field_validator("version")
    @classmethod
    def _supported(cls, value: int) -> int:
        if value != CONFIG_VERSION:
            raise ValueError(
                f"unsupported version {value}; this q2c reads version {CONFIG_VERSION}"
            )
        return value

    @property
    def legal_entity_codes(self) -> list[str]:
        return [entity.code for entity in self.legal_entities]

    def legal_entity(self, code: str) -> LegalEntityConfig:
        for entity in self.legal_entities:
            if entity.code == code:
                return entity
        raise ConfigError(f"q2c.yaml: legal_entities: unknown legal entity {code!r}")

    def system(self, name: str) -> SystemConfig:
        try:
            return self.systems[name]
        except KeyError:
            raise ConfigError(f"q2c.yaml: systems: unknown system {name!r}") from None

    def systems_with_role(self, role: str, legal_entity: str | None = None) -> list[str]:
        return [
            name
            for name, system in self.systems.items()
            if role in system.roles and (legal_entity is None or system.serves(legal_entity))
        ]

    def flow_mode(self, flow: str, legal_entity: str) -> FlowMode:
        if flow not in FLOW_NAMES:
            raise ConfigError(f"q2c.yaml: flows: unknown flow {flow!r}")
        settings: FlowConfig = getattr(self.flows, flow)
        return settings.mode(legal_entity)

    def mapping_entries(self) -> tuple[MappingEntry, ...]:
        """Every value mapping, flattened: (dimension, value, legal entity or "*", system, id)."""
        if not self._entries and self.mappings:  # built without parse_config (tests, tools)
            self._entries = tuple(parse_mappings(self.mappings).entries)
        return self._entries


# --- loading --------------------------------------------------------------------------------


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Q2CConfig:
    """Read and validate a ``q2c.yaml``; relative ``*_file`` paths are relative to it."""
    source = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read {path}: {exc.strerror}", detail=str(exc)) from exc
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: {where}{problem}", detail=str(exc)) from exc
    return parse_config(data, env, source=source, base_dir=path.parent)


def parse_config(
    data: dict[str, Any],
    env: Mapping[str, str] | None = None,
    source: str = "q2c.yaml",
    *,
    base_dir: Path | None = None,
) -> Q2CConfig:
    """Validate already-parsed YAML; ``env`` defaults to ``os.environ``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections (version, systems, ...)")
    try:
        config = Q2CConfig.model_validate(data)
    except PydanticValidationError as exc:
        issues = [issue_from_pydantic(error, data, Q2CConfig) for error in exc.errors()]
        raise config_error(source, issues) from exc
    environment = os.environ if env is None else env
    issues = check_config(config, environment, base_dir or Path.cwd())
    issues += _api_issues(config, environment, base_dir or Path.cwd())
    if issues:
        raise config_error(source, issues)
    return config


def _api_issues(config: Q2CConfig, env: Mapping[str, str], base_dir: Path) -> list[Issue]:
    """Checks of the ``api`` section; resolves its secrets onto the config as it goes."""
    api, issues = config.api, []

    def secret(where: tuple[str | int, ...], variable: str, required: bool) -> SecretStr | None:
        value = env.get(variable)
        if value:
            return SecretStr(value)
        if required:
            state = "is not set" if value is None else "is empty"
            message = f"environment variable {variable} {state}"
            hint = f"Export {variable} before q2c serve."
            issues.append(Issue(where, message, "env_missing", hint))
        return None

    enabled = api.auth == "enabled"
    seen: set[str] = set()
    for index, client in enumerate(api.clients):
        if client.id in seen:
            issues.append(Issue(("api", "clients", index, "id"), f"duplicate client {client.id!r}"))
        seen.add(client.id)
        client._secret = secret(("api", "clients", index, "secret_env"), client.secret_env, enabled)
    token = api.token
    if token.algorithm == "HS256":
        if token.key_env is not None:
            token._key = secret(("api", "token", "key_env"), token.key_env, enabled)
            if token._key is not None and len(token._key.get_secret_value().encode()) < 32:
                message = f"{token.key_env} holds fewer than 32 bytes: too short for HS256"
                issues.append(Issue(("api", "token", "key_env"), message, "weak_key"))
    elif token.private_key_file is None:
        message = f"required for {token.algorithm} (a PEM private key)"
        issues.append(Issue(("api", "token", "private_key_file"), message, "missing"))
    else:
        path = token.private_key_file
        full = path if path.is_absolute() else base_dir / path
        try:
            token._key = SecretStr(full.read_text(encoding="utf-8"))
        except OSError as exc:
            loc = ("api", "token", "private_key_file")
            issues.append(Issue(loc, f"cannot read file {full}: {exc.strerror}", "file_missing"))
    vendors = {"stripe": "stripe", "kantata": "kantata"}
    for name, hook in api.webhooks.items():
        loc = ("api", "webhooks", name)
        if not re.match(r"^[a-z][a-z0-9_-]*$", name):
            issues.append(Issue(loc, "webhook names are lower-case letters, digits, - and _"))
        if hook.kind in vendors:
            system_name = hook.system or name
            system = config.systems.get(system_name)
            if system is None or system.vendor != vendors[hook.kind]:
                message = f"names no {vendors[hook.kind]} system ({system_name!r})"
                issues.append(Issue((*loc, "system"), message, "unknown_system"))
        elif hook.system is not None:
            issues.append(Issue((*loc, "system"), "applies to stripe and kantata webhooks only"))
        if hook.secret_env is not None:
            hook._secret = secret((*loc, "secret_env"), hook.secret_env, True)
        elif hook.kind != "stripe":
            message = "required: the shared secret the sender signs with"
            issues.append(Issue((*loc, "secret_env"), message, "missing"))
    return issues


def default_demo_config() -> Q2CConfig:
    """The embedded configuration of ``q2c demo``: SQLite under ./.q2c/, bundled sandboxes."""
    return parse_config(yaml.safe_load(DEMO_CONFIG_YAML), env={}, source="demo config")


DEMO_CONFIG_YAML = """\
version: 1
store: {url: "sqlite:///.q2c/q2c.db"}
transport: {kind: local}
legal_entities:
  - {code: US01, name: "Acme Consulting Inc.", country: US, base_currency: USD,
     region: us, business_unit: consulting}
  - {code: UK01, name: "Acme Consulting Ltd", country: GB, base_currency: GBP,
     region: emea, business_unit: consulting}
systems:
  salesforce: {vendor: salesforce, roles: [crm, cpq], sandbox: true, api_version: v62.0}
  netsuite: {vendor: netsuite, roles: [erp, psa, billing], sandbox: true, account_id: "1234567_SB1"}
ownership:
  customer: {create: [netsuite], update: [netsuite]}
  project: {create: [netsuite], update: [netsuite]}
  proposal: {create: [salesforce], update: [salesforce]}
mappings:
  subsidiary: {US01: {netsuite: "1"}, UK01: {netsuite: "2"}}
  department:
    Consulting-US: {US01: {netsuite: "3"}}
    Consulting-UK: {UK01: {netsuite: "4"}}
  item:
    CONSULT-SR: {"*": {netsuite: "21"}}
    CONSULT-JR: {"*": {netsuite: "22"}}
    EXPENSES: {"*": {netsuite: "30"}}
  tax_nexus: {US01: {netsuite: "US-CA"}, UK01: {netsuite: "GB"}}
approval: {max_new_customer_credit_limit: {amount: "250000", currency: USD}, require_tax_id: true}
flows:
  opportunity_to_project: {enabled_for: [US01, UK01]}
  delivery_to_billing: {enabled_for: [US01, UK01]}
  invoice_to_ledger: {enabled_for: [US01, UK01]}
  payment_to_ledger: {enabled_for: [US01, UK01]}
  revenue_recognition: {enabled_for: [US01, UK01]}
  reference_data_sync: {enabled_for: [US01, UK01]}
payload_history: {retention_days: 90}
partitions: {key: legal_entity}
"""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: the second ``auth:`` would silently win."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
