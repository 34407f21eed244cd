"""ERP migration parallel run: one ERP port over two ERPs, the system of record first.

``ParallelRunErp`` implements ``ErpPort``, ``ArLedgerPort``, ``JournalPort`` and
``ReferenceDataPort``, so the flows see one ERP and do not change. Its ``system`` is the
system of record's, so the ids the flows keep (cross-reference, billing write-back, events)
are the system of record's; cut-over is flipping ``erp_migration.system_of_record`` in
q2c.yaml, after which the same port presents the other ERP.

Each write goes to the system of record, then to the secondary ERP with the **same external
id**. Both ERPs upsert by external id, so a retry or a replay never doubles either side.
What the secondary needs is translated from the system of record's ids:

* customer, project, sales order and invoice ids through the cross-reference hub: the port
  links each secondary record to the record it mirrors (object type ``erp-pair:<type>``,
  keyed by the shared external id) and, as soon as the hub knows the canonical object, under
  the canonical id too, so after cut-over the flows find the new system of record's ids;
* subsidiary, item, tax code, GL account and department through ``q2c.yaml`` mappings (the
  system of record's id back to the canonical value, then forward to the secondary);
* currencies through the secondary's own currency list.

**A secondary failure is never silent.** It fails the step with the secondary's error class
(retriable stays retriable, a business fix is parked for a person), with a message naming
both ERPs and saying that the system of record already has the posting. The saga retries or
parks the step; the retry or replay re-runs the system of record's upsert, which lands on the
same record, then tries the secondary again. The flows' read-back (``read_invoice``) and the
to-the-cent comparison run against the system of record; the secondary's invoice is read
back and compared with the billing document here.

Customers that existed in the system of record before the parallel run are paired when the
flow looks them up (``find_customer`` asks both ERPs); one the secondary does not have is a
business fix ("migrate the customer"), raised at the first posting that needs it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from q2c.canonical.models import Contract, Customer, ExchangeRate, Invoice, Item, Payment, Project
from q2c.canonical.models import TaxCode as CanonicalTaxCode
from q2c.canonical.money import Money
from q2c.config import Q2CConfig
from q2c.connectors.registry import Connections
from q2c.errors import BusinessFixError, ConfigError, MappingMissingError, NotFoundError, Q2CError
from q2c.flows.invoice_to_ledger import compare_posting, invoice_ref
from q2c.flows.payment_to_ledger import payment_ref
from q2c.flows.ports import (
    ErpCustomer,
    ErpInvoice,
    ErpPayment,
    ErpRecordRef,
    InvoicePostingRefs,
    JournalLine,
    JournalRequest,
    SalesOrderRefs,
)
from q2c.mapping.value_maps import ValueMaps, system_display_name
from q2c.runtime.flow import XrefLink
from q2c.runtime.xref import XrefHub

__all__ = ["PAIR_PREFIX", "ErpSide", "ParallelRunErp", "paired_id", "parallel_run_from_config"]

PAIR_PREFIX = "erp-pair:"
"""Cross-reference object types that pair a secondary record with the system of record's."""
_KEY_LIMIT = 100  # xref canonical ids are at most 100 characters
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ErpSide:
    """One ERP of the parallel run: its adapter (every ERP role) and how people call it."""

    adapter: Any
    label: str  # "NetSuite", "Tryton (tryton_new)"

    @property
    def system(self) -> str:
        """The name the adapter files its ids and mappings under."""
        return str(self.adapter.system)


class ParallelRunErp:
    """The ERP port during a migration: writes to both ERPs, reads from the system of record."""

    def __init__(
        self,
        record: ErpSide,
        secondary: ErpSide,
        *,
        xref: XrefHub,
        maps: Callable[[], ValueMaps],
        legal_entities: Collection[str],
    ) -> None:
        self.record = record
        self.secondary = secondary
        self.xref = xref
        self._maps = maps  # read at each call: an operator may add a mapping at run time
        self.legal_entities = frozenset(legal_entities)
        self.system = record.system

    @property
    def maps(self) -> ValueMaps:
        return self._maps()

    # --- ErpPort ---------------------------------------------------------------------------

    def find_customer(
        self, *, external_id: str | None, tax_id: str | None, legal_name: str | None
    ) -> ErpCustomer | None:
        """The system of record's match; the secondary's match (if any) is paired with it."""
        found: ErpCustomer | None = self.record.adapter.find_customer(
            external_id=external_id, tax_id=tax_id, legal_name=legal_name
        )
        if found is None:
            return None
        what = f"the lookup of customer '{found.legal_name}'"
        other: ErpCustomer | None = self._mirror(
            what,
            lambda: self.secondary.adapter.find_customer(
                external_id=external_id, tax_id=tax_id, legal_name=legal_name
            ),
        )
        if other is not None:
            key = found.external_id or external_id or f"{self.record.system}:{found.erp_id}"
            self._pair("customer", key, found.erp_id, other.erp_id)
        return found

    def upsert_customer(
        self, customer: Customer, *, external_id: str, subsidiary: str
    ) -> ErpCustomer:
        done: ErpCustomer = self.record.adapter.upsert_customer(
            customer, external_id=external_id, subsidiary=subsidiary
        )
        entity = customer.legal_entity
        if entity in self.legal_entities:

            def mirror() -> ErpCustomer:
                result: ErpCustomer = self.secondary.adapter.upsert_customer(
                    customer, external_id=external_id, subsidiary=self._subsidiary(entity)
                )
                return result

            other = self._mirror(f"customer '{customer.legal_name}'", mirror)
            self._pair("customer", external_id, done.erp_id, other.erp_id)
        return done

    def upsert_project(
        self,
        project: Project,
        *,
        external_id: str,
        customer_erp_id: str,
        subsidiary: str,
        department: str | None,
    ) -> ErpRecordRef:
        done: ErpRecordRef = self.record.adapter.upsert_project(
            project,
            external_id=external_id,
            customer_erp_id=customer_erp_id,
            subsidiary=subsidiary,
            department=department,
        )
        entity = project.legal_entity
        if entity in self.legal_entities:

            def mirror() -> ErpRecordRef:
                result: ErpRecordRef = self.secondary.adapter.upsert_project(
                    project,
                    external_id=external_id,
                    customer_erp_id=self._counterpart("customer", customer_erp_id),
                    subsidiary=self._subsidiary(entity),
                    department=self._optional("department", project.department, entity),
                )
                return result

            other = self._mirror(f"project {project.code}", mirror)
            self._pair("project", external_id, done.erp_id, other.erp_id)
        return done

    def upsert_sales_order(
        self, contract: Contract, *, external_id: str, refs: SalesOrderRefs
    ) -> ErpRecordRef:
        done: ErpRecordRef = self.record.adapter.upsert_sales_order(
            contract, external_id=external_id, refs=refs
        )
        entity = contract.legal_entity
        if entity in self.legal_entities:

            def mirror() -> ErpRecordRef:
                theirs = SalesOrderRefs(
                    customer_erp_id=self._counterpart("customer", refs.customer_erp_id),
                    project_erp_id=self._counterpart("project", refs.project_erp_id),
                    subsidiary=self._subsidiary(entity),
                    department=self._optional("department", contract.department, entity),
                    items=self._forward("item", refs.items, entity),
                )
                result: ErpRecordRef = self.secondary.adapter.upsert_sales_order(
                    contract, external_id=external_id, refs=theirs
                )
                return result

            other = self._mirror(f"sales order for contract {contract.number}", mirror)
            self._pair("contract", external_id, done.erp_id, other.erp_id)
        return done

    # --- ArLedgerPort ----------------------------------------------------------------------

    def upsert_invoice(
        self, invoice: Invoice, *, external_id: str, refs: InvoicePostingRefs
    ) -> ErpRecordRef:
        done: ErpRecordRef = self.record.adapter.upsert_invoice(
            invoice, external_id=external_id, refs=refs
        )
        entity = invoice.legal_entity
        if entity not in self.legal_entities:
            return done
        what = f"invoice {invoice.number or invoice_ref(invoice)}"

        def mirror() -> ErpRecordRef:
            theirs = InvoicePostingRefs(
                customer_erp_id=self._counterpart("customer", refs.customer_erp_id),
                subsidiary=self._subsidiary(entity),
                currency_erp_id=self._currency(invoice.currency),
                items=self._forward("item", refs.items, entity),
                tax_codes=self._forward("tax_code", refs.tax_codes, entity),
                department=self._translate("department", refs.department, entity),
                ar_account=None,  # the secondary's default receivable account
                memo=refs.memo,
            )
            posted: ErpRecordRef = self.secondary.adapter.upsert_invoice(
                invoice, external_id=external_id, refs=theirs
            )
            self._check_secondary_totals(invoice, posted, what)
            return posted

        other = self._mirror(what, mirror)
        self._pair("invoice", external_id, done.erp_id, other.erp_id)
        self._link(XrefLink(f"inv:{invoice_ref(invoice)}", "invoice", self.secondary.system,
                            other.erp_id))  # fmt: skip
        return done

    def read_invoice(self, erp_id: str) -> ErpInvoice:
        result: ErpInvoice = self.record.adapter.read_invoice(erp_id)
        return result

    def apply_payment(
        self,
        payment: Payment,
        *,
        external_id: str,
        customer_erp_id: str,
        subsidiary: str,
        currency_erp_id: str,
        applications: Sequence[tuple[str, Money]],
    ) -> ErpPayment:
        done: ErpPayment = self.record.adapter.apply_payment(
            payment,
            external_id=external_id,
            customer_erp_id=customer_erp_id,
            subsidiary=subsidiary,
            currency_erp_id=currency_erp_id,
            applications=applications,
        )
        entity = self._entity(subsidiary)
        if entity not in self.legal_entities:
            return done

        def mirror() -> ErpPayment:
            result: ErpPayment = self.secondary.adapter.apply_payment(
                payment,
                external_id=external_id,
                customer_erp_id=self._counterpart("customer", customer_erp_id),
                subsidiary=self._subsidiary(entity),
                currency_erp_id=self._currency(payment.amount.currency),
                applications=[
                    (self._counterpart("invoice", invoice), amount)
                    for invoice, amount in applications
                ],
            )
            return result

        other = self._mirror(f"payment {payment.reference or payment_ref(payment)}", mirror)
        self._pair("payment", external_id, done.erp_id, other.erp_id)
        self._link(XrefLink(f"pay:{payment_ref(payment)}", "payment", self.secondary.system,
                            other.erp_id))  # fmt: skip
        return done

    # --- JournalPort -----------------------------------------------------------------------

    def post_journal(self, journal: JournalRequest, *, external_id: str) -> ErpRecordRef:
        done: ErpRecordRef = self.record.adapter.post_journal(journal, external_id=external_id)
        entity = self._entity(journal.subsidiary)
        if entity not in self.legal_entities:
            return done

        def mirror() -> ErpRecordRef:
            amounts = [m for line in journal.lines for m in (line.debit, line.credit) if m]
            theirs = JournalRequest(
                subsidiary=self._subsidiary(entity),
                currency_erp_id=self._currency(amounts[0].currency) if amounts else "",
                posting_date=journal.posting_date,
                memo=journal.memo,
                lines=[
                    JournalLine(
                        account=self._required("gl_account", line.account, entity),
                        debit=line.debit,
                        credit=line.credit,
                        memo=line.memo,
                        department=self._translate("department", line.department, entity),
                    )
                    for line in journal.lines
                ],
            )
            result: ErpRecordRef = self.secondary.adapter.post_journal(
                theirs, external_id=external_id
            )
            return result

        other = self._mirror(f"journal entry '{journal.memo}'", mirror)
        self._pair("journal", external_id, done.erp_id, other.erp_id)
        return done

    # --- ReferenceDataPort: the system of record's -------------------------------------------

    def exchange_rates(self, on: date) -> list[ExchangeRate]:
        rates: list[ExchangeRate] = self.record.adapter.exchange_rates(on)
        return rates

    def tax_codes(self) -> list[CanonicalTaxCode]:
        codes: list[CanonicalTaxCode] = self.record.adapter.tax_codes()
        return codes

    def items(self) -> list[Item]:
        items: list[Item] = self.record.adapter.items()
        return items

    def currencies(self) -> dict[str, str]:
        currencies: dict[str, str] = self.record.adapter.currencies()
        return currencies

    # --- pairing ---------------------------------------------------------------------------

    def counterpart(self, object_type: str, record_erp_id: str) -> str | None:
        """The secondary's id of the record the system of record holds as ``record_erp_id``."""
        other = paired_id(
            self.xref, object_type, self.record.system, self.secondary.system, record_erp_id
        )
        canonical = self.xref.canonical_id(self.record.system, object_type, record_erp_id)
        if other is not None and canonical is not None:
            # the hub now knows what this is: link the secondary under it for after cut-over
            self._link(XrefLink(canonical, object_type, self.secondary.system, other))
        return other

    def link_counterparts(self) -> int:
        """Link every paired secondary record under its canonical id where the hub knows it
        (run before cut-over); returns how many links were added."""
        added = 0
        for object_type in ("customer", "project", "contract", "invoice", "payment"):
            rows = self.xref.search(
                system=self.record.system, object_type=PAIR_PREFIX + object_type, limit=1_000_000
            )
            for row in rows:
                canonical = self.xref.canonical_id(
                    self.record.system, object_type, row["external_id"]
                )
                if canonical is None:
                    continue
                known = self.xref.external_ids(canonical, object_type)
                if self.secondary.system not in known:
                    other = self.counterpart(object_type, row["external_id"])
                    added += other is not None
        return added

    def _counterpart(self, object_type: str, record_erp_id: str) -> str:
        other = self.counterpart(object_type, record_erp_id)
        if other is not None:
            return other
        raise NotFoundError(
            f"{object_type.capitalize()} {record_erp_id} of {self.record.label} has no "
            f"counterpart in {self.secondary.label}",
            detail=f"no xref {PAIR_PREFIX}{object_type} or {object_type} link for "
            f"{self.record.system}:{record_erp_id} to {self.secondary.system}",
            suggested_fix=f"Migrate the {object_type} to {self.secondary.label} (or post it "
            f"through q2c while the parallel run is on) and link it in the cross-reference "
            "hub, then replay.",
            system=self.secondary.system,
            context={"object_type": object_type, "record_erp_id": record_erp_id},
        )

    def _pair(self, object_type: str, key: str, record_id: str, secondary_id: str) -> None:
        pair_type = PAIR_PREFIX + object_type
        shared = _pair_key(key)
        self._link(XrefLink(shared, pair_type, self.record.system, record_id))
        self._link(XrefLink(shared, pair_type, self.secondary.system, secondary_id))
        canonical = self.xref.canonical_id(self.record.system, object_type, record_id)
        if canonical is not None:
            self._link(XrefLink(canonical, object_type, self.secondary.system, secondary_id))

    def _link(self, link: XrefLink) -> None:
        self.xref.link(link, changed_by="erp-parallel-run")

    # --- translation -----------------------------------------------------------------------

    def _entity(self, subsidiary: str) -> str:
        entity = self.maps.canonical_value("subsidiary", self.record.system, subsidiary)
        if entity is None:
            raise MappingMissingError(
                f"{self.record.label} subsidiary {subsidiary!r} is not mapped to a legal entity",
                detail=f"no mappings.subsidiary.<entity>.{self.record.system}: {subsidiary!r}",
                suggested_fix="Map the legal entity's subsidiary in q2c.yaml, then replay.",
                field="subsidiary",
                system=self.record.system,
            )
        return entity

    def _subsidiary(self, entity: str) -> str:
        return self.maps.resolve("subsidiary", entity, entity, self.secondary.system)

    def _currency(self, code: str) -> str:
        currencies: dict[str, str] = self.secondary.adapter.currencies()
        if code not in currencies:
            raise MappingMissingError(
                f"Currency {code} is not enabled in {self.secondary.label}",
                suggested_fix=f"Enable {code} in {self.secondary.label}, then replay.",
                field="currency",
                system=self.secondary.system,
            )
        return currencies[code]

    def _forward(self, dimension: str, ids: dict[str, str], entity: str) -> dict[str, str]:
        """Keys are canonical values: resolve each for the secondary."""
        return {
            value: self.maps.resolve(dimension, value, entity, self.secondary.system)
            for value in ids
        }

    def _optional(self, dimension: str, value: str | None, entity: str) -> str | None:
        """An optional dimension (department): the secondary's id if mapped, else none."""
        if value is None:
            return None
        return self.maps.get(dimension, value, entity, self.secondary.system)

    def _translate(self, dimension: str, record_id: str | None, entity: str) -> str | None:
        """The system of record's id -> canonical value -> the secondary's id (optional)."""
        if record_id is None:
            return None
        value = self.maps.canonical_value(dimension, self.record.system, record_id, entity)
        return self._optional(dimension, value, entity)

    def _required(self, dimension: str, record_id: str, entity: str) -> str:
        value = self.maps.canonical_value(dimension, self.record.system, record_id, entity)
        if value is None:
            label = dimension.replace("_", " ")
            raise MappingMissingError(
                f"{self.record.label} {label} {record_id} has no canonical name in q2c.yaml, "
                f"so q2c cannot tell which {self.secondary.label} {label} it is",
                detail=f"no mappings.{dimension}.<value>.{self.record.system}: {record_id!r}",
                suggested_fix=f"Map the {label} for both ERPs in q2c.yaml, then replay.",
                field=dimension,
                system=self.secondary.system,
            )
        return self.maps.resolve(dimension, value, entity, self.secondary.system)

    # --- failure ---------------------------------------------------------------------------

    def _mirror(self, what: str, write: Callable[[], T]) -> T:
        try:
            return write()
        except Q2CError as exc:
            raise self._secondary_failed(what, exc) from exc

    def _secondary_failed(self, what: str, exc: Q2CError) -> Q2CError:
        """The same kind of error (retriable stays retriable), saying which ERP failed and
        that the system of record is done."""
        record, secondary = self.record.label, self.secondary.label
        failed = _clone(exc)
        failed.message = (
            f"Parallel run: {what} is in {record} (system of record) but not in {secondary}: "
            f"{exc.message}"
        )
        failed.args = (failed.message,)
        failed.suggested_fix = (
            f"{exc.suggested_fix} Replaying is safe: {record} already has it and is not "
            "written twice."
        )
        failed.system = exc.system or self.secondary.system
        failed.context = {
            **exc.context,
            "parallel_run": {"system_of_record": self.record.system,
                             "failed": self.secondary.system},
        }  # fmt: skip
        return failed

    def _check_secondary_totals(self, invoice: Invoice, posted: ErpRecordRef, what: str) -> None:
        read: ErpInvoice = self.secondary.adapter.read_invoice(posted.erp_id)
        differences = compare_posting(invoice, read)
        if differences:
            raise BusinessFixError(
                f"{self.secondary.label} computed {what} differently from the billing "
                f"document: {differences[0]}",
                detail="; ".join(differences),
                suggested_fix=f"Check the tax code mapping and the tax rates in "
                f"{self.secondary.label}; correct them, then replay.",
                system=self.secondary.system,
                context={"differences": differences, "erp_id": posted.erp_id},
            )


def paired_id(
    xref: XrefHub, object_type: str, from_system: str, to_system: str, erp_id: str
) -> str | None:
    """``to_system``'s id of the record ``from_system`` holds as ``erp_id``: linked under the
    same canonical object, else paired by the parallel run (shared external id)."""
    canonical = xref.canonical_id(from_system, object_type, erp_id)
    if canonical is not None:
        linked = xref.external_ids(canonical, object_type).get(to_system)
        if linked is not None:
            return linked
    pair_type = PAIR_PREFIX + object_type
    key = xref.canonical_id(from_system, pair_type, erp_id)
    return None if key is None else xref.external_ids(key, pair_type).get(to_system)


def _pair_key(key: str) -> str:
    """The shared external id, shortened (stably) if it does not fit an xref canonical id."""
    if len(key) <= _KEY_LIMIT:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{key[: _KEY_LIMIT - 17]}~{digest}"


def _clone(exc: Q2CError) -> Q2CError:
    clone = type(exc).__new__(type(exc))
    clone.__dict__.update(exc.__dict__)
    return clone


def parallel_run_from_config(
    config: Q2CConfig, connections: Connections, *, xref: XrefHub, maps: Callable[[], ValueMaps]
) -> ParallelRunErp | None:
    """The parallel-run port ``erp_migration`` in q2c.yaml asks for, or None without one."""
    migration = config.erp_migration
    if migration is None:
        return None

    def side(name: str) -> ErpSide:
        adapter = connections.by_system.get(name)
        if adapter is None:
            raise ConfigError(f"q2c.yaml: erp_migration: system {name!r} is not connected")
        return ErpSide(adapter, system_display_name(name, config.systems[name].vendor))

    return ParallelRunErp(
        side(migration.record_system),
        side(migration.secondary_system),
        xref=xref,
        maps=maps,
        legal_entities=migration.legal_entities,
    )
