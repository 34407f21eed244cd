"""Tryton as q2c's ERP: ``ErpPort``, ``ArLedgerPort``, ``JournalPort``, ``ReferenceDataPort``.

Driven over Tryton's JSON-RPC only (``rpc.py``), as any external integration would; nothing
here imports ``trytond``. Mapping of q2c's objects (see ``payloads.py`` for where external ids
live):

* customer: ``party.party`` with the q2c external id as an identifier of type "Other", the tax
  id as a tax identifier typed by country (Tryton validates it with python-stdnum), an address
  (street, city, postal code, country) and e-mail/phone contact mechanisms. Parties are shared
  by all companies in Tryton, so ``subsidiary`` does not apply to them.
* project: ``project.work`` of type project for the party, timesheets enabled; numbered by
  Tryton's project sequence.
* sales order: ``sale.sale`` for the party with one line per contract line (product from the
  items mapping, unit and default taxes from Tryton's on_change), quoted and confirmed; the
  invoice method is manual because q2c bills from delivery. Tryton has no sale-to-project link
  without the ``sale_project`` module, so the project is named in the sale's description.

Departments (NetSuite's segment) have no equivalent without analytic accounting and are ignored.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import httpx

from q2c.canonical.models import Contract, Customer, Project
from q2c.connectors.http import ExchangeRecorder, TokenBucket
from q2c.connectors.tryton.base import DEFAULT_CONFIRMED_WARNINGS
from q2c.connectors.tryton.ledger import TrytonLedger
from q2c.connectors.tryton.payloads import (
    address_values,
    amount_in,
    check_external_id,
    customer_contacts,
    mapped,
    normalize_tax_id,
    tax_identifier,
)
from q2c.connectors.tryton.reference import TrytonReferenceData
from q2c.connectors.tryton.rpc import CallStats, connect_rpc
from q2c.errors import BusinessFixError, MappingMissingError
from q2c.flows.ports import ErpCustomer, ErpRecordRef, SalesOrderRefs

__all__ = ["TrytonErp", "connect_tryton"]

SYSTEM = "tryton"
ACTIVE_AND_INACTIVE = {"active_test": False}


class TrytonErp(TrytonLedger, TrytonReferenceData):
    """The ERP roles for one Tryton database."""

    # --- customers -------------------------------------------------------------------------

    def find_customer(
        self, *, external_id: str | None, tax_id: str | None, legal_name: str | None
    ) -> ErpCustomer | None:
        """Match on external id (the CRM id), then tax id, then exact legal name (any case)."""
        if external_id:
            parties = self._parties_by_identifier([["type", "=", None], ["code", "=", external_id]])
            if found := self._one(parties, "external id", external_id):
                return found
        if tax_id and normalize_tax_id(tax_id):
            compact = normalize_tax_id(tax_id)
            parties = self._parties_by_identifier([["code_compact", "in", [compact, tax_id]]])
            if found := self._one(parties, "tax id", tax_id):
                return found
        if legal_name:
            rows = self.rpc.search_read(
                "party.party", [["name", "ilike", legal_name]], ["name"], order=[("id", "ASC")]
            )
            wanted = legal_name.strip().casefold()
            parties = [int(r["id"]) for r in rows if str(r["name"]).strip().casefold() == wanted]
            if found := self._one(parties, "legal name", legal_name):
                return found
        return None

    def upsert_customer(
        self, customer: Customer, *, external_id: str, subsidiary: str
    ) -> ErpCustomer:
        check_external_id(external_id)
        parties = self._parties_by_identifier([["type", "=", None], ["code", "=", external_id]])
        if len(parties) > 1:
            raise self._ambiguous(parties, "external id", external_id)
        country = self.country_id(customer.country)
        values: dict[str, Any] = {
            "name": customer.legal_name,
            "active": customer.status != "inactive",
        }
        if not parties:
            identifiers = [{"type": None, "code": external_id}]
            if customer.tax_id:
                identifiers.append(tax_identifier(customer.country, customer.tax_id))
            address = customer.billing_address
            values.update(
                identifiers=[["create", identifiers]],
                addresses=[["create", [address_values(address, country) if address else {}]]],
                contact_mechanisms=[["create", customer_contacts(customer)]],
            )
            (party,) = self.rpc.create("party.party", [values])
        else:
            party = parties[0]
            self.rpc.write("party.party", [party], values, context=ACTIVE_AND_INACTIVE)
            self._update_details(party, customer, country)
        return self.get_customer(str(party))

    def get_customer(self, erp_id: str) -> ErpCustomer:
        (row,) = self.rpc.read(
            "party.party", [int(erp_id)], ["name", "code", "active"], context=ACTIVE_AND_INACTIVE
        )
        identifiers = self.rpc.search_read(
            "party.identifier",
            [["party", "=", int(erp_id)]],
            ["type", "code"],
            order=[("id", "ASC")],
            context=ACTIVE_AND_INACTIVE,
        )
        external = next((i["code"] for i in identifiers if not i["type"]), None)
        tax = next((i["code"] for i in identifiers if i["type"]), None)
        return ErpCustomer(
            erp_id=str(row["id"]),
            number=str(row["code"] or ""),
            legal_name=str(row["name"]),
            subsidiary=str(self.company_id),
            tax_id=tax,
            external_id=external,
            on_credit_hold=False,
        )

    def _update_details(self, party: int, customer: Customer, country: int | None) -> None:
        if customer.tax_id:
            wanted = tax_identifier(customer.country, customer.tax_id)
            rows = self.rpc.search_read(
                "party.identifier",
                [["party", "=", party], ["type", "!=", None]],
                ["type", "code_compact"],
            )
            same = [r for r in rows if r["code_compact"] == normalize_tax_id(wanted["code"])]
            if not same and rows:
                self.rpc.write("party.identifier", [int(rows[0]["id"])], wanted)
            elif not same:
                self.rpc.create("party.identifier", [{**wanted, "party": party}])
        if customer.billing_address is not None:
            values = address_values(customer.billing_address, country)
            addresses = self.rpc.search("party.address", [["party", "=", party]], limit=1)
            if addresses:
                self.rpc.write("party.address", addresses, values)
            else:
                self.rpc.create("party.address", [{**values, "party": party}])

    def _parties_by_identifier(self, domain: list[Any]) -> list[int]:
        rows = self.rpc.search_read(
            "party.identifier", domain, ["party"], context=ACTIVE_AND_INACTIVE
        )
        return sorted({int(r["party"]) for r in rows})

    def _one(self, parties: list[int], what: str, value: str) -> ErpCustomer | None:
        if len(parties) > 1:
            raise self._ambiguous(parties, what, value)
        return self.get_customer(str(parties[0])) if parties else None

    def _ambiguous(self, parties: list[int], what: str, value: str) -> BusinessFixError:
        rows = self.rpc.read("party.party", parties, ["name", "code"], context=ACTIVE_AND_INACTIVE)
        candidates = [f"{r['code'] or '?'} {r['name']} (id {r['id']})" for r in rows]
        return BusinessFixError(
            f"{len(rows)} Tryton parties match the {what} '{value}': " + "; ".join(candidates),
            detail=f"find_customer by {what} {value!r} matched party ids {parties}",
            suggested_fix=(
                "Decide which Tryton party this is (merge the duplicates with Tryton's "
                "'Replace' wizard), then replay."
            ),
            system=SYSTEM,
            context={"candidates": [{"erp_id": str(r["id"]), "number": r["code"]} for r in rows]},
        )

    # --- projects and sales orders ---------------------------------------------------------

    def upsert_project(
        self,
        project: Project,
        *,
        external_id: str,
        customer_erp_id: str,
        subsidiary: str,
        department: str | None,
    ) -> ErpRecordRef:
        party = mapped({"customer": customer_erp_id}, "customer", "Customer", external_id)
        company = self.company_for(subsidiary)
        return self.upsert_work(project, external_id=external_id, party=party, company=company)

    def upsert_sales_order(
        self, contract: Contract, *, external_id: str, refs: SalesOrderRefs
    ) -> ErpRecordRef:
        check_external_id(external_id)
        company = self.company_for(refs.subsidiary)
        ctx = {"company": company}
        rows = self.rpc.search_read(
            "sale.sale",
            [["reference", "=", external_id], ["company", "=", company]],
            ["state", "number"],
            order=[("id", "ASC")],
        )
        live = [r for r in rows if r["state"] != "cancelled"]
        if live:
            sale_id = int(live[0]["id"])
        else:
            values = self._sale_values(contract, external_id, refs, company)
            (sale_id,) = self.rpc.create("sale.sale", [values], context=ctx)
            live = [{"id": sale_id, "state": "draft"}]
        state = live[0]["state"]
        if state == "draft":
            self.rpc.button("sale.sale", "quote", [sale_id], context=ctx)
            state = "quotation"
        if state == "quotation":
            self.confirming(lambda: self.rpc.button("sale.sale", "confirm", [sale_id], context=ctx))
        (row,) = self.rpc.read("sale.sale", [sale_id], ["number"], context=ctx)
        return ErpRecordRef(str(sale_id), external_id, row["number"])

    def _sale_values(
        self, contract: Contract, external_id: str, refs: SalesOrderRefs, company: int
    ) -> dict[str, Any]:
        missing = sorted({line.service_item for line in contract.lines} - refs.items.keys())
        if missing:
            names = ", ".join(f"'{m}'" for m in missing)
            raise MappingMissingError(
                f"Item {names} has no Tryton mapping"
                if len(missing) == 1
                else f"Items {names} have no Tryton mapping",
                detail=f"contract {contract.number}: service items {missing} are not in the "
                f"items mapping {sorted(refs.items)}",
                field="item",
                system=SYSTEM,
                context={"service_items": missing, "contract": contract.number},
            )
        party = mapped({"customer": refs.customer_erp_id}, "customer", "Customer", external_id)
        answer = self.rpc.model(
            "sale.sale", "on_change", {"party": party, "company": company}, ["party"]
        )
        defaults = {k: v for k, v in dict(answer).items() if not k.endswith(".")}
        currency = self.currency_id(contract.currency)
        project = self.rpc.read("project.work", [int(refs.project_erp_id)], ["number", "name"])
        lines = []
        for line in contract.lines:
            where = f"contract {contract.number} line {line.line_no}"
            product = mapped(refs.items, line.service_item, "Item", where)
            filled = self.rpc.model(
                "sale.line",
                "on_change",
                {
                    "type": "line",
                    "product": product,
                    "quantity": line.quantity,
                    "_parent_sale.party": party,
                    "_parent_sale.company": company,
                    "_parent_sale.currency": currency,
                },
                ["product"],
            )
            taxes = [t["id"] for _, t in (filled.get("taxes") or {}).get("add", [])]
            lines.append(
                {
                    "type": "line",
                    "product": product,
                    "description": line.description or line.service_item,
                    "quantity": line.quantity,
                    "unit": filled["unit"],
                    "unit_price": amount_in(line.unit_price, contract.currency, f"{where} price"),
                    "taxes": [["add", taxes]],
                }
            )
        named = f" for project {project[0]['number']} {project[0]['name']}" if project else ""
        return {
            "company": company,
            "party": party,
            "currency": currency,
            "invoice_address": defaults.get("invoice_address"),
            "shipment_address": defaults.get("shipment_address"),
            "sale_date": contract.start_date,
            "reference": external_id,
            "description": f"Contract {contract.number}{named}",
            "invoice_method": "manual",
            "shipment_method": "manual",
            "lines": [["create", lines]],
        }


def connect_tryton(
    client: httpx.Client,
    *,
    base_url: str,
    database: str,
    username: str,
    password: str,
    recorder: ExchangeRecorder | None = None,
    bucket: TokenBucket | None = None,
    language: str = "en",
    confirm_warnings: Collection[str] = DEFAULT_CONFIRMED_WARNINGS,
    legal_entity: str | None = None,
    payment_method: int | None = None,
    stats: CallStats | None = None,
) -> TrytonErp:
    """A ``TrytonErp`` signing in to ``{base_url}/{database}/rpc/`` with a user's password."""
    rpc = connect_rpc(
        client,
        base_url=base_url,
        database=database,
        username=username,
        password=password,
        language=language,
        recorder=recorder,
        bucket=bucket,
        stats=stats,
    )
    erp = TrytonErp(rpc, confirm_warnings=confirm_warnings, legal_entity=legal_entity)
    erp.payment_method = payment_method
    return erp
