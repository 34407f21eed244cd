"""q2c.yaml: a valid file loads; every mistake is reported at its exact key path; secrets hide."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from q2c.canonical.money import Money
from q2c.config import (
    ClientCredentialsAuth,
    Q2CConfig,
    default_demo_config,
    load_config,
    parse_config,
)
from q2c.errors import ConfigError
from q2c.mapping.ownership import OwnershipRules
from q2c.mapping.value_maps import MappingEntry, ValueMaps

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "q2c.example.yaml"

ENV = {
    "SF_CLIENT_ID": "3MVG9-sf-client-id",
    "SF_CLIENT_SECRET": "sf-very-secret-1",
    "NS_CLIENT_ID": "ns-client-id-2",
    "NS_CERTIFICATE_ID": "ns-cert-id-3",
    "NS_CONSUMER_KEY": "ns-consumer-key-4",
    "NS_CONSUMER_SECRET": "ns-consumer-secret-5",
    "NS_TOKEN_ID": "ns-token-id-6",
    "NS_TOKEN_SECRET": "ns-token-secret-7",
}
PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\nnot-a-real-key-8\n-----END PRIVATE KEY-----\n"
SECRET_VALUES = [*ENV.values(), "not-a-real-key-8"]


def valid() -> dict[str, Any]:
    """A complete config whose systems are real (not sandboxes); credentials come from ENV."""
    return {
        "version": 1,
        "store": {"url": "sqlite:///.q2c/q2c.db"},
        "transport": {"kind": "local"},
        "legal_entities": [
            {"code": "US01", "name": "Acme Consulting Inc.", "country": "US",
             "base_currency": "USD", "region": "us", "business_unit": "consulting"},
            {"code": "UK01", "name": "Acme Consulting Ltd", "country": "GB",
             "base_currency": "GBP"},
        ],
        "systems": {
            "salesforce": {
                "vendor": "salesforce", "roles": ["crm", "cpq"],
                "base_url": "https://acme.my.salesforce.com", "api_version": "v62.0",
                "auth": {"flow": "client_credentials", "client_id_env": "SF_CLIENT_ID",
                         "client_secret_env": "SF_CLIENT_SECRET"},
                "rate_limit": {"per_second": 20, "burst": 40},
            },
            "netsuite": {
                "vendor": "netsuite", "roles": ["erp", "psa"], "account_id": "1234567_SB1",
                "auth": {"flow": "tba", "consumer_key_env": "NS_CONSUMER_KEY",
                         "consumer_secret_env": "NS_CONSUMER_SECRET",
                         "token_id_env": "NS_TOKEN_ID", "token_secret_env": "NS_TOKEN_SECRET"},
            },
        },
        "ownership": {
            "customer": {"create": ["netsuite"], "update": ["netsuite"]},
            "proposal": {"create": ["salesforce"]},
        },
        "mappings": {
            "subsidiary": {"US01": {"netsuite": "1"}, "UK01": {"netsuite": 2}},
            "department": {"Consulting-US": {"US01": {"netsuite": "3"}}},
            "item": {"CONSULT-SR": {"*": {"netsuite": "21"}}},
        },
        "approval": {"max_new_customer_credit_limit": {"amount": "250000", "currency": "USD"}},
        "flows": {"opportunity_to_project": {"enabled_for": ["US01"], "shadow_for": ["UK01"]}},
    }  # fmt: skip


def config_error(data: dict[str, Any], env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, env=ENV if env is None else env)
    return caught.value


def changed(path: str, value: Any) -> dict[str, Any]:
    """``valid()`` with one key (dotted path; list indexes as numbers) set, or deleted."""
    data = copy.deepcopy(valid())
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = data
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data


DELETE = object()


# --- valid files ---------------------------------------------------------------------------------


def test_a_valid_config_loads_with_secrets_resolved():
    config = parse_config(valid(), env=ENV)
    assert isinstance(config, Q2CConfig)
    salesforce = config.system("salesforce")
    assert isinstance(salesforce.auth, ClientCredentialsAuth)
    assert salesforce.auth.secret("client_secret").get_secret_value() == "sf-very-secret-1"
    assert salesforce.auth.secret("client_id").get_secret_value() == "3MVG9-sf-client-id"
    netsuite_auth = config.system("netsuite").auth
    assert netsuite_auth is not None
    assert set(netsuite_auth.secrets) == {
        "consumer_key", "consumer_secret", "token_id", "token_secret",
    }  # fmt: skip
    assert config.approval.max_new_customer_credit_limit == Money.of("250000", "USD")
    assert config.legal_entity("US01").to_canonical().base_currency == "USD"
    assert config.systems_with_role("erp", "UK01") == ["netsuite"]
    assert config.flow_mode("opportunity_to_project", "US01") == "live"
    assert config.flow_mode("opportunity_to_project", "UK01") == "shadow"
    assert config.flow_mode("invoice_to_ledger", "US01") == "off"
    assert MappingEntry("subsidiary", "UK01", "*", "netsuite", "2") in config.mapping_entries()


def test_the_example_file_at_the_repository_root_loads(tmp_path):
    config_file = tmp_path / "q2c.yaml"
    shutil.copy(EXAMPLE, config_file)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "netsuite-m2m.pem").write_text(PRIVATE_KEY)

    config = load_config(config_file, env=ENV)

    assert config.store.url == "sqlite:///.q2c/q2c.db"
    assert config.transport.kind == "local"
    assert config.legal_entity_codes == ["US01", "UK01"]
    netsuite = config.system("netsuite")
    assert netsuite.account_id == "1234567_SB1"
    assert netsuite.auth is not None
    assert netsuite.auth.secret("private_key").get_secret_value() == PRIVATE_KEY
    assert netsuite.auth.secret("certificate_id").get_secret_value() == "ns-cert-id-3"
    assert config.flows.opportunity_to_project.retry.attempts == 6
    assert config.payload_history.redact_fields[-1] == "Tax_Id__c"
    maps = ValueMaps.from_config(config)
    assert maps.resolve("department", "Consulting-UK", "UK01", "netsuite") == "4"
    assert maps.resolve("subsidiary", "US01", "US01", "netsuite") == "1"
    OwnershipRules.from_config(config).check("customer", "netsuite", "update")


def test_the_example_file_without_its_environment_names_every_missing_variable(tmp_path):
    config_file = tmp_path / "q2c.yaml"
    shutil.copy(EXAMPLE, config_file)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "netsuite-m2m.pem").write_text(PRIVATE_KEY)
    with pytest.raises(ConfigError) as caught:
        load_config(config_file, env={})
    assert caught.value.message.splitlines() == [
        f"q2c.yaml: systems.{system}.auth.{key}: environment variable {variable} is not set"
        for system, key, variable in [
            ("salesforce", "client_id_env", "SF_CLIENT_ID"),
            ("salesforce", "client_secret_env", "SF_CLIENT_SECRET"),
            ("netsuite", "client_id_env", "NS_CLIENT_ID"),
            ("netsuite", "certificate_id_env", "NS_CERTIFICATE_ID"),
        ]
    ]


def test_the_embedded_demo_config_uses_sqlite_and_sandboxes():
    config = default_demo_config()
    assert config.store.url == "sqlite:///.q2c/q2c.db"
    assert config.transport.kind == "local"
    assert all(system.sandbox for system in config.systems.values())
    assert all(system.auth is None for system in config.systems.values())
    assert config.systems_with_role("crm") == ["salesforce"]
    assert config.systems_with_role("erp") == ["netsuite"]
    assert ValueMaps.from_config(config).resolve("item", "CONSULT-SR", "UK01", "netsuite") == "21"


def test_sandbox_systems_need_no_credentials():
    data = valid()
    for system in data["systems"].values():
        system["sandbox"] = True
    del data["systems"]["netsuite"]["auth"]
    config = parse_config(data, env={})
    salesforce_auth = config.system("salesforce").auth
    assert salesforce_auth is not None and salesforce_auth.secrets == {}
    with pytest.raises(ConfigError, match="credential 'client_secret' is not available"):
        salesforce_auth.secret("client_secret")


def test_defaults_fill_optional_sections():
    data = valid()
    for key in ("store", "transport", "ownership", "mappings", "approval", "flows"):
        del data[key]
    config = parse_config(data, env=ENV)
    assert config.store.url == "sqlite:///.q2c/q2c.db"
    assert config.transport.kind == "local"
    assert config.approval.require_tax_id is True
    assert config.partitions.key == "legal_entity"
    assert config.payload_history.retention_days == 90


def test_nats_transport():
    data = changed("transport", {"kind": "nats", "url": "nats://10.0.0.5:4222", "stream": "Q2C"})
    transport = parse_config(data, env=ENV).transport
    assert transport.kind == "nats" and transport.url == "nats://10.0.0.5:4222"


def test_postgres_password_comes_from_the_environment():
    data = changed("store", {"url": "postgresql+psycopg://q2c@db/q2c", "password_env": "PGPASS"})
    store = parse_config(data, env={**ENV, "PGPASS": "pg-secret-9"}).store
    assert store.password is not None and store.password.get_secret_value() == "pg-secret-9"


# --- secrets never print -------------------------------------------------------------------------


def test_secrets_do_not_appear_in_repr_str_or_json(tmp_path):
    config_file = tmp_path / "q2c.yaml"
    shutil.copy(EXAMPLE, config_file)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "netsuite-m2m.pem").write_text(PRIVATE_KEY)
    config = load_config(config_file, env=ENV)
    auth = config.system("salesforce").auth
    assert auth is not None
    renderings = [
        repr(config), str(config), config.model_dump_json(),
        json.dumps(config.model_dump(mode="json")), repr(auth), str(auth), repr(auth.secrets),
        str(auth.secret("client_secret")),
        repr(config.system("netsuite").auth),
    ]  # fmt: skip
    for text in renderings:
        for secret in SECRET_VALUES:
            assert secret not in text
    assert "SF_CLIENT_SECRET" in config.model_dump_json()  # the variable's name is fine


def test_a_literal_secret_is_refused_and_never_echoed():
    error = config_error(changed("systems.salesforce.auth.client_secret", "hunter2-literal"))
    assert error.message == (
        "q2c.yaml: systems.salesforce.auth.client_secret: secrets are never written in q2c.yaml; "
        "use client_secret_env to name the environment variable that holds it"
    )
    for text in (error.message, error.detail, str(error.suggested_fix)):
        assert "hunter2-literal" not in text


def test_a_secret_pasted_into_an_env_key_is_refused_and_never_echoed():
    error = config_error(changed("systems.salesforce.auth.client_secret_env", "s3cr3t/Value+x"))
    assert error.message == (
        "q2c.yaml: systems.salesforce.auth.client_secret_env: must name an environment variable "
        "(upper-case letters, digits and underscores, like SF_CLIENT_SECRET), not hold the "
        "secret itself"
    )
    assert "s3cr3t" not in error.detail


# --- every kind of mistake, at its exact key path -----------------------------------------------


ERRORS: list[tuple[str, dict[str, Any], dict[str, str] | None, str]] = [
    ("env var not set", valid(), {k: v for k, v in ENV.items() if k != "NS_TOKEN_ID"},
     "systems.netsuite.auth.token_id_env: environment variable NS_TOKEN_ID is not set"),
    ("env var empty", valid(), {**ENV, "SF_CLIENT_ID": ""},
     "systems.salesforce.auth.client_id_env: environment variable SF_CLIENT_ID is empty"),
    ("unknown legal entity in a flow",
     changed("flows.opportunity_to_project.enabled_for", ["US01", "FR01"]), None,
     "flows.opportunity_to_project.enabled_for[1]: unknown legal entity 'FR01'"),
    ("live and shadow at once",
     changed("flows.opportunity_to_project.shadow_for", ["UK01", "US01"]), None,
     "flows.opportunity_to_project.shadow_for[1]: legal entity 'US01' is both live "
     "(enabled_for) and in shadow mode"),
    ("unknown flow", changed("flows.opportunity_to_projct", {}), None,
     "flows.opportunity_to_projct: unknown key; expected one of: opportunity_to_project, "
     "delivery_to_billing, invoice_to_ledger, payment_to_ledger, revenue_recognition, "
     "reference_data_sync"),
    ("retry bounds", changed("flows.opportunity_to_project.retry", {"initial_seconds": 5,
                                                                    "max_seconds": 1}), None,
     "flows.opportunity_to_project.retry.max_seconds: 1.0 is below initial_seconds 5.0"),
    ("retry attempts", changed("flows.opportunity_to_project.retry", {"attempts": 0}), None,
     "flows.opportunity_to_project.retry.attempts: Input should be greater than or equal to 1"),
    ("unknown system in ownership",
     changed("ownership.customer.update", ["netsuite", "netsuit"]), None,
     "ownership.customer.update[1]: unknown system 'netsuit'"),
    ("unknown object in ownership", changed("ownership.custommer", {"create": ["netsuite"]}), None,
     "ownership.custommer: unknown canonical object; expected one of: legal_entity, customer, "
     "contract, project, proposal, rate_card, billing_event, invoice, payment, revenue_schedule, "
     "tax_code, exchange_rate, item, dimension_map"),
    ("unknown key in an ownership rule", changed("ownership.customer.delete", ["netsuite"]), None,
     "ownership.customer.delete: unknown key; expected one of: create, update"),
    ("mapping to an unknown legal entity",
     changed("mappings.department.Consulting-US", {"FR01": {"netsuite": "3"}}), None,
     'mappings.department."Consulting-US".FR01: unknown legal entity \'FR01\''),
    ("mapping to an unknown system",
     changed("mappings.item.CONSULT-SR", {"*": {"sap": "21"}}), None,
     'mappings.item."CONSULT-SR"."*".sap: unknown system \'sap\''),
    ("shorthand mapping to an unknown system",
     changed("mappings.subsidiary.US01", {"netsuit": "1"}), None,
     "mappings.subsidiary.US01.netsuit: unknown system 'netsuit'"),
    ("subsidiary of an unknown legal entity",
     changed("mappings.subsidiary.FR01", {"netsuite": "9"}), None,
     "mappings.subsidiary.FR01: unknown legal entity 'FR01'"),
    ("external id is not a string",
     changed("mappings.department.Consulting-US.US01.netsuite", ["3"]), None,
     'mappings.department."Consulting-US".US01.netsuite: external id must be a non-empty '
     'string such as "21"'),
    ("mixed mapping shapes",
     changed("mappings.item.CONSULT-SR", {"netsuite": "21", "US01": {"netsuite": "22"}}), None,
     'mappings.item."CONSULT-SR": mixes systems and legal entities: write {legal entity: '
     "{system: id}}"),
    ("dimension name", changed("mappings.Department", {"X": {"netsuite": "1"}}), None,
     "mappings.Department: dimension names are lower-case, like item"),
    ("literal private key",
     changed("systems.netsuite.auth", {"flow": "m2m", "client_id_env": "NS_CLIENT_ID",
                                       "certificate_id_env": "NS_CERTIFICATE_ID",
                                       "private_key_file": "k.pem", "private_key": "-----"}), None,
     "systems.netsuite.auth.private_key: secrets are never written in q2c.yaml; use "
     "private_key_file to name the file that holds it"),
    ("typo in an auth key", changed("systems.salesforce.auth.clientid_env", "X"), None,
     "systems.salesforce.auth.clientid_env: unknown key; expected one of: flow, client_id_env, "
     "client_secret_env"),
    ("unknown auth flow", changed("systems.salesforce.auth.flow", "oauth"), None,
     "systems.salesforce.auth.flow: unknown value 'oauth'"),
    ("auth flow missing", changed("systems.salesforce.auth.flow", DELETE), None,
     "systems.salesforce.auth.flow: required key is missing"),
    ("auth key missing", changed("systems.salesforce.auth.client_secret_env", DELETE), None,
     "systems.salesforce.auth.client_secret_env: required key is missing"),
    ("auth flow of another vendor",
     changed("systems.salesforce.auth", {"flow": "tba", "consumer_key_env": "NS_CONSUMER_KEY",
                                         "consumer_secret_env": "NS_CONSUMER_SECRET",
                                         "token_id_env": "NS_TOKEN_ID",
                                         "token_secret_env": "NS_TOKEN_SECRET"}), None,
     "systems.salesforce.auth.flow: salesforce does not support auth flow 'tba'"),
    ("real system without auth", changed("systems.salesforce.auth", DELETE), None,
     "systems.salesforce.auth: required for a system that is not a sandbox"),
    ("netsuite without account", changed("systems.netsuite.account_id", DELETE), None,
     'systems.netsuite.account_id: required for NetSuite (e.g. "1234567" or "1234567_SB1")'),
    ("account id on salesforce", changed("systems.salesforce.account_id", "1"), None,
     "systems.salesforce.account_id: applies to netsuite systems only"),
    ("unknown vendor", changed("systems.netsuite.vendor", "sap"), None,
     "systems.netsuite.vendor: Input should be 'salesforce', 'netsuite', 'hubspot', 'stripe', "
     "'kantata' or 'tryton'"),
    ("unknown role", changed("systems.salesforce.roles", ["crm", "marketing"]), None,
     "systems.salesforce.roles[1]: Input should be 'crm', 'cpq', 'psa', 'billing' or 'erp'"),
    ("unknown system key", changed("systems.salesforce.timeout", 5), None,
     "systems.salesforce.timeout: unknown key; expected one of: vendor, roles, sandbox, "
     "base_url, login_url, api_version, auth, account_id, database, legal_entities, rate_limit, "
     "timeout_seconds"),
    ("base url scheme", changed("systems.salesforce.base_url", "acme.my.salesforce.com"), None,
     "systems.salesforce.base_url: String should match pattern '^https?://'"),
    ("unknown legal entity served",
     changed("systems.netsuite.legal_entities", ["US01", "DE01"]), None,
     "systems.netsuite.legal_entities[1]: unknown legal entity 'DE01'"),
    ("float money", changed("approval.max_new_customer_credit_limit.amount", 250000.5), None,
     'approval.max_new_customer_credit_limit.amount: amount must be a decimal string such as '
     '"1250.00", got the floating-point number 250000.5; floats cannot represent every cent '
     "exactly"),
    ("unknown currency", changed("approval.max_new_customer_credit_limit.currency", "XYZ"), None,
     "approval.max_new_customer_credit_limit.currency: unknown currency 'XYZ': use an active "
     "ISO-4217 code such as USD or EUR"),
    ("legal entity field missing", changed("legal_entities.1.base_currency", DELETE), None,
     "legal_entities[1].base_currency: required key is missing"),
    ("legal entity country", changed("legal_entities.0.country", "USA"), None,
     "legal_entities[0].country: String should match pattern '^[A-Z]{2}$'"),
    ("duplicate legal entity",
     {**valid(), "legal_entities": [*valid()["legal_entities"], valid()["legal_entities"][0]]},
     None, "legal_entities[2].code: duplicate legal entity 'US01'"),
    ("no legal entities", changed("legal_entities", []), None,
     "legal_entities: List should have at least 1 item after validation, not 0"),
    ("store password in url", changed("store.url", "postgresql+psycopg://q2c:pw@db/q2c"), None,
     "store.url: holds a password: remove it and name it with password_env"),
    ("store scheme", changed("store.url", "mysql://db/q2c"), None,
     "store.url: must start with sqlite:/// or postgresql+psycopg:// (e.g. sqlite:///.q2c/q2c.db)"),
    ("transport typo", changed("transport", {"kind": "nats", "urll": "nats://x"}), None,
     "transport.urll: unknown key; expected one of: kind, url, stream, credentials_file, "
     "inbound_subjects, inbound_stream, durable, inbound_batch, ack_wait_seconds, "
     "redelivery_delay_seconds"),
    ("transport kind", changed("transport", {"kind": "kafka"}), None,
     "transport.kind: unknown value 'kafka'"),
    ("unsupported version", changed("version", 2), None,
     "version: unsupported version 2; this q2c reads version 1"),
    ("version missing", changed("version", DELETE), None, "version: required key is missing"),
    ("unknown section", changed("secrets", {}), None,
     "secrets: unknown key; expected one of: " + ", ".join(Q2CConfig.model_fields)),
    ("partition key", changed("partitions", {"key": "customer"}), None,
     "partitions.key: Input should be 'legal_entity', 'region' or 'business_unit'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "env", "line"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_each_error_names_its_exact_key_path(data, env, line):
    error = config_error(data, env)
    assert error.message == f"q2c.yaml: {line}"
    assert str(error) == error.message
    assert error.kind == "fatal"
    assert error.field == line.split(": ", 1)[0]
    detail = json.loads(error.detail)
    assert len(detail) == 1


def test_two_erps_for_one_legal_entity_are_refused():
    data = valid()
    data["systems"]["netsuite_uk"] = {
        "vendor": "netsuite", "roles": ["psa", "erp"], "sandbox": True,
        "legal_entities": ["UK01"],
    }  # fmt: skip
    error = config_error(data)
    assert error.message == (
        "q2c.yaml: systems.netsuite_uk.roles[1]: erp system 'netsuite' already serves legal "
        "entity UK01; only one erp system per legal entity is supported"
    )
    data["systems"]["netsuite"]["legal_entities"] = ["US01"]
    assert parse_config(data, env=ENV).systems_with_role("erp", "UK01") == ["netsuite_uk"]


def test_all_errors_are_reported_together_with_hints():
    data = changed("flows.opportunity_to_project.enabled_for", ["FR01"])
    data["ownership"]["customer"]["create"] = ["netsiute"]
    error = config_error(data)
    assert error.message.splitlines() == [
        "q2c.yaml: ownership.customer.create[0]: unknown system 'netsiute'",
        "q2c.yaml: flows.opportunity_to_project.enabled_for[0]: unknown legal entity 'FR01'",
    ]
    assert "Systems defined in q2c.yaml: salesforce, netsuite." in error.suggested_fix
    assert "Legal entities defined in q2c.yaml: US01, UK01." in error.suggested_fix
    assert [item["loc"] for item in json.loads(error.detail)] == [
        ["ownership", "customer", "create", 0],
        ["flows", "opportunity_to_project", "enabled_for", 0],
    ]


def test_a_typo_gets_a_did_you_mean_hint():
    error = config_error(changed("systems.salesforce.timeout", 5))
    assert error.suggested_fix == "Did you mean systems.salesforce.timeout_seconds?"


def test_missing_private_key_file_is_named(tmp_path):
    data = changed("systems.netsuite.auth", {
        "flow": "m2m", "client_id_env": "NS_CLIENT_ID",
        "certificate_id_env": "NS_CERTIFICATE_ID", "private_key_file": "keys/ns.pem",
    })  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        parse_config(data, env=ENV, base_dir=tmp_path)
    assert caught.value.message == (
        f"q2c.yaml: systems.netsuite.auth.private_key_file: cannot read file "
        f"{tmp_path / 'keys' / 'ns.pem'}: No such file or directory"
    )


# --- the file itself ---------------------------------------------------------------------------


def test_yaml_syntax_errors_give_line_and_column(tmp_path):
    path = tmp_path / "q2c.yaml"
    path.write_text("version: 1\nsystems:\n  salesforce: {vendor: salesforce\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=ENV)
    assert caught.value.message.startswith("q2c.yaml: line 4, column 1: ")


def test_duplicate_keys_are_refused(tmp_path):
    path = tmp_path / "q2c.yaml"
    path.write_text(yaml.safe_dump(valid(), sort_keys=False) + "version: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=ENV)
    assert caught.value.message.endswith(": duplicate key 'version'")
    assert caught.value.message.startswith("q2c.yaml: line ")


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path):
    path = tmp_path / "q2c.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match=r"^q2c\.yaml: expected a mapping of sections"):
        load_config(path, env=ENV)


def test_a_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot read .*nowhere\.yaml: No such file"):
        load_config(tmp_path / "nowhere.yaml", env=ENV)


def test_the_file_name_prefixes_every_message(tmp_path):
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(changed("version", 3)))
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=ENV)
    assert (
        caught.value.message
        == "prod.yaml: version: unsupported version 3; this q2c reads version 1"
    )


def test_env_defaults_to_the_process_environment(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    auth = parse_config(valid()).system("salesforce").auth
    assert auth is not None and auth.secret("client_id").get_secret_value() == ENV["SF_CLIENT_ID"]


def test_shadow_mode_on_the_money_path_is_refused_with_what_to_do_instead():
    from q2c.config import FlowsConfig

    with pytest.raises(ValueError, match="shadow mode is available for opportunity_to_project"
                                         " only; run invoice_to_ledger live"):
        FlowsConfig.model_validate({"invoice_to_ledger": {"shadow_for": ["US01"]}})
    assert FlowsConfig.model_validate(
        {"opportunity_to_project": {"shadow_for": ["US01"]}}
    ).opportunity_to_project.shadow_for == ["US01"]
