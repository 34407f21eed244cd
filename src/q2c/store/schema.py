"""The hub's own state, as SQLAlchemy Core tables. Alembic migrations are made from this.

Same tables on SQLite (embedded default) and PostgreSQL (scaled backend). JSON documents are
kept as text written by orjson so both backends store byte-identical payloads.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "UtcDateTime",
    "billable_events",
    "exceptions",
    "inbox",
    "ledger_documents",
    "master_records",
    "metadata",
    "operator_mapping_history",
    "operator_mappings",
    "outbox",
    "payloads",
    "replays",
    "steps",
    "transactions",
    "watermarks",
    "xref",
    "xref_history",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER only


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps are stored in UTC and come back timezone-aware on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(name: str, *, nullable: bool = True) -> Column[datetime]:
    return Column(name, UtcDateTime(timezone=True), nullable=nullable)


inbox = Table(
    "inbox",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("source", String(500), nullable=False),
    Column("event_id", String(200), nullable=False),
    Column("type", String(200), nullable=False),
    Column("subject", String(500)),
    Column("correlation_id", String(200)),
    Column("transaction_id", String(64)),
    Column("status", String(30), nullable=False),  # accepted | duplicate_business_key | unrouted
    Column("payload", Text, nullable=False),
    _ts("received_at", nullable=False),
    UniqueConstraint("source", "event_id", name="uq_inbox_source_event"),
)

transactions = Table(
    "transactions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("flow", String(100), nullable=False),
    Column("business_key", String(300), nullable=False),
    Column("version", Integer, nullable=False),
    Column("partition_key", String(100)),
    Column("mode", String(10), nullable=False),  # live | shadow
    # pending | running | retry_wait | completed | parked | dismissed
    Column("status", String(20), nullable=False),
    Column("correlation_id", String(200), nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("input", Text, nullable=False),
    Column("current_step", String(100)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("replay_count", Integer, nullable=False, default=0),
    _ts("next_attempt_at"),
    Column("claimed_by", String(100)),
    _ts("claimed_until"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    _ts("completed_at"),
    UniqueConstraint("flow", "business_key", "version", name="uq_transactions_business"),
    Index("ix_transactions_due", "status", "next_attempt_at"),
    Index("ix_transactions_key", "flow", "business_key"),
)

steps = Table(
    "steps",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("transaction_id", String(64), nullable=False, index=True),
    Column("step", String(100), nullable=False),
    Column("position", Integer, nullable=False),
    Column("idempotency_key", String(600), nullable=False),
    Column("status", String(20), nullable=False),  # started | done | failed
    Column("attempt", Integer, nullable=False),
    Column("system", String(100)),
    Column("output", Text),
    Column("error", Text),
    _ts("started_at", nullable=False),
    _ts("finished_at"),
    UniqueConstraint("idempotency_key", name="uq_steps_idempotency_key"),
)

exceptions = Table(
    "exceptions",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("transaction_id", String(64), nullable=False, index=True),
    Column("flow", String(100), nullable=False),
    Column("business_key", String(300), nullable=False),
    Column("step", String(100), nullable=False),
    Column("kind", String(20), nullable=False),  # retriable | business_fix | fatal
    Column("error", String(100), nullable=False),
    Column("message", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("suggested_fix", Text, nullable=False),
    Column("system", String(100)),
    Column("context", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("status", String(20), nullable=False),  # open | replaying | resolved | dismissed
    Column("resolution", Text),
    _ts("created_at", nullable=False),
    _ts("resolved_at"),
    Index("ix_exceptions_status", "status", "flow"),
    Index("ix_exceptions_key", "flow", "business_key"),
)

replays = Table(
    "replays",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("transaction_id", String(64), nullable=False, index=True),
    Column("exception_id", BigInteger),
    Column("requested_by", String(200), nullable=False),
    Column("reason", Text),
    Column("dry_run", Integer, nullable=False),
    Column("from_step", String(100)),
    Column("outcome", Text),
    _ts("requested_at", nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("event_id", String(200), nullable=False, unique=True),
    Column("type", String(200), nullable=False),
    Column("subject", String(500)),
    Column("partition_key", String(100)),
    Column("correlation_id", String(200)),
    Column("transaction_id", String(64)),
    Column("payload", Text, nullable=False),
    _ts("created_at", nullable=False),
    _ts("published_at"),
    Column("attempts", Integer, nullable=False, default=0),
    Index("ix_outbox_pending", "published_at", "id"),
)

payloads = Table(
    "payloads",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("direction", String(10), nullable=False),  # inbound | outbound
    Column("system", String(100), nullable=False),
    Column("correlation_id", String(200), index=True),
    Column("transaction_id", String(64), index=True),
    Column("operation", String(1000), nullable=False),  # "POST https://…" or an event type
    Column("status", Integer),
    Column("elapsed_ms", Integer),
    Column("request_headers", Text),
    Column("request_body", Text),
    Column("response_headers", Text),
    Column("response_body", Text),
    Column("error", Text),
    _ts("created_at", nullable=False),
    _ts("expires_at", nullable=False),
    Index("ix_payloads_expires", "expires_at"),
)

xref = Table(
    "xref",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("canonical_id", String(100), nullable=False),
    Column("object_type", String(50), nullable=False),
    Column("system", String(100), nullable=False),
    Column("external_id", String(300), nullable=False),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    UniqueConstraint("system", "object_type", "external_id", name="uq_xref_external"),
    UniqueConstraint("canonical_id", "object_type", "system", name="uq_xref_canonical"),
)

xref_history = Table(
    "xref_history",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("canonical_id", String(100), nullable=False, index=True),
    Column("object_type", String(50), nullable=False),
    Column("system", String(100), nullable=False),
    Column("old_external_id", String(300)),
    Column("new_external_id", String(300)),
    Column("changed_by", String(200), nullable=False),
    _ts("changed_at", nullable=False),
)

watermarks = Table(
    "watermarks",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("value", String(500), nullable=False),
    _ts("updated_at", nullable=False),
)


# --- operator value mappings -------------------------------------------------------------
# Mappings an operator added at run time ("fix mapping"), read by every hub process on top of
# q2c.yaml's ``mappings``. One current row per key; every add (first or replacing) is also
# appended to the history, whose row count and highest id tell a process the set changed.

operator_mappings = Table(
    "operator_mappings",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("dimension", String(100), nullable=False),
    Column("value", String(300), nullable=False),
    Column("legal_entity", String(40), nullable=False),  # a legal entity code, or "*"
    Column("system", String(100), nullable=False),
    Column("external_id", String(300), nullable=False),
    # q2c.yaml's id for this exact key when the operator added it (None: q2c.yaml had none);
    # once q2c.yaml says something else, q2c.yaml wins (see q2c.runtime.operator_mappings)
    Column("config_external_id", String(300)),
    Column("added_by", String(200), nullable=False),
    Column("reason", Text),
    _ts("added_at", nullable=False),
    UniqueConstraint(
        "dimension", "value", "legal_entity", "system", name="uq_operator_mappings_key"
    ),
)

operator_mapping_history = Table(
    "operator_mapping_history",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("dimension", String(100), nullable=False),
    Column("value", String(300), nullable=False),
    Column("legal_entity", String(40), nullable=False),
    Column("system", String(100), nullable=False),
    Column("old_external_id", String(300)),  # None: the first operator mapping for the key
    Column("new_external_id", String(300), nullable=False),
    Column("config_external_id", String(300)),
    Column("added_by", String(200), nullable=False),
    Column("reason", Text),
    _ts("added_at", nullable=False),
    Index("ix_operator_mapping_history_key", "dimension", "value", "legal_entity", "system"),
)


# --- delivery-to-cash ledgers ------------------------------------------------------------
# Money is stored as exact decimal text next to its currency: SQLite has no exact numeric type.

master_records = Table(
    "master_records",
    metadata,
    # Canonical master data the hub keeps: contracts, projects, rate card versions, customers,
    # reference data. Every version is kept; the highest is current.
    Column("object_type", String(50), primary_key=True),
    Column("canonical_id", String(200), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("legal_entity", String(40)),
    Column("status", String(30)),
    Column("data", Text, nullable=False),
    _ts("recorded_at", nullable=False),
    Index("ix_master_records_type_entity", "object_type", "legal_entity"),
)

billable_events = Table(
    "billable_events",
    metadata,
    # Every approved billing event once, and the invoice it landed on (inclusion).
    Column("id", String(200), primary_key=True),
    Column("kind", String(30), nullable=False),
    Column("contract_id", String(200), nullable=False),
    Column("project_id", String(200), nullable=False),
    Column("legal_entity", String(40), nullable=False),
    Column("work_date", Date, nullable=False),
    Column("status", String(20), nullable=False),  # ready | billed | held
    Column("data", Text, nullable=False),
    Column("billing_run", String(300)),
    Column("invoice_ref", String(200)),
    Column("line_ref", String(300)),
    Column("billed_amount", String(40)),
    Column("currency", String(3)),
    Column("hold_reason", Text),
    _ts("recorded_at", nullable=False),
    _ts("updated_at", nullable=False),
    Index("ix_billable_events_contract", "contract_id", "status", "work_date"),
)

ledger_documents = Table(
    "ledger_documents",
    metadata,
    # Invoices billed, payments received and revenue recognised, with what the ERP read back:
    # the figures the demo summary and reconciliation compare.
    Column("kind", String(20), primary_key=True),  # invoice | payment | revenue
    Column("document_id", String(300), primary_key=True),
    Column("legal_entity", String(40), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("customer_id", String(200)),
    Column("contract_id", String(200)),
    Column("number", String(100)),
    Column("amount", String(40), nullable=False),
    Column("tax_amount", String(40)),
    Column("erp_id", String(200)),
    Column("erp_number", String(100)),
    Column("erp_amount", String(40)),
    Column("status", String(30), nullable=False),
    _ts("recorded_at", nullable=False),
    _ts("updated_at", nullable=False),
    Index("ix_ledger_documents_entity", "kind", "legal_entity", "currency"),
)
