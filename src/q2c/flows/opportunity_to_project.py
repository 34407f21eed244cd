"""Opportunity to project: a closed-won opportunity with an approved quote becomes an ERP
customer, a project and a sales order with its billing schedule, in seconds.

    fetch_proposal -> validate -> resolve_customer -> enrich -> create_project
        -> create_sales_order -> create_psa_project -> write_back_crm
        -> publish_project_activated

Every ERP write uses an external id derived from the business key, so a repeated step lands
on the same record. Matching an existing ERP customer goes: cross-reference hub, then the
ERP by CRM id (external id), tax id, exact legal name; only then is a customer created, and
only if it passes the approval checks.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection

from q2c.canonical.base import CanonicalObject
from q2c.canonical.events import CloudEvent, OpportunityClosedWon, ProjectActivated, new_event
from q2c.canonical.models import (
    BillingTerms,
    Contract,
    ContractLine,
    Customer,
    Project,
    Proposal,
)
from q2c.canonical.money import Money
from q2c.errors import ApprovalRefusedError, BusinessFixError, ValidationError
from q2c.flows.ports import SalesOrderRefs
from q2c.flows.services import Services
from q2c.pricing.schedules import billing_schedule
from q2c.runtime.flow import Flow, FlowKey, HubWrite, Step, StepContext, StepResult, XrefLink
from q2c.runtime.retry import RetryPolicy
from q2c.runtime.xref import new_canonical_id

__all__ = ["FLOW", "build_flow"]

NAME = "opportunity_to_project"


def _key(event: CloudEvent, data: BaseModel) -> FlowKey:
    if isinstance(data, Proposal):
        return FlowKey(data.opportunity_id, data.version, data.legal_entity)
    assert isinstance(data, OpportunityClosedWon)
    return FlowKey(data.opportunity_id, data.proposal_version, data.legal_entity)


def _services(context: StepContext) -> Services:
    return context.services  # type: ignore[no-any-return]


def _proposal(context: StepContext) -> Proposal:
    return Proposal.model_validate(context.output_of("fetch_proposal")["proposal"])


def _customer_external_id(proposal: Proposal, crm: str) -> str:
    return f"q2c-{crm}-{proposal.customer.xrefs.get(crm, proposal.customer.id)}"


# --- steps, top to bottom ------------------------------------------------------------------


def fetch_proposal(context: StepContext) -> dict[str, Any]:
    """Content enricher: the event names the opportunity; the CRM holds the approved quote."""
    if isinstance(context.data, Proposal):
        proposal = context.data
    else:
        assert isinstance(context.data, OpportunityClosedWon)
        proposal = _services(context).crm.fetch_proposal(context.data.opportunity_id)
    return {"proposal": proposal.model_dump(mode="json")}


def validate(context: StepContext) -> dict[str, Any]:
    services = _services(context)
    proposal = _proposal(context)
    enabled = services.enabled_entities
    if enabled is not None and proposal.legal_entity not in enabled:
        raise BusinessFixError(
            f"Opportunity-to-project is not enabled for legal entity {proposal.legal_entity}",
            suggested_fix=(
                f"Add {proposal.legal_entity} to flows.{NAME}.enabled_for (or shadow_for) "
                "in q2c.yaml, then replay."
            ),
            field="legal_entity",
        )
    if proposal.version != context.version:
        raise ValidationError(
            f"The approved quote is version {proposal.version}, but the event announced "
            f"version {context.version}",
            suggested_fix="Re-approve the quote so the CRM publishes the current version.",
            field="version",
        )
    customer = proposal.customer
    if customer.legal_entity != proposal.legal_entity:
        raise ValidationError(
            f"Customer '{customer.legal_name}' belongs to legal entity {customer.legal_entity}, "
            f"the proposal to {proposal.legal_entity}",
            field="customer.legal_entity",
        )
    if services.approval.require_tax_id and not customer.tax_id:
        raise ValidationError(
            f"Customer '{customer.legal_name}' has no tax id; the ERP needs one to create a "
            "customer",
            suggested_fix="Fill in the account's tax id in the CRM, then replay.",
            field="customer.tax_id",
        )
    return {"lines": len(proposal.lines), "total": proposal.total.as_json()}


def resolve_customer(context: StepContext) -> StepResult:
    services = _services(context)
    proposal = _proposal(context)
    customer = proposal.customer
    crm, erp = services.crm.system, services.erp.system
    crm_account = customer.xrefs.get(crm, customer.id)
    canonical_id = services.xref.canonical_id(crm, "customer", crm_account)
    external_id = _customer_external_id(proposal, crm)

    known_in_erp = canonical_id is not None and erp in services.xref.external_ids(
        canonical_id, "customer"
    )
    found = services.erp.find_customer(
        external_id=external_id, tax_id=customer.tax_id, legal_name=customer.legal_name
    )
    matched_by = "xref" if known_in_erp else "erp_match"
    if found is None:
        services.ownership.check("customer", erp, "create")
        _approve_new_customer(customer, services)
        subsidiary = services.maps.resolve(
            "subsidiary", proposal.legal_entity, proposal.legal_entity, erp
        )
        found = services.erp.upsert_customer(
            customer, external_id=external_id, subsidiary=subsidiary
        )
        matched_by = "created"
    if found.on_credit_hold:
        raise ApprovalRefusedError(
            f"Customer '{found.legal_name}' ({found.number}) is on credit hold in {erp}",
            field="customer",
            context={"erp_id": found.erp_id},
        )
    # The ERP's link wins: a customer first known in the ERP keeps its canonical id.
    erp_linked = services.xref.canonical_id(erp, "customer", found.erp_id)
    canonical_id = erp_linked or canonical_id or new_canonical_id("customer")
    known = customer.model_copy(
        update={"id": canonical_id, "xrefs": {crm: crm_account, erp: found.erp_id}}
    )
    return StepResult(
        writes=_remember(services, "customer", known, proposal.legal_entity),
        output={
            "customer_id": canonical_id,
            "erp_customer_id": found.erp_id,
            "erp_customer_number": found.number,
            "subsidiary": found.subsidiary,
            "matched_by": matched_by,
        },
        xrefs=[
            XrefLink(canonical_id, "customer", crm, crm_account),
            XrefLink(canonical_id, "customer", erp, found.erp_id),
        ],
    )


def _approve_new_customer(customer: Customer, services: Services) -> None:
    """ERP approval checks before creating a customer: credit limit and tax registration."""
    policy = services.approval
    if policy.require_tax_id and not customer.tax_id:
        raise ApprovalRefusedError(
            f"Customer '{customer.legal_name}' cannot be created: no tax registration",
            field="customer.tax_id",
        )
    limit, requested = policy.max_new_customer_credit_limit, customer.credit_limit
    if (
        limit is not None
        and requested is not None
        and requested.currency == limit.currency
        and requested > limit
    ):
        raise ApprovalRefusedError(
            f"Customer '{customer.legal_name}' asks for a credit limit of {requested}, "
            f"above the {limit} that new customers may get without credit review",
            field="customer.credit_limit",
        )


def enrich(context: StepContext) -> dict[str, Any]:
    """Content enricher: ERP master data and mappings the project and order need."""
    services = _services(context)
    proposal = _proposal(context)
    erp, entity = services.erp.system, proposal.legal_entity
    department = services.maps.resolve("department", proposal.department, entity, erp)
    items = {
        line.service_item: services.maps.resolve("item", line.service_item, entity, erp)
        for line in proposal.lines
    }
    return {
        "subsidiary": context.output_of("resolve_customer")["subsidiary"],
        "department": department,
        "items": items,
    }


def create_project(context: StepContext) -> StepResult:
    services = _services(context)
    proposal = _proposal(context)
    customer = context.output_of("resolve_customer")
    enriched = context.output_of("enrich")
    erp = services.erp.system
    services.ownership.check("project", erp, "create")
    opportunity = proposal.opportunity_id
    project_id = services.xref.canonical_id(
        services.crm.system, "project", opportunity
    ) or new_canonical_id("project")
    project = Project(
        id=project_id,
        code=f"PRJ-{opportunity[-8:].upper()}",
        name=proposal.name,
        customer_id=customer["customer_id"],
        legal_entity=proposal.legal_entity,
        start_date=proposal.start_date,
        end_date=proposal.end_date,
        department=proposal.department,
        status="active",
    )
    ref = services.erp.upsert_project(
        project,
        external_id=f"q2c-prj-{opportunity}",
        customer_erp_id=customer["erp_customer_id"],
        subsidiary=enriched["subsidiary"],
        department=enriched["department"],
    )
    return StepResult(
        writes=_remember(services, "project", project, proposal.legal_entity),
        output={
            "project_id": project_id,
            "erp_project_id": ref.erp_id,
            "code": project.code,
            "project": project.model_dump(mode="json"),
        },
        xrefs=[
            XrefLink(project_id, "project", erp, ref.erp_id),
            XrefLink(project_id, "project", services.crm.system, opportunity),
        ],
    )


def create_sales_order(context: StepContext) -> StepResult:
    services = _services(context)
    proposal = _proposal(context)
    customer = context.output_of("resolve_customer")
    enriched = context.output_of("enrich")
    project = context.output_of("create_project")
    erp = services.erp.system
    external_id = f"q2c-so-{proposal.opportunity_id}-v{proposal.version}"
    contract_id = new_canonical_id("contract")
    contract = Contract(
        id=contract_id,
        number=f"CTR-{proposal.opportunity_id[-8:].upper()}-{proposal.version}",
        customer_id=customer["customer_id"],
        legal_entity=proposal.legal_entity,
        currency=proposal.currency,
        billing_model=proposal.billing_model,
        revenue_method=proposal.revenue_method,
        start_date=proposal.start_date,
        end_date=proposal.end_date,
        total_value=proposal.total,
        not_to_exceed=proposal.not_to_exceed,
        lines=[ContractLine(**line.model_dump()) for line in proposal.lines],
        billing_schedule=billing_schedule(proposal),
        rate_card_id=proposal.rate_card_id,
        billing_terms=proposal.billing_terms or BillingTerms(),
        department=proposal.department,
        proposal_id=proposal.id,
        proposal_version=proposal.version,
    )
    ref = services.erp.upsert_sales_order(
        contract,
        external_id=external_id,
        refs=SalesOrderRefs(
            customer_erp_id=customer["erp_customer_id"],
            project_erp_id=project["erp_project_id"],
            subsidiary=enriched["subsidiary"],
            department=enriched["department"],
            items=enriched["items"],
        ),
    )
    scheduled = Money.total((line.amount for line in contract.billing_schedule), contract.currency)
    linked_project = (
        Project.model_validate({**project["project"], "contract_id": contract_id})
        if "project" in project
        else None
    )
    return StepResult(
        writes=_remember(services, "contract", contract, proposal.legal_entity)
        + (
            _remember(services, "project", linked_project, proposal.legal_entity)
            if linked_project is not None
            else []
        ),
        output={
            "contract_id": contract_id,
            "erp_sales_order_id": ref.erp_id,
            "erp_sales_order_number": ref.number,
            "billing_schedule_lines": len(contract.billing_schedule),
            "scheduled_total": scheduled.as_json(),
        },
        xrefs=[XrefLink(contract_id, "contract", erp, ref.erp_id)],
    )


def _remember(
    services: Services, object_type: str, record: CanonicalObject, legal_entity: str
) -> list[HubWrite]:
    """Keep the canonical record in the hub (delivery-to-cash reads contracts and projects
    from there), in the step's own commit."""
    if services.ledgers is None:
        return []
    records = services.ledgers.records
    status = getattr(record, "status", None)

    def write(connection: Connection) -> None:
        records.save_in(
            connection,
            object_type,
            record,
            canonical_id=record.id,
            legal_entity=legal_entity,
            status=status,
        )

    return [write]


def create_psa_project(context: StepContext) -> StepResult:
    """The project people log time against, when a PSA is configured (Kantata, ...)."""
    services = _services(context)
    if services.psa_port is None:
        return StepResult(output={"skipped": "no PSA configured"})
    proposal = _proposal(context)
    created = context.output_of("create_project")
    project = Project.model_validate(created["project"])
    ref = services.psa.upsert_project(
        project,
        external_id=f"q2c-prj-{proposal.opportunity_id}",
        customer_name=proposal.customer.legal_name,
    )
    return StepResult(
        output={"psa_project_id": ref.erp_id},
        xrefs=[XrefLink(project.id, "project", services.psa.system, ref.erp_id)],
    )


def write_back_crm(context: StepContext) -> dict[str, Any]:
    services = _services(context)
    proposal = _proposal(context)
    erp_ids = {
        "customer": context.output_of("resolve_customer")["erp_customer_id"],
        "project": context.output_of("create_project")["erp_project_id"],
        "sales_order": context.output_of("create_sales_order")["erp_sales_order_id"],
    }
    services.crm.write_back(proposal.opportunity_id, erp_ids)
    return {"erp_ids": erp_ids}


def publish_project_activated(context: StepContext) -> StepResult:
    services = _services(context)
    proposal = _proposal(context)
    customer = context.output_of("resolve_customer")
    project = context.output_of("create_project")
    contract = context.output_of("create_sales_order")
    crm, erp = services.crm.system, services.erp.system
    payload = ProjectActivated(
        opportunity_id=proposal.opportunity_id,
        proposal_version=proposal.version,
        customer_id=customer["customer_id"],
        project_id=project["project_id"],
        contract_id=contract["contract_id"],
        legal_entity=proposal.legal_entity,
        xrefs={
            "customer": {erp: customer["erp_customer_id"]},
            "project": {erp: project["erp_project_id"], crm: proposal.opportunity_id},
            "contract": {erp: contract["erp_sales_order_id"]},
        },
    )
    event = new_event(
        "project.activated",
        payload,
        subject=proposal.opportunity_id,
        correlation_id=context.correlation_id,
        event_id=f"{context.idempotency_key}",
    )
    return StepResult(output={"event_id": event.id}, events=[event])


def build_flow(retry: RetryPolicy | None = None) -> Flow:
    policy = retry or RetryPolicy()
    return Flow(
        name=NAME,
        triggers=("opportunity.closed_won", "proposal.approved"),
        key=_key,
        steps=(
            Step("fetch_proposal", fetch_proposal, system="crm", retry=policy),
            Step("validate", validate, retry=policy),
            Step("resolve_customer", resolve_customer, system="erp", retry=policy),
            Step("enrich", enrich, system="erp", retry=policy),
            Step("create_project", create_project, system="erp", retry=policy),
            Step("create_sales_order", create_sales_order, system="erp", retry=policy),
            Step("create_psa_project", create_psa_project, system="psa", retry=policy),
            Step("write_back_crm", write_back_crm, system="crm", retry=policy),
            Step("publish_project_activated", publish_project_activated, retry=policy),
        ),
    )


FLOW = build_flow()
