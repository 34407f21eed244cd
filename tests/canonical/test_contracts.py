"""Published JSON Schema contracts: committed files match the models; breaking changes need v+1."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from q2c.canonical.events import INBOUND_TYPES
from q2c.canonical.schemas import (
    CURRENT_VERSION,
    ContractBreakingError,
    check_contracts,
    compare_schemas,
    contract_models,
    contracts_check_exit_code,
    generate_index,
    generate_schemas,
    render_contracts,
    write_contracts,
)

REPO_CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
Schemas = dict[str, dict[str, Any]]


@pytest.fixture
def published(tmp_path: Path) -> Path:
    """A scratch copy of the committed contracts, safe to edit."""
    root = tmp_path / "contracts"
    shutil.copytree(REPO_CONTRACTS, root)
    return root


def fresh(version: int = CURRENT_VERSION) -> Schemas:
    return copy.deepcopy(generate_schemas(version))


# --- the drift test ---------------------------------------------------------------------------


def test_committed_contracts_equal_freshly_generated_ones():
    directory = REPO_CONTRACTS / f"v{CURRENT_VERSION}"
    committed = {path.name: path.read_text(encoding="utf-8") for path in directory.glob("*.json")}
    expected = render_contracts()
    assert sorted(committed) == sorted(expected), "run `q2c contracts generate`"
    for name, text in expected.items():
        assert committed[name] == text, f"{name} is stale: run `q2c contracts generate`"


def test_the_repository_check_passes():
    code, report = contracts_check_exit_code(REPO_CONTRACTS)
    assert (code, report) == (0, f"contracts OK: {REPO_CONTRACTS}/v1/ matches the canonical models")


def test_every_model_event_payload_and_the_envelope_is_published():
    names = set(contract_models())
    assert {"Customer", "Proposal", "Invoice", "RateCard", "RevenueSchedule"} <= names
    assert {
        "OpportunityClosedWon",
        "PeriodClosed",
        "ProjectActivated",
        "TransactionFailed",
    } <= names
    assert "CloudEvent" in names
    assert "Money" not in names and "BillingModel" not in names  # inlined / in $defs


def test_schema_files_carry_id_version_and_sorted_keys():
    text = render_contracts()["Customer.json"]
    schema = json.loads(text)
    assert schema["$id"] == "https://q2c.dev/contracts/v1/Customer.json"
    assert schema["x-q2c-version"] == 1
    assert text == json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_index_maps_every_event_type_to_its_data_schema():
    index = generate_index()
    assert index["envelope"] == "CloudEvent.json"
    assert index["events"]["proposal.approved"] == {
        "direction": "inbound",
        "schema": "Proposal.json",
    }
    assert index["events"]["time.approved"]["schema"] == "BillingEvent.json"
    assert index["events"]["project.activated"]["direction"] == "outbound"
    assert index["models"]["Customer"] == "Customer.json"


def test_money_is_published_as_strings_never_numbers():
    amount = generate_schemas()["Customer"]["properties"]["credit_limit"]["anyOf"][0]
    assert amount["properties"]["amount"] == {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}


# --- breaking changes -------------------------------------------------------------------------


def _props(schemas: Schemas, name: str) -> dict[str, Any]:
    return schemas[name]["properties"]


def remove_property(s: Schemas) -> None:
    del _props(s, "Customer")["tax_id"]


def change_type(s: Schemas) -> None:
    _props(s, "Customer")["legal_name"]["type"] = "integer"


def add_required_property(s: Schemas) -> None:
    _props(s, "Customer")["segment"] = {"type": "string"}
    s["Customer"]["required"].append("segment")


def make_optional_required(s: Schemas) -> None:
    s["Customer"]["required"].append("industry")


def remove_enum_value(s: Schemas) -> None:
    s["Proposal"]["$defs"]["BillingModel"]["enum"].remove("usage")


def remove_literal_value(s: Schemas) -> None:
    _props(s, "Customer")["status"]["enum"].remove("on_hold")


def tighten_max_length(s: Schemas) -> None:
    _props(s, "Customer")["legal_name"]["maxLength"] = 100


def tighten_min_length(s: Schemas) -> None:
    _props(s, "Customer")["legal_name"]["minLength"] = 2


def add_pattern(s: Schemas) -> None:
    _props(s, "Customer")["legal_name"]["pattern"] = "^[A-Z]"


def change_pattern(s: Schemas) -> None:
    _props(s, "Customer")["country"]["pattern"] = "^[A-Z]{3}$"


def add_minimum(s: Schemas) -> None:
    _props(s, "TransactionFailed")["flow"]["minLength"] = 1
    _props(s, "ProposalLine")["line_no"]["minimum"] = 2


def forbid_additional_properties(s: Schemas) -> None:
    s["CloudEvent"]["additionalProperties"] = False


def drop_null(s: Schemas) -> None:
    _props(s, "Customer")["display_name"] = {"type": "string", "title": "Display Name"}


def tighten_inside_a_ref(s: Schemas) -> None:
    s["Proposal"]["$defs"]["Customer"]["properties"]["tax_id"]["anyOf"][0]["maxLength"] = 20


def retype_map_values(s: Schemas) -> None:
    _props(s, "Customer")["xrefs"]["additionalProperties"] = {"type": "integer"}


def tighten_array_items(s: Schemas) -> None:
    s["Proposal"]["$defs"]["ProposalLine"]["properties"]["line_no"]["maximum"] = 999


def remove_schema(s: Schemas) -> None:
    del s["Item"]


BREAKING: list[tuple[Callable[[Schemas], None], str]] = [
    (remove_property, "Customer.tax_id: property removed"),
    (change_type, "Customer.legal_name: type changed from string to integer"),
    (add_required_property, "Customer.segment: new required property"),
    (make_optional_required, "Customer.industry: property is now required"),
    (remove_enum_value, "Proposal.billing_model: enum value(s) removed: usage"),
    (remove_literal_value, "Customer.status: enum value(s) removed: on_hold"),
    (tighten_max_length, "Customer.legal_name: maxLength tightened from 200 to 100"),
    (tighten_min_length, "Customer.legal_name: minLength tightened from 1 to 2"),
    (add_pattern, "Customer.legal_name: pattern '^[A-Z]' added"),
    (change_pattern, "Customer.country: pattern '^[A-Z]{3}$' changed from '^[A-Z]{2}$'"),
    (add_minimum, "TransactionFailed.flow: minLength 1 added"),
    (add_minimum, "ProposalLine.line_no: minimum tightened from 1 to 2"),
    (forbid_additional_properties, "CloudEvent: additionalProperties false added"),
    (drop_null, "Customer.display_name: no longer accepts null"),
    (tighten_inside_a_ref, "Proposal.customer.tax_id: maxLength tightened from 40 to 20"),
    (retype_map_values, "Customer.xrefs.*: type changed from string to integer"),
    (tighten_array_items, "Proposal.lines[].line_no: maximum 999 added"),
    (remove_schema, "Item: schema removed"),
]


@pytest.mark.parametrize(("mutate", "expected"), BREAKING, ids=[e for _, e in BREAKING])
def test_each_kind_of_breaking_change_is_flagged(published, mutate, expected):
    schemas = fresh()
    mutate(schemas)
    report = check_contracts(published, current=schemas)
    described = [problem.describe() for problem in report.breaking]
    assert any(d.startswith(expected) for d in described), described
    assert not report.ok
    assert "BREAKING" in report.render()
    assert "set SCHEMA_VERSION = 2" in report.render()


def test_removing_an_event_type_is_breaking(published, monkeypatch):
    monkeypatch.delitem(INBOUND_TYPES, "period.closed")
    report = check_contracts(published)
    assert [p.describe() for p in report.breaking] == [
        "PeriodClosed: schema removed",  # no other event carries it
        "index.period.closed: event type removed",
    ]


def test_breaking_change_in_a_new_version_directory_passes(published):
    schemas = fresh(version=2)
    remove_property(schemas)
    written = write_contracts(published, version=2, schemas=schemas)
    assert published / "v2" / "Customer.json" in written
    assert (published / "v1" / "Customer.json").exists()  # the old version stays published
    report = check_contracts(published, current=schemas, version=2)
    assert report.ok, report.render()
    assert json.loads((published / "v2" / "index.json").read_text())["x-q2c-version"] == 2


def test_a_new_version_not_yet_written_is_reported_as_drift(published):
    schemas = fresh(version=2)
    remove_property(schemas)
    report = check_contracts(published, current=schemas, version=2)
    assert [p.describe() for p in report.problems] == [
        "contracts: contracts/v2/ has not been written yet (newest is v1)"
    ]
    assert report.drift and not report.breaking


def test_generate_refuses_to_overwrite_a_published_version_with_a_breaking_change(published):
    before = (published / "v1" / "Customer.json").read_text()
    schemas = fresh()
    remove_property(schemas)
    with pytest.raises(ContractBreakingError) as caught:
        write_contracts(published, schemas=schemas)
    assert "Customer.tax_id: property removed" in caught.value.detail
    assert "contracts/v2/" in caught.value.suggested_fix
    assert (published / "v1" / "Customer.json").read_text() == before


# --- backward-compatible drift ----------------------------------------------------------------


def add_optional_property(s: Schemas) -> None:
    _props(s, "Customer")["segment"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}


def relax_max_length(s: Schemas) -> None:
    _props(s, "Customer")["legal_name"]["maxLength"] = 300


def add_enum_value(s: Schemas) -> None:
    s["Proposal"]["$defs"]["BillingModel"]["enum"].append("subscription")


def edit_description(s: Schemas) -> None:
    _props(s, "Customer")["legal_entity"]["description"] = "Code of the billing legal entity"


def allow_null(s: Schemas) -> None:
    _props(s, "Customer")["legal_name"] = {
        "anyOf": [{"type": "string", "minLength": 1, "maxLength": 200}, {"type": "null"}]
    }


def widen_integer_to_number(s: Schemas) -> None:
    _props(s, "ProposalLine")["line_no"]["type"] = "number"


DRIFT: list[tuple[Callable[[Schemas], None], str]] = [
    (add_optional_property, "Customer.segment: optional property added"),
    (relax_max_length, "Customer.legal_name: maxLength relaxed from 200 to 300"),
    (add_enum_value, "Proposal.billing_model: enum value(s) added: subscription"),
    (edit_description, "Customer.properties.legal_entity.description: title, description"),
    (allow_null, "Customer.legal_name: now also accepts null"),
    (widen_integer_to_number, "ProposalLine.line_no: type widened from integer to number"),
]


@pytest.mark.parametrize(("mutate", "expected"), DRIFT, ids=[e for _, e in DRIFT])
def test_backward_compatible_changes_are_drift_not_breaking(published, mutate, expected):
    schemas = fresh()
    mutate(schemas)
    report = check_contracts(published, current=schemas)
    assert not report.breaking, report.render()
    described = [problem.describe() for problem in report.drift]
    assert any(d.startswith(expected) for d in described), described
    assert "run `q2c contracts generate`" in report.render()


def test_drift_is_fixed_by_regenerating(published):
    schemas = fresh()
    add_optional_property(schemas)
    write_contracts(published, schemas=schemas)
    assert check_contracts(published, current=schemas).ok


# --- exit codes for `q2c contracts check` ------------------------------------------------------


def test_exit_code_1_when_committed_contracts_are_stale(published):
    path = published / "v1" / "Customer.json"
    stale = json.loads(path.read_text())
    del stale["properties"]["industry"]  # as if the model had just gained this optional field
    path.write_text(json.dumps(stale))
    code, report = contracts_check_exit_code(published)
    assert code == 1
    assert "drift     Customer.industry: optional property added" in report


def test_exit_code_2_when_the_models_break_the_published_contract(published):
    path = published / "v1" / "Customer.json"
    old = json.loads(path.read_text())
    old["properties"]["vat_number"] = {"type": "string"}  # as if the model had dropped it
    path.write_text(json.dumps(old))
    code, report = contracts_check_exit_code(published)
    assert code == 2
    assert "BREAKING  Customer.vat_number: property removed" in report


def test_exit_code_1_when_nothing_is_published(tmp_path):
    code, report = contracts_check_exit_code(tmp_path / "contracts")
    assert code == 1
    assert "no contract versions" in report


def test_models_older_than_the_newest_published_version_are_refused(published):
    shutil.copytree(published / "v1", published / "v2")
    report = check_contracts(published)
    assert [p.describe() for p in report.breaking] == [
        "contracts: contracts/v2/ is newer than the models' contract version 1"
    ]


# --- the comparison itself ---------------------------------------------------------------------


def test_identical_schemas_have_no_problems_whatever_their_version():
    assert compare_schemas("Customer", fresh(1)["Customer"], fresh(2)["Customer"]) == []


def test_recursive_definitions_terminate():
    node = {"$ref": "#/$defs/Node"}
    schema = {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"child": {"anyOf": [node, {"type": "null"}]}},
            }
        },
        **node,
    }
    changed = copy.deepcopy(schema)
    changed["$defs"]["Node"]["properties"]["child"]["anyOf"].pop()
    problems = compare_schemas("Tree", schema, changed)
    assert [p.describe() for p in problems] == ["Tree.child: no longer accepts null"]
