"""ERP reconciliation during a migration parallel run: do both ERPs hold the same receivables?

    read statements (legacy, target) -> pair customers (xref) -> compare (pure domain)

For each legal entity of ``erp_migration`` in q2c.yaml, both ERPs are asked for their
customers' AR balances and posted invoices (``ArStatementPort.ar_statements``: read back from
each ERP, never from q2c's state); customers are paired through the cross-reference hub (the
parallel run links each mirrored customer), and ``q2c.reconciliation.erp_ar`` lists every
difference in a line a finance operator can act on. Read-only: it writes to neither ERP nor
the hub.

``reconcile_erp_migration(hub)`` is what ``q2c reconcile`` calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from q2c.config import ErpMigrationConfig, Q2CConfig
from q2c.connectors.parallel_run import paired_id
from q2c.errors import ConfigError
from q2c.flows.ports import ArCustomerStatement, ArStatementPort
from q2c.mapping.value_maps import ValueMaps, system_display_name
from q2c.reconciliation.erp_ar import ErpArReconciliation, Side, compare_receivables
from q2c.runtime.xref import XrefHub

if TYPE_CHECKING:
    from q2c.bootstrap import Hub

__all__ = ["reconcile_erp_migration", "reconcile_erps"]


def reconcile_erp_migration(
    hub: Hub, legal_entities: Sequence[str] | None = None
) -> list[ErpArReconciliation]:
    """One report per legal entity of the parallel run (or of ``legal_entities``)."""
    config = hub.config
    migration = _migration(config)
    by_system = hub.connections.by_system
    return reconcile_erps(
        config,
        legacy=by_system[migration.legacy],
        target=by_system[migration.target],
        xref=hub.xref,
        maps=hub.maps,
        legal_entities=legal_entities,
    )


def reconcile_erps(
    config: Q2CConfig,
    *,
    legacy: Any,
    target: Any,
    xref: XrefHub,
    maps: ValueMaps,
    legal_entities: Sequence[str] | None = None,
) -> list[ErpArReconciliation]:
    """Compare the two ERPs' receivables, given their adapters (``ArStatementPort``)."""
    migration = _migration(config)
    for name, adapter in ((migration.legacy, legacy), (migration.target, target)):
        if not isinstance(adapter, ArStatementPort):
            raise ConfigError(
                f"{system_display_name(name, config.systems[name].vendor)} cannot report "
                "customer receivables, so it cannot be reconciled",
                detail=f"{type(adapter).__name__} does not implement ar_statements",
            )
    entities = list(legal_entities or migration.legal_entities)
    for code in entities:
        if code not in migration.legal_entities:
            raise ConfigError(
                f"Legal entity {code} is not in the ERP migration parallel run",
                suggested_fix=f"Choose one of {', '.join(migration.legal_entities)}.",
            )
    old = _side(config, migration.legacy, "legacy")
    new = _side(config, migration.target, "target")
    reports = []
    for entity in entities:
        old_statements = _statements(legacy, maps, entity)
        new_statements = _statements(target, maps, entity)
        pairs = _pairs(xref, legacy.system, target.system, old_statements)
        reports.append(compare_receivables(entity, old, new, old_statements, new_statements, pairs))
    return reports


def _migration(config: Q2CConfig) -> ErpMigrationConfig:
    if config.erp_migration is None:
        raise ConfigError(
            "q2c.yaml has no erp_migration section: there is no second ERP to reconcile with",
            suggested_fix="Add erp_migration (legacy, target, legal_entities) to q2c.yaml.",
        )
    return config.erp_migration


def _side(config: Q2CConfig, name: str, role: Any) -> Side:
    return Side(name, system_display_name(name, config.systems[name].vendor), role)


def _statements(
    adapter: ArStatementPort, maps: ValueMaps, entity: str
) -> list[ArCustomerStatement]:
    subsidiary = maps.resolve("subsidiary", entity, entity, adapter.system)
    return adapter.ar_statements(subsidiary)


def _pairs(
    xref: XrefHub, legacy: str, target: str, statements: Sequence[ArCustomerStatement]
) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for statement in statements:
        other = paired_id(xref, "customer", legacy, target, statement.customer_erp_id)
        if other is not None:
            pairs[statement.customer_erp_id] = other
    return pairs
