"""What every Tryton role adapter shares: the connection, the company, ids by code, warnings.

Tryton asks the user to confirm some checks instead of refusing (``UserWarning``): the client
shows them and, once confirmed, a ``res.user.warning`` record lets the action through. q2c
confirms only the ones it has decided already (``DEFAULT_CONFIRMED_WARNINGS``: the invoice's
taxes differ from the product's defaults because q2c's tax engine chose them; a due date in the
past when an old invoice is posted late); any other warning stops the step with Tryton's
message as a ValidationError, for a person to look at.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Collection, Iterable
from typing import Any, TypeVar

from q2c.canonical.models import Project
from q2c.connectors.tryton.payloads import has_marker, like_marker, with_marker
from q2c.connectors.tryton.rpc import TrytonRpc
from q2c.errors import ConfigError, MappingMissingError, ValidationError
from q2c.flows.ports import ErpRecordRef

__all__ = ["DEFAULT_CONFIRMED_WARNINGS", "TrytonBase"]

SYSTEM = "tryton"
# Warnings a clerk confirms because q2c already decided: the taxes are the ones q2c mapped
# (not the product's defaults), the due date is the billing document's, and so is the invoice
# date - a billing run closing a period early (document dated at period end) issues it ahead.
DEFAULT_CONFIRMED_WARNINGS = frozenset(
    {"invoice_taxes", "invoice_payment_term", "invoice_date_future"}
)
T = TypeVar("T")


class TrytonBase:
    """A signed-in Tryton connection and the few lookups every role needs."""

    system = SYSTEM

    def __init__(
        self,
        rpc: TrytonRpc,
        *,
        confirm_warnings: Collection[str] = DEFAULT_CONFIRMED_WARNINGS,
        legal_entity: str | None = None,
    ) -> None:
        self.rpc = rpc
        self.confirm_warnings = frozenset(confirm_warnings)
        self.legal_entity = legal_entity
        self._currency_ids: dict[str, int] = {}
        self._country_ids: dict[str, int] = {}
        self._company_currency: dict[int, str] = {}
        self._unit_digit_cache: dict[int, int] = {}

    # --- company and currencies ------------------------------------------------------------

    @property
    def company_id(self) -> int:
        """The user's current company (Tryton's context), the default for every document."""
        company = self.rpc.context.get("company")
        if not isinstance(company, int):
            raise ConfigError(
                "q2c's Tryton user has no current company",
                detail=f"context company={company!r}",
                suggested_fix="Set the company on the Tryton user q2c signs in as.",
                system=SYSTEM,
            )
        return company

    def company_for(self, subsidiary: str | None) -> int:
        """``subsidiary`` (mapped in q2c.yaml) is a Tryton company id; empty: the current one."""
        if not subsidiary:
            return self.company_id
        if not str(subsidiary).isdigit():
            raise MappingMissingError(
                f"Company '{subsidiary}' is not a Tryton company id",
                detail=f"subsidiary {subsidiary!r} must map to a company.company id",
                suggested_fix="Map the legal entity to its Tryton company id in q2c.yaml.",
                field="subsidiary",
                system=SYSTEM,
            )
        return int(subsidiary)

    def company_currency(self, company: int | None = None) -> str:
        company = company or self.company_id
        if company not in self._company_currency:
            (row,) = self.rpc.read("company.company", [company], ["currency.code"])
            self._company_currency[company] = str(row["currency."]["code"])
        return self._company_currency[company]

    def currency_id(self, code: str) -> int:
        if code not in self._currency_ids:
            self._load_currencies()
        try:
            return self._currency_ids[code]
        except KeyError:
            raise MappingMissingError(
                f"Currency '{code}' is not set up in Tryton",
                detail=f"no active currency.currency with code {code!r}",
                suggested_fix="Add the currency in Tryton (Currency > Currencies), then replay.",
                field="currency",
                system=SYSTEM,
            ) from None

    def currency_code(self, currency_id: int) -> str:
        if currency_id not in self._currency_ids.values():
            self._load_currencies()
        for code, known in self._currency_ids.items():
            if known == currency_id:
                return code
        raise MappingMissingError(
            f"Tryton currency {currency_id} is unknown", field="currency", system=SYSTEM
        )

    def _load_currencies(self) -> None:
        rows = self.rpc.search_read("currency.currency", [], ["code"])
        self._currency_ids = {str(row["code"]): int(row["id"]) for row in rows}

    def country_id(self, code: str) -> int | None:
        """Tryton's country for an ISO code, or None when the database has no such country."""
        if code not in self._country_ids:
            rows = self.rpc.search_read("country.country", [["code", "=", code]], ["code"])
            if not rows:
                return None
            self._country_ids[code] = int(rows[0]["id"])
        return self._country_ids[code]

    def open_period(self, company: int, on: dt.date) -> int:
        rows = self.rpc.search_read(
            "account.period",
            [
                ["company", "=", company],
                ["start_date", "<=", on],
                ["end_date", ">=", on],
                ["type", "=", "standard"],
                ["state", "=", "open"],
            ],
            ["name"],
            limit=1,
        )
        if not rows:
            raise ValidationError(
                f"Tryton has no open accounting period on {on.isoformat()}",
                detail=f"account.period company={company} date={on}",
                suggested_fix="Create (or re-open) the fiscal year and its periods in Tryton.",
                field="date",
                system=SYSTEM,
            )
        return int(rows[0]["id"])

    # --- warnings --------------------------------------------------------------------------

    def confirming(self, action: Callable[[], T]) -> T:
        """Run ``action``; confirm the warnings q2c has already decided and run it again."""
        confirmed: set[str] = set()
        while True:
            try:
                return action()
            except ValidationError as exc:
                name = str(exc.context.get("warning") or "")
                kind = name.rsplit(".", 1)[-1]
                if not name or kind not in self.confirm_warnings or name in confirmed:
                    raise
                confirmed.add(name)
                self._confirm(name)

    def expect_warnings(self, model: str, record_id: int, kinds: Iterable[str]) -> None:
        """Confirm ahead the warnings q2c knows a button will raise on this record, among those
        it confirms anyway: a refused post costs most of a post (0.3-1 s for an invoice).

        Tryton names a warning ``<md5 of "model,id">.<kind>`` (``res.user.warning.format``);
        should that change, ``confirming`` still confirms each one after its refusal."""
        record = hashlib.md5(f"{model},{record_id}".encode(), usedforsecurity=False).hexdigest()
        user = self.rpc.auth.user_id
        names = [f"{record}.{kind}" for kind in kinds if kind in self.confirm_warnings]
        if names and user is not None:
            self.rpc.create(
                "res.user.warning", [{"user": user, "name": n, "always": False} for n in names]
            )

    def _confirm(self, name: str) -> None:
        values: dict[str, Any] = {"user": self.rpc.auth.user_id, "name": name, "always": False}
        self.rpc.create("res.user.warning", [values])

    # --- projects (shared by the ERP and PSA roles) ----------------------------------------

    def find_work(self, external_id: str, company: int) -> dict[str, Any] | None:
        """The ``project.work`` whose comment carries ``[external_id]``, if any."""
        rows = self.rpc.search_read(
            "project.work",
            [["comment", "like", like_marker(external_id)], ["company", "=", company]],
            ["comment", "number", "name"],
            order=[("id", "ASC")],
        )
        found = [row for row in rows if has_marker(row["comment"], external_id)]
        return found[0] if found else None

    def upsert_work(
        self, project: Project, *, external_id: str, party: int | None, company: int
    ) -> ErpRecordRef:
        """Create or update the project (``project.work`` of type project, timesheets on)."""
        values: dict[str, Any] = {
            "name": project.name,
            "party": party,
            "comment": with_marker(f"q2c project {project.code}", external_id),
            "status": self.rpc.get_id(
                "project", "work_done_status" if project.status == "closed" else "work_open_status"
            ),
        }
        if project.status == "closed":
            values["progress"] = 1  # Tryton closes a work only when it is complete
        existing = self.find_work(external_id, company)
        ctx = {"company": company}
        if existing is not None:
            self.rpc.write("project.work", [int(existing["id"])], values, context=ctx)
            work_id = int(existing["id"])
        else:
            values.update(type="project", company=company, timesheet_available=True)
            (work_id,) = self.rpc.create("project.work", [values], context=ctx)
        (row,) = self.rpc.read("project.work", [work_id], ["number"], context=ctx)
        return ErpRecordRef(str(work_id), external_id, row["number"])
