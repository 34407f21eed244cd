"""q2c.yaml ``erp_migration``: validated up front with messages an engineer can act on, and
wired by bootstrap so cut-over is a configuration flip."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from q2c.bootstrap import bootstrap
from q2c.config import parse_config
from q2c.connectors.parallel_run import ParallelRunErp
from q2c.errors import ConfigError


def config_data(**migration: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "store": {"url": "sqlite://"},
        "legal_entities": [
            {"code": "US01", "name": "Acme US", "country": "US", "base_currency": "USD"},
            {"code": "DE01", "name": "Acme DE", "country": "DE", "base_currency": "EUR"},
        ],
        "systems": {
            "netsuite": {"vendor": "netsuite", "roles": ["erp"], "sandbox": True},
            "tryton": {"vendor": "tryton", "roles": ["erp"], "sandbox": True},
            "salesforce": {"vendor": "salesforce", "roles": ["crm"], "sandbox": True},
        },
        "mappings": {"subsidiary": {"US01": {"netsuite": "1", "tryton": "1"}}},
        "erp_migration": {
            "legacy": "netsuite",
            "target": "tryton",
            "legal_entities": ["US01"],
            **migration,
        },
    }


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_config(data, env={})
    return raised.value.message


def test_two_erps_for_one_legal_entity_are_accepted_in_a_parallel_run() -> None:
    config = parse_config(config_data(), env={})
    assert config.erp_migration is not None
    assert (config.erp_migration.record_system, config.erp_migration.secondary_system) == (
        "netsuite",
        "tryton",
    )
    flipped = parse_config(config_data(system_of_record="target"), env={})
    assert flipped.erp_migration is not None
    assert flipped.erp_migration.record_system == "tryton"


def test_without_the_section_two_erps_for_one_entity_are_still_refused() -> None:
    data = config_data()
    del data["erp_migration"]
    assert "only one erp system per legal entity is supported" in error_of(data)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"target": "sap"}, "q2c.yaml: erp_migration.target: unknown system 'sap'"),
        (
            {"legacy": "salesforce"},
            "q2c.yaml: erp_migration.legacy: system 'salesforce' is not an ERP (its roles: crm); "
            "a parallel run needs two ERPs",
        ),
        (
            {"target": "netsuite"},
            "q2c.yaml: erp_migration.target: legacy and target are both 'netsuite'",
        ),
        (
            {"legal_entities": ["FR01"]},
            "q2c.yaml: erp_migration.legal_entities[0]: unknown legal entity 'FR01'",
        ),
        (
            {"legal_entities": ["DE01"]},
            "q2c.yaml: erp_migration.legal_entities[0]: legal entity 'DE01' has no NetSuite "
            "subsidiary mapping; the parallel run posts DE01's documents to NetSuite too",
        ),
        (
            {"system_of_record": "new"},
            "q2c.yaml: erp_migration.system_of_record: Input should be 'legacy' or 'target'",
        ),
        ({"legal_entities": []}, "q2c.yaml: erp_migration.legal_entities:"),
    ],
)
def test_mistakes_name_the_key_and_say_what_is_wrong(change: dict[str, Any], expected: str) -> None:
    assert expected in error_of(config_data(**change))


def test_a_system_that_does_not_serve_the_entity_is_named() -> None:
    data = config_data()
    data["systems"]["tryton"]["legal_entities"] = ["DE01"]
    message = error_of(data)
    assert (
        "q2c.yaml: erp_migration.legal_entities[0]: system 'tryton' does not serve legal "
        "entity 'US01'" in message
    )


def test_two_erps_of_the_same_vendor_are_refused() -> None:
    data = config_data()
    data["systems"]["tryton"] = {"vendor": "netsuite", "roles": ["erp"], "sandbox": True}
    assert "legacy and target are both NetSuite systems" in error_of(data)


def test_bootstrap_wires_the_parallel_run_as_the_erp_and_cut_over_flips_it() -> None:
    from q2c.connectors.memory import InMemoryCrm, InMemoryErp, InMemoryLedger
    from q2c.connectors.registry import Connections

    @dataclass
    class MemoryErp(InMemoryErp, InMemoryLedger):
        pass

    for record, secondary, flip in (
        ("erp", "tryton_like", "legacy"),
        ("tryton_like", "erp", "target"),
    ):
        connections = Connections()
        connections.add("crm", ["crm"], InMemoryCrm())
        connections.add("netsuite", ["erp"], MemoryErp(system="erp"))
        connections.add("tryton", ["erp"], MemoryErp(system="tryton_like"))
        hub = bootstrap(parse_config(config_data(system_of_record=flip), env={}),
                        connections=connections)  # fmt: skip
        try:
            services = hub.services("live")
            assert isinstance(services.erp, ParallelRunErp)
            assert services.ledger is services.erp and services.journal is services.erp
            assert services.ledger.system == record
            assert services.erp.secondary.system == secondary
        finally:
            hub.close()
