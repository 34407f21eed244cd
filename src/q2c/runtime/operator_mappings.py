"""Operator value mappings: "fix mapping" kept in the hub's store and used by every process.

An operator who maps a value at run time (the console's "fix mapping", ``Hub.add_mapping``)
writes it here, in one transaction: the current mapping per key in ``operator_mappings``
(unique on dimension, value, legal entity, system; a second fix replaces the external id) and
every change appended to ``operator_mapping_history`` (who, why, the old and the new id).

Every hub process uses q2c.yaml's ``mappings`` overlaid with these. ``LiveValueMaps`` keeps
the overlay current without a restart: at a transaction run (``Hub.services``) it asks the
store whether the history changed (its row count and highest id, one aggregate query) at most
once a second, and reloads only when it did; between checks the hot path reads a clock. A
lookup that finds no mapping asks the store at once before giving up, so a transaction that
parked on a missing mapping and is replayed by any worker right after the fix completes.

q2c.yaml against an operator mapping for the same key, decided here:

- each operator mapping remembers q2c.yaml's id for its exact key when it was added
  (``config_external_id``; None when q2c.yaml had none, the usual missing mapping);
- while q2c.yaml still says that, the operator mapping wins: the operator fixed what q2c.yaml
  had (nothing, or a wrong id), and q2c.yaml has not been touched since;
- once q2c.yaml says something else for the key (an engineer edited it, or removed the key),
  q2c.yaml wins: the file in git is the source of truth again, and ``q2c mappings list``
  shows the operator mapping as overridden by q2c.yaml;
- when q2c.yaml says the same id, the two agree: the operator's fix has been copied there.

A later fix of the same key re-reads q2c.yaml's id, so a fix made after a q2c.yaml change wins
again. Mappings for ``"*"`` and for one legal entity are different keys: as in q2c.yaml, the
exact legal entity wins over ``"*"``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, String, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from q2c.errors import BusinessFixError, MappingMissingError
from q2c.mapping.value_maps import MappingEntry, ValueMaps
from q2c.store.schema import operator_mapping_history, operator_mappings

__all__ = [
    "LiveValueMaps",
    "MappingChange",
    "OperatorMapping",
    "OperatorMappingError",
    "OperatorMappings",
    "Standing",
    "overlay",
    "standing",
]

Standing = Literal["in_q2c_yaml", "not_in_q2c_yaml", "overridden_by_q2c_yaml"]
"""Where an operator mapping stands against the q2c.yaml a process loaded:
``in_q2c_yaml`` (q2c.yaml says the same id), ``not_in_q2c_yaml`` (the operator mapping is
used; copy it into q2c.yaml), ``overridden_by_q2c_yaml`` (q2c.yaml changed since the fix and
wins)."""

Version = tuple[int, int]


class OperatorMappingError(BusinessFixError):
    default_fix = "Give the dimension, value, legal entity (or *), system and external id."


@dataclass(frozen=True, slots=True)
class OperatorMapping:
    """The current operator mapping of one key."""

    dimension: str
    value: str
    legal_entity: str
    system: str
    external_id: str
    config_external_id: str | None
    added_by: str
    reason: str | None
    added_at: datetime

    @property
    def entry(self) -> MappingEntry:
        return MappingEntry(
            self.dimension, self.value, self.legal_entity, self.system, self.external_id
        )


@dataclass(frozen=True, slots=True)
class MappingChange:
    """One add or replacement, as kept in the history."""

    id: int
    dimension: str
    value: str
    legal_entity: str
    system: str
    old_external_id: str | None
    new_external_id: str
    config_external_id: str | None
    added_by: str
    reason: str | None
    added_at: datetime


def standing(mapping: OperatorMapping, configured: ValueMaps) -> Standing:
    """How this operator mapping stands against q2c.yaml's ``mappings`` (see module doc)."""
    in_config = configured.exact(
        mapping.dimension, mapping.value, mapping.legal_entity, mapping.system
    )
    if in_config == mapping.external_id:
        return "in_q2c_yaml"
    if in_config == mapping.config_external_id:
        return "not_in_q2c_yaml"
    return "overridden_by_q2c_yaml"


def overlay(configured: ValueMaps, stored: Iterable[OperatorMapping]) -> ValueMaps:
    """q2c.yaml's maps with the operator mappings that still apply laid over them."""
    return configured.with_mappings(
        mapping.entry for mapping in stored if standing(mapping, configured) == "not_in_q2c_yaml"
    )


_MAX_LENGTH = {
    column.name: column.type.length
    for column in operator_mappings.c
    if isinstance(column.type, String) and column.type.length
}


def _key(**key: str) -> list[Any]:
    return [operator_mappings.c[name] == value for name, value in key.items()]


class OperatorMappings:
    """The store's operator mappings: add one (in a transaction), load them, their history."""

    def __init__(self, engine: Engine, *, now: Callable[[], datetime]) -> None:
        self.engine = engine
        self.now = now

    def add(
        self,
        entry: MappingEntry,
        *,
        by: str,
        reason: str | None = None,
        config_external_id: str | None = None,
    ) -> OperatorMapping:
        """Store ``entry`` as the operator mapping of its key (replacing an earlier one) and
        append the change to the history, both in one transaction."""
        self._check(entry, by)
        mapping = OperatorMapping(
            *entry,
            config_external_id=config_external_id,
            added_by=by,
            reason=reason or None,
            added_at=self.now(),
        )
        key = {
            "dimension": entry.dimension,
            "value": entry.value,
            "legal_entity": entry.legal_entity,
            "system": entry.system,
        }
        values = {
            "external_id": mapping.external_id,
            "config_external_id": mapping.config_external_id,
            "added_by": mapping.added_by,
            "reason": mapping.reason,
            "added_at": mapping.added_at,
        }
        with self.engine.begin() as connection:
            old = self._locked_external_id(connection, key)
            if old is None and not self._insert_new(connection, {**key, **values}):
                # another process added this key since we looked: replace theirs
                old = self._locked_external_id(connection, key)
            if old is not None:
                connection.execute(
                    update(operator_mappings).where(*_key(**key)).values(**values)
                )
            connection.execute(
                insert(operator_mapping_history).values(
                    **key,
                    old_external_id=old,
                    new_external_id=mapping.external_id,
                    config_external_id=mapping.config_external_id,
                    added_by=mapping.added_by,
                    reason=mapping.reason,
                    added_at=mapping.added_at,
                )
            )
        return mapping

    @staticmethod
    def _check(entry: MappingEntry, by: str) -> None:
        fields = {**entry._asdict(), "added_by": by}
        problems = [f"{name} is empty" for name, text in fields.items() if not text.strip()]
        problems += [
            f"{name} is longer than {_MAX_LENGTH[name]} characters"
            for name, text in fields.items()
            if len(text) > _MAX_LENGTH[name]
        ]
        if problems:
            raise OperatorMappingError(
                "The mapping cannot be saved: " + "; ".join(problems).replace("_", " "),
                detail=f"entry={tuple(entry)!r} by={by!r}",
            )

    @staticmethod
    def _locked_external_id(connection: Connection, key: dict[str, str]) -> str | None:
        # FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the write lock
        return connection.execute(
            select(operator_mappings.c.external_id).where(*_key(**key)).with_for_update()
        ).scalar_one_or_none()

    @staticmethod
    def _insert_new(connection: Connection, row: dict[str, Any]) -> bool:
        """Insert the key's first mapping; False when a concurrent add got there first."""
        dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else (
            sqlite.insert
        )
        statement = (
            dialect_insert(operator_mappings)
            .values(**row)
            .on_conflict_do_nothing(
                index_elements=["dimension", "value", "legal_entity", "system"]
            )
            .returning(operator_mappings.c.id)
        )
        return connection.execute(statement).scalar_one_or_none() is not None

    def load(self) -> list[OperatorMapping]:
        table = operator_mappings
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(
                    table.c.dimension,
                    table.c.value,
                    table.c.legal_entity,
                    table.c.system,
                    table.c.external_id,
                    table.c.config_external_id,
                    table.c.added_by,
                    table.c.reason,
                    table.c.added_at,
                ).order_by(table.c.dimension, table.c.value, table.c.legal_entity, table.c.system)
            ).all()
        return [OperatorMapping(*row) for row in rows]

    def history(self) -> list[MappingChange]:
        """Every add and replacement, oldest first."""
        table = operator_mapping_history
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(
                    table.c.id,
                    table.c.dimension,
                    table.c.value,
                    table.c.legal_entity,
                    table.c.system,
                    table.c.old_external_id,
                    table.c.new_external_id,
                    table.c.config_external_id,
                    table.c.added_by,
                    table.c.reason,
                    table.c.added_at,
                ).order_by(table.c.id)
            ).all()
        return [MappingChange(*row) for row in rows]

    def version(self) -> Version:
        """Changes so far: the history's row count and highest id. The count catches a change
        whose id was taken before another's but committed after it (PostgreSQL sequences)."""
        table = operator_mapping_history
        with self.engine.connect() as connection:
            count, highest = connection.execute(
                select(func.count(), func.coalesce(func.max(table.c.id), 0))
            ).one()
        return int(count), int(highest)


class LiveValueMaps:
    """The value maps a hub uses: q2c.yaml's, overlaid with the store's operator mappings.

    ``current()`` asks the store whether the operator mappings changed at most once every
    ``check_every`` seconds (between checks it costs a clock read) and reloads only when they
    did. A lookup that finds no mapping does not wait for the next check: it asks the store
    at once and looks again (see ``_StoreBackedMaps``), so a transaction replayed right after
    an operator's fix in another process is run with that fix instead of parking again. A
    replaced id is seen within ``check_every`` seconds.
    """

    def __init__(
        self,
        configured: ValueMaps,
        store: OperatorMappings,
        *,
        check_every: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.configured = configured
        self.store = store
        self.check_every = check_every
        self.monotonic = monotonic
        self._version: Version | None = None
        self._checked_at = -math.inf
        self._current: ValueMaps = _StoreBackedMaps(configured, self)

    def current(self) -> ValueMaps:
        """The maps to run with now, checked against the store if the last check is old."""
        if self.monotonic() - self._checked_at >= self.check_every:
            return self.refresh()
        return self._current

    def refresh(self) -> ValueMaps:
        """Check the store now (one aggregate query) and reload if the mappings changed."""
        version = self.store.version()
        if version != self._version:
            # version read first: a change committed in between is seen at the next check
            self._current = _StoreBackedMaps(overlay(self.configured, self.store.load()), self)
            self._version = version
        self._checked_at = self.monotonic()
        return self._current

    def add(
        self,
        entry: MappingEntry,
        *,
        by: str,
        reason: str | None = None,
    ) -> ValueMaps:
        """Store an operator mapping (remembering q2c.yaml's id for the key) and return the
        maps with it."""
        self.store.add(
            entry,
            by=by,
            reason=reason,
            config_external_id=self.configured.exact(
                entry.dimension, entry.value, entry.legal_entity, entry.system
            ),
        )
        return self.refresh()

    def standings(self) -> list[tuple[OperatorMapping, Standing]]:
        """Every stored operator mapping with where it stands against this q2c.yaml."""
        return [(mapping, standing(mapping, self.configured)) for mapping in self.store.load()]


class _StoreBackedMaps(ValueMaps):
    """Value maps that, before reporting a mapping missing, check the store for a newer
    operator mapping: the one moment a stale map would cost a parked transaction."""

    __slots__ = ("_live",)

    def __init__(self, maps: ValueMaps, live: LiveValueMaps) -> None:
        super().__init__()
        self._table, self._display = maps._table, maps._display  # shared: neither is mutated
        self._live = live

    def resolve(self, dimension: str, canonical_value: str, legal_entity: str, system: str) -> str:
        try:
            return super().resolve(dimension, canonical_value, legal_entity, system)
        except MappingMissingError:
            fresh = self._live.refresh()
            if fresh is self:
                raise
            # the plain lookup: one store check per miss is enough
            return ValueMaps.resolve(fresh, dimension, canonical_value, legal_entity, system)
