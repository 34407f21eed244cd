"""Valid JSON payloads for every published model, as a producer would send them.

Plain dicts (not model instances) so tests can break one key at a time and see exactly
which error comes back.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

Payload = dict[str, Any]


def usd(amount: str) -> Payload:
    return {"amount": amount, "currency": "USD"}


def address() -> Payload:
    return {
        "line1": "1 Market St",
        "city": "San Francisco",
        "region": "CA",
        "postal_code": "94105",
        "country": "US",
    }


def legal_entity() -> Payload:
    return {
        "id": "US01",
        "code": "US01",
        "name": "Acme Consulting Inc.",
        "country": "US",
        "base_currency": "USD",
        "region": "us",
        "business_unit": "consulting",
    }


def customer() -> Payload:
    return {
        "id": "cust-1",
        "xrefs": {"salesforce": "001A000001"},
        "legal_name": "Globex Corporation",
        "tax_id": "US-12-3456789",
        "country": "US",
        "currency": "USD",
        "legal_entity": "US01",
        "billing_address": address(),
        "credit_limit": usd("100000.00"),
    }


def proposal_line(
    line_no: int = 1, quantity: str = "100", price: str = "200.00", amount: str = "20000.00"
) -> Payload:
    return {
        "line_no": line_no,
        "service_item": "CONSULT-SR",
        "role": "Senior",
        "quantity": quantity,
        "unit_price": usd(price),
        "amount": usd(amount),
    }


def proposal() -> Payload:
    return {
        "id": "0Q0A",
        "version": 1,
        "opportunity_id": "006A",
        "name": "ERP implementation",
        "customer": customer(),
        "legal_entity": "US01",
        "currency": "USD",
        "billing_model": "fixed_fee",
        "revenue_method": "straight_line",
        "start_date": "2026-12-01",
        "end_date": "2027-02-28",
        "department": "Consulting-US",
        "lines": [
            proposal_line(),
            proposal_line(2, "50", "120.50", "6025.00"),
        ],
        "total": usd("26025.00"),
        "approved_at": "2026-11-25T10:00:00Z",
    }


def contract() -> Payload:
    return {
        "id": "ctr-1",
        "number": "C-0001",
        "customer_id": "cust-1",
        "legal_entity": "US01",
        "currency": "USD",
        "billing_model": "milestone",
        "revenue_method": "milestone",
        "start_date": "2026-12-01",
        "end_date": "2027-02-28",
        "total_value": usd("26025.00"),
        "lines": [
            {
                "line_no": 1,
                "service_item": "CONSULT-SR",
                "quantity": "1",
                "unit_price": usd("26025.00"),
                "amount": usd("26025.00"),
            }
        ],
        "billing_schedule": [
            {
                "sequence": 1,
                "bill_date": "2027-01-01",
                "description": "Kick-off",
                "amount": usd("26025.00"),
            }
        ],
    }


def project() -> Payload:
    return {
        "id": "prj-1",
        "code": "PRJ-0001",
        "name": "ERP implementation",
        "customer_id": "cust-1",
        "legal_entity": "US01",
        "start_date": "2026-12-01",
        "end_date": "2027-02-28",
    }


def rate_card() -> Payload:
    return {
        "id": "rc-1",
        "name": "US 2027",
        "version": 2,
        "currency": "USD",
        "effective_from": "2027-01-01",
        "effective_to": "2027-12-31",
        "lines": [{"role": "Senior", "service_item": "CONSULT-SR", "rate": usd("210.00")}],
    }


def billing_event() -> Payload:
    return {
        "id": "te-1",
        "kind": "time",
        "project_id": "prj-1",
        "work_date": "2027-01-05",
        "quantity": "7.5",
        "role": "Senior",
        "service_item": "CONSULT-SR",
        "approved_at": "2027-01-06T09:00:00+00:00",
        "source_system": "netsuite",
    }


def invoice() -> Payload:
    return {
        "id": "inv-1",
        "number": "INV-0001",
        "customer_id": "cust-1",
        "legal_entity": "US01",
        "currency": "USD",
        "issue_date": "2027-01-31",
        "due_date": "2027-03-02",
        "lines": [
            {
                "line_no": 1,
                "description": "Senior consulting",
                "service_item": "CONSULT-SR",
                "quantity": "7.5",
                "unit_price": usd("200.00"),
                "amount": usd("1500.00"),
                "tax_code": "CA",
                "tax_amount": usd("108.75"),
            }
        ],
        "tax_lines": [
            {"tax_code": "CA", "rate": "0.0725", "base": usd("1500.00"), "amount": usd("108.75")}
        ],
        "subtotal": usd("1500.00"),
        "tax_total": usd("108.75"),
        "total": usd("1608.75"),
    }


def payment() -> Payload:
    return {
        "id": "pay-1",
        "customer_id": "cust-1",
        "amount": usd("1608.75"),
        "received_on": "2027-02-15",
        "method": "ach",
        "reference": "ACH-778",
        "applications": [{"invoice_id": "inv-1", "amount": usd("1608.75")}],
    }


def revenue_schedule() -> Payload:
    return {
        "id": "rev-1",
        "contract_id": "ctr-1",
        "method": "straight_line",
        "total": usd("26025.00"),
        "entries": [
            {"period_start": "2026-12-01", "period_end": "2026-12-31", "amount": usd("8675.00")}
        ],
    }


def opportunity_closed_won() -> Payload:
    return {
        "opportunity_id": "006A",
        "account_id": "001A",
        "amount": usd("26025.00"),
        "close_date": "2026-11-20",
    }


def period_closed() -> Payload:
    return {"legal_entity": "US01", "period_start": "2026-11-01", "period_end": "2026-11-30"}


def project_activated() -> Payload:
    return {
        "opportunity_id": "006A",
        "proposal_version": 1,
        "customer_id": "cust-1",
        "project_id": "prj-1",
        "contract_id": "ctr-1",
        "legal_entity": "US01",
        "xrefs": {"netsuite": {"project": "77"}},
    }


def change_order() -> Payload:
    return {
        "contract_id": "ctr-1",
        "change_number": 1,
        "effective_date": "2026-12-01",
        "not_to_exceed": usd("40000.00"),
        "approved_by": "m.jones@firm.example",
        "reason": "Discovery phase extended",
    }


def contract_changed() -> Payload:
    return {
        "contract_id": "ctr-1",
        "contract_number": "C-1",
        "contract_version": 2,
        "legal_entity": "US01",
        "change_number": 1,
        "effective_date": "2026-12-01",
        "total_value": usd("25000.00"),
        "not_to_exceed": usd("40000.00"),
        "previous_total_value": usd("25000.00"),
        "previous_not_to_exceed": usd("30000.00"),
        "end_date": "2027-04-30",
        "revenue_schedule_id": "ctr-1-rev-v2",
        "released_event_ids": ["te-3"],
        "resolved_exceptions": [7],
        "approved_by": "m.jones@firm.example",
        "reason": "Discovery phase extended",
    }


def transaction_failed() -> Payload:
    return {
        "transaction_id": "t-1",
        "flow": "opportunity_to_project",
        "business_key": "006A",
        "step": "enrich",
        "message": "Department 'X' has no ERP mapping for subsidiary US01",
        "suggested_fix": "Add the mapping",
    }


MODEL_PAYLOADS: dict[str, Callable[[], Payload]] = {
    "Address": address,
    "LegalEntity": legal_entity,
    "Customer": customer,
    "ProposalLine": proposal_line,
    "Proposal": proposal,
    "Contract": contract,
    "Project": project,
    "RateCard": rate_card,
    "BillingEvent": billing_event,
    "Invoice": invoice,
    "Payment": payment,
    "RevenueSchedule": revenue_schedule,
    "BillingTerms": lambda: {
        "tax_code": "VAT20",
        "payment_terms_days": 45,
        "expenses": {"markup_percent": "10", "non_billable_categories": ["entertainment"]},
        "retainer": {
            "period_fee": usd("20000.00"),
            "hours_allowance": "100",
            "overage_rate": usd("220.00"),
            "rollover_cap_hours": "20",
        },
        "usage": {
            "mode": "graduated",
            "tiers": [
                {"up_to": "1000", "unit_price": usd("0.50")},
                {"up_to": None, "unit_price": usd("0.40")},
            ],
        },
    },
    "TaxCode": lambda: {
        "code": "CA",
        "name": "California",
        "rate": "0.0725",
        "jurisdiction": "US-CA",
    },
    "ExchangeRate": lambda: {
        "base": "EUR",
        "quote": "USD",
        "rate": "1.0834",
        "effective_date": "2026-11-26",
    },
    "DimensionMap": lambda: {
        "dimension": "department",
        "canonical_value": "Consulting-US",
        "system": "netsuite",
        "external_value": "3",
    },
    "Item": lambda: {"code": "CONSULT-SR", "name": "Senior consulting"},
    "OpportunityClosedWon": opportunity_closed_won,
    "PeriodClosed": period_closed,
    "ProjectActivated": project_activated,
    "TransactionFailed": transaction_failed,
    "ChangeOrder": change_order,
}

EVENT_PAYLOADS: dict[str, Callable[[], Payload]] = {
    "proposal.approved": proposal,
    "opportunity.closed_won": opportunity_closed_won,
    "time.approved": billing_event,
    "expense.approved": lambda: {
        **billing_event(),
        "kind": "expense",
        "unit": "each",
        "amount": usd("412.10"),
        "expense_category": "travel",
    },
    "milestone.completed": lambda: {
        **billing_event(),
        "kind": "milestone",
        "unit": "each",
        "quantity": "1",
        "amount": usd("5000.00"),
    },
    "usage.recorded": lambda: {
        **billing_event(),
        "kind": "usage",
        "unit": "unit",
        "quantity": "1200",
    },
    "invoice.finalized": invoice,
    "payment.received": payment,
    "period.closed": period_closed,
    "billing.run_requested": lambda: {
        "contract_id": "ctr-1",
        "period_start": "2026-11-01",
        "period_end": "2026-11-30",
        "document_date": "2026-11-30",
    },
    "reference_data.sync_requested": lambda: {"as_of": "2026-11-27"},
    "rate_card.published": rate_card,
    "contract.change_order_approved": change_order,
    "delivery.batch_received": lambda: {"batch_id": "psa-page-1", "events": [billing_event()]},
    "project.activated": project_activated,
    "invoice.posted": lambda: {
        "invoice_id": "inv-1",
        "billing_number": "ACME-0001",
        "erp_id": "4711",
        "erp_number": "INV-10001",
        "legal_entity": "US01",
        "customer_id": "cus-1",
        "total": usd("1100.00"),
        "tax_total": usd("100.00"),
    },
    "payment.applied": lambda: {
        "payment_id": "pay-1",
        "erp_id": "5001",
        "legal_entity": "US01",
        "customer_id": "cus-1",
        "amount": usd("1200.00"),
        "applied": usd("1100.00"),
        "unapplied": usd("100.00"),
        "invoice_ids": ["inv-1"],
    },
    "revenue.recognized": lambda: {
        "legal_entity": "US01",
        "period_start": "2026-11-01",
        "period_end": "2026-11-30",
        "contract_ids": ["ctr-1"],
        "journal_ids": ["6001"],
        "amounts": [usd("2500.00")],
    },
    "transaction.failed": transaction_failed,
    "contract.changed": contract_changed,
}


def edit(payload: Payload, path: str, value: Any) -> Payload:
    """A copy with one key (dotted path, list indexes as numbers) replaced or deleted."""
    result = copy.deepcopy(payload)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = result
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return result


DELETE = object()
