"""A Kantata OX account in a box: state, OAuth application, fault plan and the ASGI app.

Tests and the demo create one ``KantataSandbox``, seed it (clients, projects, people, roles,
time, expenses, milestones), approve what should be billable, and connect the real adapter to
it through ``client()`` (in process) or by serving ``app`` (``q2c sandbox``). Every seeding
helper returns Kantata's id for what it made. The account's clock is deterministic: it starts
at ``start`` and moves ``tick`` per write; ``advance``/``clock.set`` move it further, so tests
control every ``updated_at``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any, cast

import httpx

from q2c.connectors.kantata import wire
from q2c.connectors.kantata.adapter import SERVICE_NAME, KantataPsa, connect_kantata
from q2c.connectors.kantata.emulator import build_app, kantata_error_body
from q2c.connectors.kantata.server_auth import OAuthApplication, TokenStore
from q2c.connectors.kantata.state import KantataClock, KantataState
from q2c.connectors.sandbox import ASGIApp, FaultInjector, FaultPlan, InProcessTransport

__all__ = ["KantataSandbox"]


class KantataSandbox:
    """One emulated Kantata OX account with a registered OAuth application."""

    def __init__(
        self,
        *,
        base_url: str = wire.DEFAULT_BASE_URL,
        start: datetime | None = None,
        tick: timedelta = timedelta(seconds=1),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.clock = KantataClock(start, tick=tick)
        self.state = KantataState(self.clock)
        self.application = OAuthApplication(secrets.token_hex(16), secrets.token_hex(32))
        self.tokens = TokenStore(self.application)
        self.access_token, self.refresh_token = self.tokens.issue()
        self.faults = FaultPlan()
        self.asgi = build_app(self.state, self.tokens)
        self.app = FaultInjector(
            cast(ASGIApp, self.asgi), self.faults, error_body=kantata_error_body
        )
        self._transports: list[InProcessTransport] = []

    # --- connecting ---------------------------------------------------------------------

    @property
    def token_url(self) -> str:
        return wire.token_url_for(self.base_url)

    @property
    def client_id(self) -> str:
        return self.application.client_id

    @property
    def client_secret(self) -> str:
        return self.application.client_secret

    def client(self, timeout: float = 5.0) -> httpx.Client:
        """An httpx client whose requests reach this sandbox in process."""
        transport = InProcessTransport(self.app)
        self._transports.append(transport)
        return httpx.Client(transport=transport, timeout=timeout, base_url=self.base_url)

    def psa(self, *, timeout: float = 5.0, renewable: bool = True, **kwargs: Any) -> KantataPsa:
        """The real adapter wired to this sandbox (able to renew its token unless told not)."""
        renew: dict[str, Any] = (
            {
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "refresh_token": self.refresh_token,
            }
            if renewable
            else {}
        )
        return connect_kantata(
            self.client(timeout),
            access_token=kwargs.pop("access_token", self.access_token),
            base_url=self.base_url,
            **renew,
            **kwargs,
        )

    def close(self) -> None:
        for transport in self._transports:
            transport.close()
        self._transports.clear()

    def expire_tokens(self) -> None:
        self.tokens.expire_tokens()

    @property
    def token_requests(self) -> int:
        return self.tokens.token_requests

    def advance(self, seconds: float | timedelta) -> datetime:
        """Move the account's clock forward (the next write is stamped after it)."""
        return self.clock.advance(seconds)

    # --- seeding ------------------------------------------------------------------------

    def add_role(self, name: str) -> str:
        return self.state.add_role(name)

    def add_user(self, full_name: str, *, role_id: str | None = None) -> str:
        return self.state.add_user(full_name, role_id=role_id)

    def add_customer(self, name: str, *, external_id: str | None = None) -> str:
        """A client: a company Workspace Group (linked to a CRM id when given)."""
        reference = _reference("customer", external_id) if external_id else None
        return self.state.add_workspace_group(name, company=True, external_reference=reference)

    def add_workspace(
        self,
        title: str,
        *,
        customer_id: str | None = None,
        currency: str = "USD",
        external_id: str | None = None,
        require_time_approvals: bool = True,
        require_expense_approvals: bool = True,
        archived: bool = False,
        start_date: date | None = None,
        due_date: date | None = None,
    ) -> str:
        return self.state.add_workspace(
            title,
            currency=currency,
            group_ids=[customer_id] if customer_id else [],
            start_date=start_date,
            due_date=due_date,
            require_time_approvals=require_time_approvals,
            require_expense_approvals=require_expense_approvals,
            archived=archived,
            external_reference=_reference("project", external_id) if external_id else None,
        )

    def add_story(self, workspace_id: str, title: str, **fields: Any) -> str:
        return self.state.add_story(workspace_id, title, **fields)

    def add_milestone(
        self,
        workspace_id: str,
        title: str,
        *,
        amount_in_cents: int | None = None,
        billing_percent: str | None = None,
        service_item: str | None = None,
        due_date: date | None = None,
        billable: bool = True,
    ) -> str:
        """A milestone story: fixed amount (its budget) or a percent (custom field)."""
        custom: dict[str, str] = {}
        if billing_percent is not None:
            custom["Billing Percent"] = billing_percent
        if service_item is not None:
            custom["Service Item"] = service_item
        return self.state.add_story(
            workspace_id,
            title,
            story_type="milestone",
            fixed_fee=amount_in_cents is not None,
            budget_estimate_in_cents=amount_in_cents,
            due_date=due_date,
            billable=billable,
            custom_fields=custom,
        )

    def complete_milestone(self, story_id: str) -> str:
        self.state.update(
            "stories",
            story_id,
            {"state": "completed", "status": "completed", "percentage_complete": 100},
        )
        return story_id

    def add_time_entry(
        self,
        workspace_id: str,
        *,
        date_performed: date,
        minutes: int,
        user_id: str | None = None,
        billable: bool = True,
        story_id: str | None = None,
        role_id: str | None = None,
        rate_in_cents: int | None = None,
        notes: str = "",
    ) -> str:
        return self.state.add_time_entry(
            workspace_id,
            user_id=user_id or self.state.current_user_id,
            date_performed=date_performed,
            time_in_minutes=minutes,
            billable=billable,
            story_id=story_id,
            role_id=role_id,
            rate_in_cents=rate_in_cents,
            notes=notes,
        )

    def add_expense(
        self,
        workspace_id: str,
        *,
        expense_date: date,
        amount_in_cents: int,
        currency: str | None = None,
        category: str = "Travel",
        billable: bool = True,
        user_id: str | None = None,
        notes: str = "",
    ) -> str:
        return self.state.add_expense(
            workspace_id,
            user_id=user_id or self.state.current_user_id,
            expense_date=expense_date,
            amount_in_cents=amount_in_cents,
            currency=currency,
            category=category,
            billable=billable,
            notes=notes,
        )

    def approve(
        self, *, time_entries: Iterable[str] = (), expenses: Iterable[str] = ()
    ) -> list[str]:
        """Approve on submissions (one per project and person); returns the submission ids."""
        created = self.state.submit("time_entries", list(time_entries), status="approved")
        return created + self.state.submit("expenses", list(expenses), status="approved")

    def submit(
        self, *, time_entries: Iterable[str] = (), expenses: Iterable[str] = ()
    ) -> list[str]:
        """Submit for approval without approving (pending submissions)."""
        created = self.state.submit("time_entries", list(time_entries), status="pending")
        return created + self.state.submit("expenses", list(expenses), status="pending")

    def update(self, resource: str, record_id: str, **changes: Any) -> None:
        """Change a record as a Kantata user would (its ``updated_at`` moves)."""
        self.state.update(resource, record_id, changes)

    def workspaces_linked_to(self, external_id: str, *, model: str = "project") -> set[str]:
        return self.state.subjects_with_reference("Workspace", SERVICE_NAME, model, [external_id])


def _reference(model: str, external_id: str) -> dict[str, Any]:
    return {
        "service_name": SERVICE_NAME,
        "service_model": model,
        "service_model_ref": external_id,
        "status": "successful",
    }
