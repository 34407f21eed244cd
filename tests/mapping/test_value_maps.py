"""Value maps: resolve canonical values to system ids; a gap is a business-readable fix."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from q2c.config import default_demo_config
from q2c.errors import BusinessFixError, ConfigError, MappingMissingError
from q2c.mapping.value_maps import (
    MappingEntry,
    ValueMaps,
    parse_mappings,
    system_display_name,
    yaml_key,
)

SECTION = {
    "subsidiary": {"US01": {"netsuite": "1"}, "UK01": {"netsuite": "2"}},
    "department": {
        "Consulting-US": {"US01": {"netsuite": "3"}},
        "Consulting-EU": {"*": {"netsuite": "5"}, "UK01": {"netsuite": "6"}},
    },
    "item": {"CONSULT-SR": {"*": {"netsuite": "21", "salesforce": "01t000000000001"}}},
    "tax_nexus": {"US01": {"netsuite": "US-CA"}},
}
VENDORS = {"netsuite": "netsuite", "salesforce": "salesforce", "ns_uk": "netsuite"}


@pytest.fixture
def maps() -> ValueMaps:
    return ValueMaps(parse_mappings(SECTION).entries, VENDORS)


def missing(maps: ValueMaps, *key: str) -> MappingMissingError:
    with pytest.raises(MappingMissingError) as caught:
        maps.resolve(*key)
    return caught.value


# --- resolving --------------------------------------------------------------------------------


def test_resolves_the_mapping_for_the_legal_entity(maps):
    assert maps.resolve("department", "Consulting-US", "US01", "netsuite") == "3"


def test_any_entity_mapping_applies_to_every_legal_entity(maps):
    assert maps.resolve("item", "CONSULT-SR", "US01", "netsuite") == "21"
    assert maps.resolve("item", "CONSULT-SR", "ZZ99", "salesforce") == "01t000000000001"


def test_a_mapping_for_the_legal_entity_wins_over_any_entity(maps):
    assert maps.resolve("department", "Consulting-EU", "UK01", "netsuite") == "6"
    assert maps.resolve("department", "Consulting-EU", "US01", "netsuite") == "5"


def test_entity_keyed_shorthand(maps):
    assert maps.resolve("subsidiary", "UK01", "UK01", "netsuite") == "2"
    assert maps.resolve("tax_nexus", "US01", "US01", "netsuite") == "US-CA"


def test_get_returns_none_instead_of_raising(maps):
    assert maps.get("department", "Consulting-US", "UK01", "netsuite") is None
    assert maps.get("department", "Consulting-US", "US01", "netsuite") == "3"


def test_reverse_lookup_for_inbound_payloads(maps):
    assert maps.canonical_value("department", "netsuite", "3") == "Consulting-US"
    assert maps.canonical_value("department", "netsuite", "3", legal_entity="UK01") is None
    assert maps.canonical_value("department", "netsuite", "5", legal_entity="UK01") == (
        "Consulting-EU"
    )
    assert maps.canonical_value("department", "netsuite", "999") is None


def test_entries_are_listed(maps):
    assert len(maps) == 8
    assert MappingEntry("subsidiary", "US01", "*", "netsuite", "1") in list(maps)


# --- a missing mapping is a business fix ------------------------------------------------------


def test_missing_mapping_message_fix_and_context(maps):
    error = missing(maps, "department", "Consulting-EMEA", "US01", "netsuite")
    assert isinstance(error, BusinessFixError) and error.kind == "business_fix"
    assert (
        error.message == "Department 'Consulting-EMEA' has no NetSuite mapping for subsidiary US01"
    )
    assert error.suggested_fix == (
        'Add mappings.department."Consulting-EMEA".US01.netsuite: "<NetSuite internal id>" '
        "to q2c.yaml, then replay."
    )
    assert error.context == {
        "dimension": "department",
        "value": "Consulting-EMEA",
        "legal_entity": "US01",
        "system": "netsuite",
    }
    assert error.system == "netsuite"
    assert error.field == "department"
    assert error.as_dict()["kind"] == "business_fix"


def test_a_value_mapped_for_another_entity_is_still_missing(maps):
    error = missing(maps, "department", "Consulting-US", "UK01", "netsuite")
    assert error.message == "Department 'Consulting-US' has no NetSuite mapping for subsidiary UK01"


def test_missing_mapping_for_an_entity_keyed_dimension(maps):
    error = missing(maps, "subsidiary", "DE01", "DE01", "netsuite")
    assert error.message == "Subsidiary 'DE01' has no NetSuite mapping"
    assert "mappings.subsidiary.DE01.netsuite" in error.suggested_fix
    assert missing(maps, "tax_nexus", "UK01", "UK01", "netsuite").message == (
        "Tax nexus 'UK01' has no NetSuite mapping"
    )


@pytest.mark.parametrize(
    ("system", "message"),
    [
        ("salesforce", "Item 'CONSULT-JR' has no Salesforce mapping for legal entity US01"),
        ("ns_uk", "Item 'CONSULT-JR' has no NetSuite (ns_uk) mapping for subsidiary US01"),
        ("erp", "Item 'CONSULT-JR' has no ERP mapping for subsidiary US01"),
        ("acme_psa", "Item 'CONSULT-JR' has no acme_psa mapping for legal entity US01"),
    ],
)
def test_the_message_speaks_each_system_s_language(maps, system, message):
    assert missing(maps, "item", "CONSULT-JR", "US01", system).message == message


def test_cost_centre_reads_as_words(maps):
    assert missing(maps, "cost_centre", "CC-1", "US01", "netsuite").message.startswith(
        "Cost centre 'CC-1' has no NetSuite mapping"
    )


# --- fix the mapping, then replay ---------------------------------------------------------------


def test_with_mapping_returns_a_new_instance_and_leaves_the_old_one_alone(maps):
    error = missing(maps, "department", "Consulting-EMEA", "US01", "netsuite")
    fixed = maps.with_mapping(*error.context.values(), "9")
    assert fixed.resolve("department", "Consulting-EMEA", "US01", "netsuite") == "9"
    assert maps.get("department", "Consulting-EMEA", "US01", "netsuite") is None
    assert len(fixed) == len(maps) + 1
    assert fixed.resolve("department", "Consulting-US", "US01", "netsuite") == "3"


def test_with_mapping_can_replace_a_wrong_mapping(maps):
    fixed = maps.with_mapping("department", "Consulting-US", "US01", "netsuite", "33")
    assert fixed.resolve("department", "Consulting-US", "US01", "netsuite") == "33"
    assert maps.resolve("department", "Consulting-US", "US01", "netsuite") == "3"


def test_with_mapping_keeps_display_names(maps):
    fixed = maps.with_mapping("item", "X", "*", "netsuite", "1")
    assert "NetSuite (ns_uk)" in missing(fixed, "item", "Y", "US01", "ns_uk").message


names = st.text(alphabet="ABCDEFGHIJ-", min_size=1, max_size=6)


@given(
    st.dictionaries(
        st.tuples(st.sampled_from(["department", "item"]), names, st.sampled_from(["US01", "*"])),
        st.text(alphabet="0123456789", min_size=1, max_size=4),
        max_size=20,
    )
)
def test_with_mapping_accumulates_and_never_mutates(table):
    empty = ValueMaps()
    maps = empty
    for (dimension, value, entity), external in table.items():
        maps = maps.with_mapping(dimension, value, entity, "erp", external)
    assert len(empty) == 0
    assert len(maps) == len(table)
    for dimension, value, _ in table:
        expected = table.get((dimension, value, "US01"), table.get((dimension, value, "*")))
        assert maps.resolve(dimension, value, "US01", "erp") == expected


# --- building from configuration ----------------------------------------------------------------


def test_from_a_loaded_config_uses_vendor_display_names():
    maps = ValueMaps.from_config(default_demo_config())
    assert maps.resolve("department", "Consulting-UK", "UK01", "netsuite") == "4"
    assert missing(maps, "department", "Consulting-EMEA", "US01", "netsuite").message == (
        "Department 'Consulting-EMEA' has no NetSuite mapping for subsidiary US01"
    )


def test_from_a_raw_section_as_flows_use_it():
    maps = ValueMaps.from_config({"department": {"Consulting-US": {"US01": {"erp": "3"}}}})
    assert maps.resolve("department", "Consulting-US", "US01", "erp") == "3"
    assert missing(maps, "department", "Consulting-EMEA", "US01", "erp").message == (
        "Department 'Consulting-EMEA' has no ERP mapping for subsidiary US01"
    )


def test_a_malformed_raw_section_names_the_key():
    with pytest.raises(ConfigError) as caught:
        ValueMaps.from_config({"item": {"CONSULT-SR": {"*": {"erp": 2.5}}}})
    assert caught.value.message == (
        'q2c.yaml: mappings.item."CONSULT-SR"."*".erp: external id must be a non-empty string '
        'such as "21"'
    )


def test_parse_mappings_reports_every_shape_problem_with_its_path():
    parsed = parse_mappings(
        {
            "item": {"A": {"erp": "1", "US01": {"erp": "2"}}, "B": {}, "C": "21"},
            "class": ["x"],
            "department": {"D": {"US01": {"erp": True}}},
        }
    )
    assert parsed.problems == [
        (("item", "A"), "mixes systems and legal entities: write {legal entity: {system: id}}"),
        (("item", "B"), 'must map legal entities (or "*") to {system: external id}'),
        (("item", "C"), 'must map legal entities (or "*") to {system: external id}'),
        (("class",), "must map canonical values to systems"),
        (("department", "D", "US01", "erp"), 'external id must be a non-empty string such as "21"'),
    ]
    assert parsed.entries == []


def test_integer_ids_are_read_as_strings():
    parsed = parse_mappings({"subsidiary": {"US01": {"netsuite": 1}}})
    assert parsed.entries == [MappingEntry("subsidiary", "US01", "*", "netsuite", "1")]
    assert parsed.locations == [("subsidiary", "US01", "netsuite")]


# --- helpers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "key"),
    [
        (("mappings", "department", "Consulting-EMEA", "US01", "netsuite"),
         'mappings.department."Consulting-EMEA".US01.netsuite'),
        (("mappings", "item", "CONSULT-SR", "*", "netsuite"),
         'mappings.item."CONSULT-SR"."*".netsuite'),
        (("flows", "opportunity_to_project", "enabled_for", 1),
         "flows.opportunity_to_project.enabled_for[1]"),
        (("mappings", "department", 'Say "hi"'), 'mappings.department."Say \\"hi\\""'),
        (("legal_entities", 0, "code"), "legal_entities[0].code"),
    ],
)  # fmt: skip
def test_yaml_key(parts, key):
    assert yaml_key(*parts) == key


@pytest.mark.parametrize(
    ("system", "vendor", "name"),
    [
        ("netsuite", None, "NetSuite"),
        ("netsuite", "netsuite", "NetSuite"),
        ("ns_uk", "netsuite", "NetSuite (ns_uk)"),
        ("hubspot", None, "HubSpot"),
        ("erp", None, "ERP"),
        ("legacy_pa", None, "legacy_pa"),
    ],
)
def test_system_display_name(system, vendor, name):
    assert system_display_name(system, vendor) == name
