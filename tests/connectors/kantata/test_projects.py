"""Creating projects: idempotent by external reference, client group found or created."""

from __future__ import annotations

from datetime import date

import pytest

from q2c.canonical.models import Project
from q2c.connectors.http import Exchange
from q2c.connectors.kantata import wire
from q2c.connectors.kantata.sandbox import KantataSandbox
from q2c.connectors.sandbox import Fault
from q2c.errors import BusinessFixError, RetriableError, ValidationError


def project(code: str = "PRJ-7", *, customer: str = "CUST-9", name: str = "ERP rollout") -> Project:
    return Project(
        id=f"proj-{code}",
        code=code,
        name=name,
        customer_id=customer,
        legal_entity="US01",
        start_date=date(2025, 4, 1),
        end_date=date(2025, 9, 30),
    )


def test_creates_a_linked_workspace_under_the_client(box: KantataSandbox) -> None:
    ref = box.psa().upsert_project(project(), external_id="opp-7", customer_name="Globex")

    workspace = box.state.get("workspaces", ref.erp_id)
    assert workspace is not None
    assert workspace["title"] == "ERP rollout"
    assert (workspace["start_date"], workspace["due_date"]) == ("2025-04-01", "2025-09-30")
    assert "PRJ-7" in workspace["description"]
    (group_id,) = workspace["workspace_group_ids"]
    group = box.state.get("workspace_groups", group_id)
    assert group is not None and (group["name"], group["company"]) == ("Globex", True)
    assert box.workspaces_linked_to("opp-7") == {ref.erp_id}
    assert ref.external_id == "opp-7"


def test_second_upsert_finds_the_same_workspace_without_writing(box: KantataSandbox) -> None:
    exchanges: list[Exchange] = []
    psa = box.psa(recorder=exchanges.append)
    first = psa.upsert_project(project(), external_id="opp-7", customer_name="Globex")
    writes = sum(e.method == "POST" for e in exchanges)

    second = psa.upsert_project(project(), external_id="opp-7", customer_name="Globex")

    assert second.erp_id == first.erp_id
    assert sum(e.method == "POST" for e in exchanges) == writes == 2  # group + workspace
    assert box.state.count("workspaces") == 1


def test_projects_of_one_client_share_its_group(box: KantataSandbox) -> None:
    psa = box.psa()
    one = psa.upsert_project(project("A"), external_id="opp-a", customer_name="Globex")
    two = psa.upsert_project(project("B"), external_id="opp-b", customer_name="Globex")

    groups = [box.state.get("workspaces", r.erp_id)["workspace_group_ids"] for r in (one, two)]
    assert groups[0] == groups[1]
    assert box.state.count("workspace_groups") == 1


def test_existing_client_group_linked_to_the_customer_is_reused(box: KantataSandbox) -> None:
    group = box.add_customer("Globex (billing)", external_id="CUST-9")

    ref = box.psa().upsert_project(project(), external_id="opp-7", customer_name="Globex")

    assert box.state.get("workspaces", ref.erp_id)["workspace_group_ids"] == [group]


def test_archived_linked_workspace_is_found_not_duplicated(box: KantataSandbox) -> None:
    archived = box.add_workspace("Old rollout", external_id="opp-7", archived=True)

    ref = box.psa().upsert_project(project(), external_id="opp-7", customer_name="Globex")

    assert ref.erp_id == archived
    assert box.state.count("workspaces") == 1


def test_timeout_after_the_write_lands_on_the_same_workspace(box: KantataSandbox) -> None:
    psa = box.psa(timeout=0.5)
    box.faults.inject(Fault("timeout", path="/api/v1/workspaces.json", method="POST", delay=3))

    with pytest.raises(RetriableError):
        psa.upsert_project(project(), external_id="opp-7", customer_name="Globex")
    retried = psa.upsert_project(project(), external_id="opp-7", customer_name="Globex")

    assert box.workspaces_linked_to("opp-7") == {retried.erp_id}


def test_two_linked_workspaces_need_a_person(box: KantataSandbox) -> None:
    box.add_workspace("Copy 1", external_id="opp-7")
    box.add_workspace("Copy 2", external_id="opp-7")

    with pytest.raises(BusinessFixError) as info:
        box.psa().upsert_project(project(), external_id="opp-7", customer_name="Globex")
    assert "Several" in info.value.message and len(info.value.context["ids"]) == 2


def test_identifier_with_a_comma_is_refused_before_any_call(box: KantataSandbox) -> None:
    exchanges: list[Exchange] = []
    with pytest.raises(ValidationError) as info:
        box.psa(recorder=exchanges.append).upsert_project(
            project(), external_id="a,b", customer_name="Globex"
        )
    assert info.value.field == "external_id" and exchanges == []


def test_kantata_validation_message_reaches_the_operator(box: KantataSandbox) -> None:
    with pytest.raises(ValidationError) as info:
        box.psa().upsert_project(project(name=" "), external_id="opp-1", customer_name="Globex")

    assert "Please give your project a title" in info.value.message
    assert info.value.field == "title"
    assert "422" in info.value.detail


def test_workspace_body_carries_the_external_reference() -> None:
    from q2c.connectors.kantata.payloads import workspace_body

    body = workspace_body(project(), external_id="opp-7", group_id="12", service_name="q2c")

    assert body["workspace"]["external_reference"] == {
        "service_name": "q2c",
        "service_model": "project",
        "service_model_ref": "opp-7",
        "status": "successful",
    }
    assert body["workspace"]["creator_role"] == "maven"
    assert wire.loads(wire.dumps(body)) == body
