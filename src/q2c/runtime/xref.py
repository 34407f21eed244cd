"""Cross-reference hub: canonical id <-> (system, object type, external id), with history.

Unique both ways per system: an external record belongs to one canonical object, and a
canonical object has one record per system. Under concurrent writers the database's unique
constraints decide; the loser re-reads and either agrees (same link) or gets a clear conflict.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from q2c.errors import BusinessFixError
from q2c.runtime.flow import XrefLink
from q2c.store.schema import xref, xref_history

__all__ = ["XrefConflictError", "XrefHub", "new_canonical_id"]


def new_canonical_id(object_type: str) -> str:
    return f"{object_type[:4]}_{uuid.uuid4().hex}"


class XrefConflictError(BusinessFixError):
    default_fix = (
        "Two records claim the same identity: merge or correct them in the system of record, "
        "then replay."
    )


class XrefHub:
    def __init__(self, engine: Engine, *, now: Callable[[], datetime]) -> None:
        self.engine = engine
        self.now = now

    # reads ------------------------------------------------------------------------------
    def canonical_id(self, system: str, object_type: str, external_id: str) -> str | None:
        with self.engine.connect() as connection:
            return connection.execute(
                select(xref.c.canonical_id).where(
                    xref.c.system == system,
                    xref.c.object_type == object_type,
                    xref.c.external_id == external_id,
                )
            ).scalar_one_or_none()

    def external_ids(self, canonical_id: str, object_type: str) -> dict[str, str]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(xref.c.system, xref.c.external_id).where(
                    xref.c.canonical_id == canonical_id, xref.c.object_type == object_type
                )
            )
            return {row.system: row.external_id for row in rows}

    def search(
        self,
        *,
        system: str | None = None,
        object_type: str | None = None,
        canonical_id: str | None = None,
        external_id: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, str]]:
        query = select(xref).order_by(xref.c.id).limit(limit)
        for column, value in (
            (xref.c.system, system),
            (xref.c.object_type, object_type),
            (xref.c.canonical_id, canonical_id),
            (xref.c.external_id, external_id),
        ):
            if value is not None:
                query = query.where(column == value)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    # writes -----------------------------------------------------------------------------
    def link(self, link: XrefLink, *, changed_by: str = "q2c") -> None:
        with self.engine.begin() as connection:
            self.link_in(connection, link, changed_by=changed_by)

    def link_in(self, connection: Connection, link: XrefLink, *, changed_by: str) -> None:
        """Record ``link`` inside the caller's transaction (the engine's step completion)."""
        owner = _owner(connection, link)
        if owner == link.canonical_id:
            return
        if owner is not None:
            raise XrefConflictError(
                f"{link.system} {link.object_type} {link.external_id} is already linked to "
                f"another {link.object_type} ({owner})",
                detail=f"wanted canonical id {link.canonical_id}",
                system=link.system,
                context={"existing": owner, "wanted": link.canonical_id},
            )
        current = _current(connection, link)
        if current == link.external_id:
            return  # a concurrent writer recorded this very link since the first read
        if current is not None:
            raise XrefConflictError(
                f"{link.object_type.capitalize()} {link.canonical_id} already has {link.system} "
                f"record {current}; {link.system} record {link.external_id} would be a second "
                f"one (duplicate {link.object_type} records in {link.system})",
                detail=f"link {link} refused: one record per system per canonical object",
                suggested_fix=(
                    f"Merge the duplicate records in {link.system}, or relink with "
                    "`q2c xref relink` if the record was re-keyed, then replay."
                ),
                system=link.system,
                context={"existing": current, "wanted": link.external_id},
            )
        now = self.now()
        try:
            with connection.begin_nested():
                connection.execute(
                    insert(xref).values(
                        canonical_id=link.canonical_id,
                        object_type=link.object_type,
                        system=link.system,
                        external_id=link.external_id,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError as exc:
            winner = _owner(connection, link)
            if winner == link.canonical_id:
                return
            raise XrefConflictError(
                f"{link.system} {link.object_type} {link.external_id} was linked concurrently "
                f"to another {link.object_type}",
                detail=str(exc.orig),
                system=link.system,
            ) from exc
        self._history(connection, link, None, changed_by, now)

    def relink(self, link: XrefLink, *, changed_by: str) -> None:
        """A record was re-keyed in its system (e.g. an ERP migration): move the link, keep
        the old id in history."""
        now = self.now()
        with self.engine.begin() as connection:
            old = _current(connection, link)
            if old is None:
                self.link_in(connection, link, changed_by=changed_by)
                return
            connection.execute(
                update(xref)
                .where(
                    xref.c.canonical_id == link.canonical_id,
                    xref.c.object_type == link.object_type,
                    xref.c.system == link.system,
                )
                .values(external_id=link.external_id, updated_at=now)
            )
            self._history(connection, link, old, changed_by, now)

    def _history(
        self,
        connection: Connection,
        link: XrefLink,
        old_external_id: str | None,
        changed_by: str,
        now: datetime,
    ) -> None:
        connection.execute(
            insert(xref_history).values(
                canonical_id=link.canonical_id,
                object_type=link.object_type,
                system=link.system,
                old_external_id=old_external_id,
                new_external_id=link.external_id,
                changed_by=changed_by,
                changed_at=now,
            )
        )

    def history(self, canonical_id: str) -> list[dict[str, object]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(xref_history)
                .where(xref_history.c.canonical_id == canonical_id)
                .order_by(xref_history.c.id)
            )
            return [dict(row._mapping) for row in rows]


def _owner(connection: Connection, link: XrefLink) -> str | None:
    """The canonical id the link's external record belongs to, if any."""
    return connection.execute(
        select(xref.c.canonical_id).where(
            xref.c.system == link.system,
            xref.c.object_type == link.object_type,
            xref.c.external_id == link.external_id,
        )
    ).scalar_one_or_none()


def _current(connection: Connection, link: XrefLink) -> str | None:
    """The external id the link's canonical object already has in that system, if any."""
    return connection.execute(
        select(xref.c.external_id).where(
            xref.c.canonical_id == link.canonical_id,
            xref.c.object_type == link.object_type,
            xref.c.system == link.system,
        )
    ).scalar_one_or_none()
