"""Composition root: the one place that wires settings, store, runtime, connectors and flows.

Nothing connects at import time. Tests and the demo call ``bootstrap()`` with a config (and,
for sandboxes, the in-process emulators); ``q2c serve`` and ``q2c worker`` do the same.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from q2c.config import Q2CConfig, RetryConfig
from q2c.connectors.parallel_run import ParallelRunErp, parallel_run_from_config
from q2c.connectors.registry import Connections, connect_systems
from q2c.errors import ConfigError
from q2c.flows import (
    change_order,
    delivery_to_billing,
    invoice_to_ledger,
    opportunity_to_project,
    payment_to_ledger,
    rate_card_publication,
    reference_data_sync,
    revenue_recognition,
)
from q2c.flows.ports import (
    ArLedgerPort,
    BillingPort,
    CrmPort,
    ErpPort,
    JournalPort,
    PsaPort,
    ReferenceDataPort,
)
from q2c.flows.services import ApprovalPolicy, HubLedgers, Services
from q2c.flows.shadow import ShadowCrm, ShadowErp
from q2c.mapping.ownership import OwnershipRules
from q2c.mapping.value_maps import MappingEntry, ValueMaps
from q2c.runtime.context import current_transaction_id
from q2c.runtime.engine import SagaEngine
from q2c.runtime.flow import Flow, Mode
from q2c.runtime.inbox import Inbox, Routing
from q2c.runtime.ledgers import BillableEvents, LedgerDocuments, MasterRecords
from q2c.runtime.operator_mappings import LiveValueMaps, OperatorMappings
from q2c.runtime.outbox import LocalPublisher, OutboxRelay, Publisher
from q2c.runtime.payload_history import PayloadHistory, Redactor
from q2c.runtime.retry import RetryPolicy
from q2c.runtime.xref import XrefHub
from q2c.store.db import create_store_engine, upgrade

__all__ = ["Hub", "bootstrap", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Hub:
    """The running hub: what the CLI, the API and the tests work with."""

    config: Q2CConfig
    db: sa.Engine
    clock: Callable[[], datetime]
    flows: dict[str, Flow]
    inbox: Inbox
    engine: SagaEngine
    xref: XrefHub
    payloads: PayloadHistory
    publisher: Publisher
    relay: OutboxRelay
    connections: Connections
    maps: ValueMaps
    ownership: OwnershipRules
    extras: dict[str, Any] = field(default_factory=dict)
    parallel_run: ParallelRunErp | None = None  # q2c.yaml erp_migration: both ERPs written
    nats_inbound: Any = None  # the JetStream consumer, made by feeds() when configured
    # q2c.yaml mappings overlaid with the operator mappings in the store (None: q2c.yaml only)
    live_maps: LiveValueMaps | None = None

    def services(self, mode: Mode) -> Services:
        if self.live_maps is not None:  # operator fixes made by other processes, too
            self.maps = self.live_maps.current()
        crm: CrmPort = self.connections.port("crm")
        erp: ErpPort = self.parallel_run or self.connections.port("erp")
        log: list[dict[str, Any]] = []
        if mode == "shadow":
            crm, erp = ShadowCrm(crm, log), ShadowErp(erp, log)
        flow = self.config.flows.opportunity_to_project
        enabled = frozenset(flow.enabled_for) | frozenset(flow.shadow_for)
        approval = self.config.approval
        live = mode == "live"  # shadow mode never writes: delivery-to-cash ports stay unwired
        return Services(
            crm=crm,
            erp=erp,
            maps=self.maps,
            ownership=self.ownership,
            xref=self.xref,
            approval=ApprovalPolicy(
                max_new_customer_credit_limit=approval.max_new_customer_credit_limit,
                require_tax_id=approval.require_tax_id,
            ),
            enabled_entities=enabled or None,
            shadow_log=log,
            psa_port=self._role("psa", PsaPort) if live else None,
            billing_port=self._role("billing", BillingPort) if live else None,
            ledger_port=self._role("erp", ArLedgerPort) if live else None,
            journal_port=self._role("erp", JournalPort) if live else None,
            reference_port=self._role("erp", ReferenceDataPort) if live else None,
            ledgers=self.ledgers,
        )

    def feeds(self, *, poll_crm: bool = True) -> list[Any]:
        """Everything the worker ticks between runs: pollers of the systems that have no push
        and the schedules of scheduled flows."""
        from q2c.canonical.events import ReferenceSyncRequested
        from q2c.runtime.poller import BillingPoller, ClosedWonPoller, DeliveryPoller
        from q2c.runtime.schedule import FlowSchedule

        feeds: list[Any] = []
        if poll_crm and "crm" in self.connections.by_role:
            feeds.append(
                ClosedWonPoller(self.db, self.inbox, self.connections.port("crm"), now=self.clock)
            )
        psa = self._role("psa", PsaPort)
        if psa is not None and self.config.flows.delivery_to_billing.enabled_for:
            feeds.append(DeliveryPoller(self.db, self.inbox, psa, self.xref, now=self.clock))
        billing = self._role("billing", BillingPort)
        if billing is not None and (
            self.config.flows.invoice_to_ledger.enabled_for
            or self.config.flows.payment_to_ledger.enabled_for
        ):
            feeds.append(BillingPoller(self.db, self.inbox, billing, now=self.clock))
        sync = self.config.flows.reference_data_sync
        if sync.schedule and sync.enabled_for and self._role("erp", ReferenceDataPort):
            feeds.append(
                FlowSchedule(
                    self.db,
                    self.inbox,
                    name=reference_data_sync.NAME,
                    crontab=sync.schedule,
                    event_type="reference_data.sync_requested",
                    data=lambda fire: ReferenceSyncRequested(as_of=fire.date()),
                    now=self.clock,
                )
            )
        transport = self.config.transport
        if transport.kind == "nats" and transport.inbound_subjects:
            feeds.append(self._jetstream_inbound())
        return feeds

    def _jetstream_inbound(self) -> Any:
        """The inbound JetStream consumer (one per hub, closed by ``close()``)."""
        from q2c.runtime.nats_inbound import JetStreamInbound

        transport = self.config.transport
        if self.nats_inbound is None and transport.kind == "nats":
            self.nats_inbound = JetStreamInbound(
                self.inbox,
                self.payloads,
                url=transport.url,
                stream=transport.inbound_stream,
                subjects=transport.inbound_subjects,
                durable=transport.durable,
                batch=transport.inbound_batch,
                ack_wait_seconds=transport.ack_wait_seconds,
                redelivery_delay_seconds=transport.redelivery_delay_seconds,
                credentials_file=transport.credentials_file,
            )
        return self.nats_inbound

    def _role(self, role: str, port: type) -> Any:
        """The adapter filed under ``role`` if it implements ``port``, else None (during an
        ERP migration, the ERP role is the parallel run over both ERPs)."""
        adapter = self.connections.by_role.get(role)
        if role == "erp" and self.parallel_run is not None:
            adapter = self.parallel_run
        return adapter if adapter is not None and isinstance(adapter, port) else None

    @property
    def ledgers(self) -> HubLedgers:
        return HubLedgers(
            records=MasterRecords(self.db, now=self.clock),
            billable=BillableEvents(self.db, now=self.clock),
            documents=LedgerDocuments(self.db, now=self.clock),
            exceptions=self.engine.exception_queue,
            inbox=self.inbox,
        )

    def add_mapping(
        self,
        dimension: str,
        value: str,
        legal_entity: str,
        system: str,
        external_id: str,
        *,
        by: str = "operator",
        reason: str | None = None,
    ) -> None:
        """Operator fix: add (or replace) a value mapping at run time. It is kept in the
        store, with who and why, and every hub process on this store runs with it from its
        next transaction; ``q2c mappings list`` shows the ones to copy into q2c.yaml."""
        entry = MappingEntry(dimension, value, legal_entity, system, external_id)
        if self.live_maps is None:
            self.maps = self.maps.with_mapping(*entry)
            return
        self.maps = self.live_maps.add(entry, by=by, reason=reason)

    def close(self) -> None:
        if self.nats_inbound is not None:
            self.nats_inbound.close()
            self.nats_inbound = None
        self.payloads.flush()
        self.connections.close()
        closer = getattr(self.publisher, "close", None)
        if closer is not None:
            closer()
        self.db.dispose()


def bootstrap(
    config: Q2CConfig,
    *,
    clock: Callable[[], datetime] = utcnow,
    worker_id: str | None = None,
    publisher: Publisher | None = None,
    connections: Connections | None = None,
    lease: timedelta = timedelta(seconds=60),
    migrate: bool = True,
    db: sa.Engine | None = None,
) -> Hub:
    db = db or create_store_engine(config.store.url)
    if migrate:
        upgrade(db)
    history = config.payload_history
    payloads = PayloadHistory(
        db,
        now=clock,
        retention=timedelta(days=history.retention_days),
        redactor=Redactor(history.redact_fields),
        transaction_id=current_transaction_id,
    )
    flows = _flows(config)
    hub_ref: dict[str, Hub] = {}
    conns = connections or connect_systems(config, recorder=payloads.record_exchange)

    def mode_for(flow: str, partition: str | None) -> str:
        settings = getattr(config.flows, CONFIG_SECTION.get(flow, flow))
        if partition is None:
            return "live" if settings.enabled_for else ("shadow" if settings.shadow_for else "off")
        return settings.mode(partition)  # type: ignore[no-any-return]

    engine = SagaEngine(
        db,
        flows,
        services=lambda mode: hub_ref["hub"].services(mode),
        worker_id=worker_id or f"{socket.gethostname()}-{os.getpid()}",
        now=clock,
        lease=lease,
        max_replays=config.flows.opportunity_to_project.max_replays,
    )
    if publisher is None and config.transport.kind == "nats":
        from q2c.runtime.nats_transport import NatsPublisher

        publisher = NatsPublisher(config.transport.url, stream=config.transport.stream)
    publisher = publisher or LocalPublisher()
    hub = Hub(
        config=config,
        db=db,
        clock=clock,
        flows=flows,
        inbox=Inbox(db, Routing(flows, mode_for), now=clock),  # type: ignore[arg-type]
        engine=engine,
        xref=XrefHub(db, now=clock),
        payloads=payloads,
        publisher=publisher,
        relay=OutboxRelay(db, publisher, now=clock),
        connections=conns,
        maps=ValueMaps.from_config(config),
        ownership=OwnershipRules.from_config(config),
    )
    hub.live_maps = LiveValueMaps(hub.maps, OperatorMappings(db, now=clock))
    hub.maps = hub.live_maps.current()
    hub.parallel_run = parallel_run_from_config(config, conns, xref=hub.xref, maps=lambda: hub.maps)
    hub_ref["hub"] = hub
    return hub


CONFIG_SECTION = {
    delivery_to_billing.RUN: delivery_to_billing.INTAKE,
    delivery_to_billing.BATCH_INTAKE: delivery_to_billing.INTAKE,
    rate_card_publication.NAME: reference_data_sync.NAME,
    change_order.NAME: delivery_to_billing.INTAKE,
}
"""Flows configured under another flow's section of q2c.yaml (a billing run is part of
delivery-to-billing; so is a change order, which changes what billing may bill)."""


def _policy(name: str, retry: RetryConfig) -> RetryPolicy:
    try:
        return RetryPolicy(
            attempts=retry.attempts,
            initial_seconds=retry.initial_seconds,
            max_seconds=retry.max_seconds,
            multiplier=retry.multiplier,
            jitter=retry.jitter,
        )
    except ValueError as exc:
        raise ConfigError(f"q2c.yaml: flows.{name}.retry: {exc}") from exc


def _flows(config: Q2CConfig) -> dict[str, Flow]:
    settings = config.flows
    intake, batches, run = delivery_to_billing.build_flows(
        _policy(delivery_to_billing.INTAKE, settings.delivery_to_billing.retry)
    )
    flows = [
        opportunity_to_project.build_flow(
            _policy(opportunity_to_project.NAME, settings.opportunity_to_project.retry)
        ),
        intake,
        batches,
        run,
        invoice_to_ledger.build_flow(
            _policy(invoice_to_ledger.NAME, settings.invoice_to_ledger.retry)
        ),
        payment_to_ledger.build_flow(
            _policy(payment_to_ledger.NAME, settings.payment_to_ledger.retry)
        ),
        revenue_recognition.build_flow(
            _policy(revenue_recognition.NAME, settings.revenue_recognition.retry)
        ),
        reference_data_sync.build_flow(
            _policy(reference_data_sync.NAME, settings.reference_data_sync.retry)
        ),
        rate_card_publication.build_flow(
            _policy(reference_data_sync.NAME, settings.reference_data_sync.retry)
        ),
        change_order.build_flow(
            _policy(delivery_to_billing.INTAKE, settings.delivery_to_billing.retry)
        ),
    ]
    return {flow.name: flow for flow in flows}
