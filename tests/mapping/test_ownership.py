"""Ownership: only the system of record may create or update an object."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from q2c.config import default_demo_config, parse_config
from q2c.errors import BusinessFixError, ConfigError, OwnershipError
from q2c.mapping.ownership import OwnershipRules

SECTION: dict[str, Any] = {
    "customer": {"create": ["netsuite"], "update": ["netsuite"]},
    "proposal": {"create": ["salesforce"]},
    "invoice": {"create": ["netsuite", "stripe"], "update": ["stripe"]},
}


@pytest.fixture
def rules() -> OwnershipRules:
    return OwnershipRules.from_config(SECTION)


def refused(rules: OwnershipRules, object_type: str, system: str, action: Any) -> OwnershipError:
    with pytest.raises(OwnershipError) as caught:
        rules.check(object_type, system, action)
    return caught.value


def test_the_owner_may_write(rules):
    rules.check("customer", "netsuite", "create")
    rules.check("customer", "netsuite", "update")
    assert rules.allows("invoice", "stripe", "update")


def test_a_write_by_another_system_is_refused_with_a_clear_message(rules):
    error = refused(rules, "customer", "salesforce", "update")
    assert isinstance(error, BusinessFixError) and error.kind == "business_fix"
    assert error.message == "NetSuite owns customer records; salesforce may not update them"
    assert error.suggested_fix == (
        "Make this change in NetSuite, or add salesforce to ownership.customer.update in "
        "q2c.yaml if it should be allowed to update customer records."
    )
    assert error.system == "salesforce"
    assert error.field == "customer"
    assert error.context == {
        "object_type": "customer",
        "system": "salesforce",
        "action": "update",
        "owners": ["netsuite"],
    }


def test_update_defaults_to_the_create_list(rules):
    rules.check("proposal", "salesforce", "update")
    assert rules.owners("proposal", "update") == ("salesforce",)
    assert refused(rules, "proposal", "netsuite", "update").message == (
        "Salesforce owns proposal records; netsuite may not update them"
    )


def test_several_owners_are_all_named(rules):
    assert refused(rules, "invoice", "salesforce", "create").message == (
        "NetSuite and Stripe own invoice records; salesforce may not create them"
    )
    assert refused(rules, "invoice", "netsuite", "update").message == (
        "Stripe owns invoice records; netsuite may not update them"
    )


def test_an_object_without_a_rule_fails_closed(rules):
    error = refused(rules, "rate_card", "salesforce", "create")
    assert error.message == "no system may create rate card records; salesforce may not create them"
    assert error.suggested_fix == (
        "Add ownership.rate_card.create: [salesforce] to q2c.yaml if salesforce owns rate card "
        "records."
    )


def test_an_unknown_action_is_a_programming_error(rules):
    with pytest.raises(ValueError, match="action must be one of"):
        rules.check("customer", "netsuite", "delete")


def test_a_malformed_raw_section_is_a_config_error():
    with pytest.raises(ConfigError, match=r"ownership\.customer: expected \{create"):
        OwnershipRules.from_config({"customer": {"create": ["netsuite"], "delete": ["x"]}})


# --- from a loaded config: explicit rules plus role defaults -------------------------------------


def test_a_loaded_config_applies_its_rules_and_vendor_names():
    rules = OwnershipRules.from_config(default_demo_config())
    rules.check("customer", "netsuite", "update")
    assert refused(rules, "customer", "salesforce", "create").message == (
        "NetSuite owns customer records; salesforce may not create them"
    )


def config_with(systems: dict[str, Any], ownership: dict[str, Any]) -> Any:
    data = copy.deepcopy(default_demo_config().model_dump(mode="json", exclude_none=True))
    data["systems"] = systems
    data["ownership"] = ownership
    data["mappings"] = {}
    return parse_config(data, env={})


def test_objects_not_listed_follow_the_role_defaults():
    config = config_with(
        {
            "salesforce": {"vendor": "salesforce", "roles": ["crm", "cpq"], "sandbox": True},
            "netsuite": {"vendor": "netsuite", "roles": ["erp"], "sandbox": True},
            "stripe": {"vendor": "stripe", "roles": ["billing"], "sandbox": True},
            "kantata": {"vendor": "kantata", "roles": ["psa"], "sandbox": True},
        },
        {},
    )
    rules = OwnershipRules.from_config(config)
    assert rules.owners("customer", "create") == ("netsuite",)
    assert rules.owners("proposal", "update") == ("salesforce",)
    assert rules.owners("project", "create") == ("kantata",)  # PSA before ERP
    assert rules.owners("invoice", "create") == ("stripe",)  # billing, then ERP
    assert rules.owners("rate_card", "create") == ("salesforce",)  # CPQ before billing
    assert refused(rules, "project", "netsuite", "create").message == (
        "Kantata owns project records; netsuite may not create them"
    )


def test_without_a_psa_the_erp_owns_projects_and_explicit_rules_win():
    config = config_with(
        {
            "salesforce": {"vendor": "salesforce", "roles": ["crm", "cpq"], "sandbox": True},
            "netsuite": {"vendor": "netsuite", "roles": ["erp"], "sandbox": True},
        },
        {"customer": {"create": ["netsuite"], "update": ["netsuite", "salesforce"]}},
    )
    rules = OwnershipRules.from_config(config)
    assert rules.owners("project", "create") == ("netsuite",)
    assert rules.owners("invoice", "update") == ("netsuite",)
    rules.check("customer", "salesforce", "update")
    assert refused(rules, "customer", "salesforce", "create").message == (
        "NetSuite owns customer records; salesforce may not create them"
    )
