"""The emulated org's data: records, ids, timestamps, validation, transactions, change events.

``SalesforceState`` is what the REST layer writes through and what tests and the demo seed and
inspect directly. Every write runs the same pipeline a real org runs: field coercion, required
fields, lookups, unique external ids, org automation (derived fields, roll-ups, quote syncing),
validation rules, system timestamps, then a Change Data Capture event. ``atomic()`` gives the
all-or-none behaviour composite requests need: a failed block is rolled back from an undo log.
Thread-safe: one re-entrant lock guards everything, so a test thread may read while the
emulator's event loop thread writes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from q2c.connectors.salesforce import automation
from q2c.connectors.salesforce.changes import change_event
from q2c.connectors.salesforce.ids import KEY_PREFIXES, IdFactory, normalize_id
from q2c.connectors.salesforce.schema import SCHEMA, FieldDef, SObjectDef, sobject_def
from q2c.connectors.salesforce.values import coerce, to_wire
from q2c.connectors.salesforce.wire import ApiError

__all__ = ["Record", "SalesforceState", "ValidationRule"]

Record = dict[str, Any]
SYSTEM_FIELDS = (
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
)


@dataclass(frozen=True)
class ValidationRule:
    """An org validation rule: ``error_when(record)`` true means the save is refused."""

    sobject: str
    name: str
    error_when: Callable[[Record], bool]
    message: str
    field: str | None = None


def _end_before_start(record: Record) -> bool:
    start, end = record.get("Start_Date__c"), record.get("End_Date__c")
    return isinstance(start, date) and isinstance(end, date) and end < start


DEFAULT_RULES = (
    ValidationRule(
        "Opportunity",
        "End_After_Start",
        _end_before_start,
        "End Date must be on or after Start Date.",
        "End_Date__c",
    ),
)


class SalesforceState:
    """An org's records, keyed by sObject then 18-character id, with Salesforce semantics."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        username: str = "integration@q2c.example",
    ) -> None:
        self._lock = threading.RLock()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._ids = IdFactory()
        self.org_id = self._ids.new(KEY_PREFIXES["Organization"])
        self.rules: list[ValidationRule] = list(DEFAULT_RULES)
        self._default_username = username
        self._reset_data()

    # --- lifecycle --------------------------------------------------------------------------

    def _reset_data(self) -> None:
        self._tables: dict[str, dict[str, Record]] = {name: {} for name in SCHEMA}
        self._unique: dict[tuple[str, str], dict[Any, str]] = {}
        self._deleted: dict[str, tuple[str, datetime]] = {}
        self._autonumbers: dict[str, int] = {}
        self._last_stamp = datetime(2000, 1, 1, tzinfo=UTC)
        self._undo: list[Callable[[], None]] | None = None
        self.change_events: list[dict[str, Any]] = []
        self._commit_number = 0
        self.user_id = self._insert_system(
            "User",
            {
                "Username": self._default_username,
                "Name": "Q2C Integration",
                "Email": "integration@q2c.example",
            },
        )

    def reset(self) -> None:
        """Forget every record (the integration user is recreated)."""
        with self._lock:
            self._reset_data()

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def now(self) -> datetime:
        """A system timestamp: millisecond precision, strictly increasing on every call."""
        with self._lock:
            current = self._clock().astimezone(UTC)
            current = current.replace(microsecond=current.microsecond // 1000 * 1000)
            self._last_stamp = max(current, self._last_stamp + timedelta(milliseconds=1))
            return self._last_stamp

    # --- public record API (tests, seeds, demo) ---------------------------------------------

    def insert(self, sobject: str, fields: dict[str, Any]) -> str:
        """Create a record as the integration user; raises ``ApiError`` like the REST API."""
        record_id, _ = self.save(sobject, None, fields)
        return record_id

    def update(self, sobject: str, record_id: str, fields: dict[str, Any]) -> None:
        self.save(sobject, record_id, fields)

    def get(self, sobject: str, record_id: str) -> Record | None:
        with self._lock:
            key = normalize_id(record_id)
            record = self.table(sobject).get(key or "")
            return dict(record) if record is not None else None

    def records(self, sobject: str) -> list[Record]:
        with self._lock:
            return [dict(r) for r in self.table(sobject).values()]

    def find(self, sobject: str, field: str, value: Any) -> list[Record]:
        """Records whose ``field`` equals ``value`` (text compared case-insensitively)."""
        odef = self.definition(sobject)
        fdef = odef.field(field)
        if fdef is None:
            raise ApiError.one(400, "INVALID_FIELD", f"No such column '{field}' on {odef.name}")
        wanted = coerce(fdef, value)
        with self._lock:
            if fdef.unique and wanted is not None:  # unique external ids are indexed
                hit = self._unique.get((odef.name, fdef.name), {}).get(_index_key(wanted))
                return [dict(self._tables[odef.name][hit])] if hit else []
            return [
                dict(r)
                for r in self.table(odef.name).values()
                if _same(fdef, r.get(fdef.name), wanted)
            ]

    def delete(self, sobject: str, record_id: str) -> None:
        odef = self.definition(sobject)
        with self.atomic():
            key = self.existing_id(odef, record_id)
            self._delete(odef, key)

    def next_autonumber(self, sobject: str) -> int:
        """The next value of an object's auto-number field (never reused, like Salesforce)."""
        with self._lock:
            number = self._autonumbers.get(sobject, 0) + 1
            self._autonumbers[sobject] = number
            return number

    def add_validation_rule(self, rule: ValidationRule) -> None:
        with self._lock:
            self.rules.append(rule)

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        """Every record in wire form (what ``GET /__sandbox__/state`` returns)."""
        with self._lock:
            return {
                name: [self.wire(name, r) for r in table.values()]
                for name, table in self._tables.items()
            }

    def wire(self, sobject: str, record: Record) -> dict[str, Any]:
        odef = self.definition(sobject)
        return {n: to_wire(f, record.get(n)) for n, f in odef.fields.items()}

    # --- lookups used by the REST and SOQL layers -------------------------------------------

    def definition(self, sobject: str) -> SObjectDef:
        odef = sobject_def(sobject)
        if odef is None:
            raise ApiError.one(404, "NOT_FOUND", "The requested resource does not exist")
        return odef

    def table(self, sobject: str) -> dict[str, Record]:
        return self._tables[self.definition(sobject).name]

    def by_id(self, record_id: str) -> tuple[str, Record] | None:
        """Any record by id, whatever its object (the key prefix says which)."""
        key = normalize_id(record_id)
        if key is None:
            return None
        for name, prefix in KEY_PREFIXES.items():
            if key.startswith(prefix) and name in self._tables:
                record = self._tables[name].get(key)
                return (name, record) if record is not None else None
        return None

    def deleted_since(self, sobject: str, start: datetime, end: datetime) -> list[dict[str, str]]:
        name = self.definition(sobject).name
        with self._lock:
            return [
                {"id": rid, "deletedDate": when.isoformat()}
                for rid, (obj, when) in self._deleted.items()
                if obj == name and start <= when <= end
            ]

    def existing_id(self, odef: SObjectDef, record_id: str) -> str:
        key = normalize_id(record_id)
        if key is None or not key.startswith(odef.key_prefix):
            raise ApiError.one(
                400,
                "MALFORMED_ID",
                f"{odef.label} ID: id value of incorrect type: {record_id}",
                ["Id"],
            )
        if key in self._deleted:
            raise ApiError.one(404, "ENTITY_IS_DELETED", "entity is deleted")
        if key not in self._tables[odef.name]:
            raise ApiError.one(404, "NOT_FOUND", "The requested resource does not exist")
        return key

    # --- transactions ------------------------------------------------------------------------

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """All writes in the block commit together or, on any exception, not at all."""
        with self._lock:
            outer = self._undo
            self._undo = []
            events_before = len(self.change_events)
            try:
                yield
            except BaseException:
                for undo in reversed(self._undo):
                    undo()
                del self.change_events[events_before:]
                self._undo = outer
                raise
            if outer is not None:
                outer.extend(self._undo)
            self._undo = outer

    def _remember(self, undo: Callable[[], None]) -> None:
        if self._undo is not None:
            self._undo.append(undo)

    def _put(self, sobject: str, record_id: str, record: Record | None) -> None:
        previous = self._tables[sobject].get(record_id)
        self._set(sobject, record_id, record)
        self._remember(lambda: self._set(sobject, record_id, previous))

    def _set(self, sobject: str, record_id: str, record: Record | None) -> None:
        """Store or remove a record, keeping the unique-field index in step."""
        table = self._tables[sobject]
        previous = table.get(record_id)
        for fdef in SCHEMA[sobject].fields.values():
            if not fdef.unique:
                continue
            index = self._unique.setdefault((sobject, fdef.name), {})
            if previous is not None and previous.get(fdef.name) is not None:
                index.pop(_index_key(previous[fdef.name]), None)
            if record is not None and record.get(fdef.name) is not None:
                index[_index_key(record[fdef.name])] = record_id
        if record is None:
            table.pop(record_id, None)
        else:
            table[record_id] = record

    # --- the save pipeline ------------------------------------------------------------------

    def save(
        self,
        sobject: str,
        record_id: str | None,
        fields: dict[str, Any],
        *,
        user_id: str | None = None,
        system: bool = False,
    ) -> tuple[str, bool]:
        """Create (``record_id`` None) or update a record; returns (id, created)."""
        odef = self.definition(sobject)
        with self.atomic():
            key = self.existing_id(odef, record_id) if record_id is not None else None
            old = self._tables[odef.name].get(key) if key else None
            changes = self._coerce(odef, fields, creating=old is None, system=system)
            new: Record = dict(old) if old else self._defaults(odef)
            new.update(changes)
            if old is None:
                key = self._ids.new(odef.key_prefix)
                new["Id"] = key
            assert key is not None
            automation.before_save(self, odef, new, old, changes)
            self._check_required(odef, new, old, changes)
            self._check_references(odef, changes)
            self._check_unique(odef, new, key)
            self._check_rules(odef, new)
            stamp = self.now()
            actor = user_id or self.user_id
            if old is None:
                new.update(CreatedDate=stamp, CreatedById=actor)
            new.update(LastModifiedDate=stamp, LastModifiedById=actor, SystemModstamp=stamp)
            self._put(odef.name, key, new)
            self._emit(odef, key, new, old, actor)
            automation.after_save(self, odef, new, old)
            return key, old is None

    def _insert_system(self, sobject: str, fields: dict[str, Any]) -> str:
        odef = SCHEMA[sobject]
        record = self._defaults(odef)
        record.update({k: coerce(odef.fields[k], v) for k, v in fields.items()})
        key = self._ids.new(odef.key_prefix)
        stamp = self.now()
        record.update(Id=key, CreatedDate=stamp, LastModifiedDate=stamp, SystemModstamp=stamp)
        record.update(CreatedById=key, LastModifiedById=key)
        self._set(sobject, key, record)
        return key

    def _defaults(self, odef: SObjectDef) -> Record:
        record: Record = {}
        for name, fdef in odef.fields.items():
            default = fdef.default
            if default is None and fdef.type == "boolean":
                default = False
            record[name] = coerce(fdef, default) if default is not None else None
        return record

    def _coerce(
        self, odef: SObjectDef, fields: dict[str, Any], *, creating: bool, system: bool
    ) -> Record:
        changes: Record = {}
        refused: list[str] = []
        for raw_name, value in fields.items():
            if raw_name == "attributes":
                continue
            fdef = odef.field(raw_name)
            if fdef is None:
                raise ApiError.one(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{raw_name}' on sobject of type {odef.name}",
                    [raw_name],
                )
            if fdef.type == "id":
                continue  # an Id in the body is ignored; the URL (or absence) decides
            allowed = fdef.createable if creating else fdef.updateable
            if not allowed and not system:
                refused.append(fdef.name)
                continue
            changes[fdef.name] = coerce(fdef, value)
        if refused:
            raise ApiError.one(
                400,
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(refused)}. Please check the "
                "security settings of this field and verify that it is read/write for your "
                "profile or permission set.",
                refused,
            )
        return changes

    def _check_required(
        self, odef: SObjectDef, new: Record, old: Record | None, changes: Record
    ) -> None:
        missing = [
            f.name
            for f in odef.fields.values()
            if f.required and new.get(f.name) is None and (old is None or f.name in changes)
        ]
        if missing:
            raise ApiError.one(
                400,
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )

    def _check_references(self, odef: SObjectDef, changes: Record) -> None:
        for name, value in changes.items():
            fdef = odef.fields[name]
            if fdef.type != "reference" or value is None:
                continue
            target = SCHEMA[fdef.reference_to[0]]
            if not value.startswith(target.key_prefix):
                raise ApiError.one(
                    400,
                    "FIELD_INTEGRITY_EXCEPTION",
                    f"{fdef.label}: id value of incorrect type: {value}",
                    [name],
                )
            if value not in self._tables[target.name]:
                code = (
                    "ENTITY_IS_DELETED" if value in self._deleted else "INVALID_CROSS_REFERENCE_KEY"
                )
                raise ApiError.one(400, code, f"{fdef.label}: invalid cross reference id", [name])

    def _check_unique(self, odef: SObjectDef, new: Record, key: str) -> None:
        for fdef in odef.fields.values():
            value = new.get(fdef.name)
            if not fdef.unique or value is None:
                continue
            other_id = self._unique.get((odef.name, fdef.name), {}).get(_index_key(value))
            if other_id is not None and other_id != key:
                raise ApiError.one(
                    400,
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {fdef.name} duplicates value on record with "
                    f"id: {other_id}",
                    [fdef.name],
                )

    def _check_rules(self, odef: SObjectDef, new: Record) -> None:
        for rule in self.rules:
            if rule.sobject == odef.name and rule.error_when(new):
                raise ApiError.one(
                    400,
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    rule.message,
                    [rule.field] if rule.field else [],
                )

    def _delete(self, odef: SObjectDef, key: str) -> None:
        for rel in odef.children.values():
            if not rel.cascade_delete:
                continue
            for child_id, child in list(self._tables[rel.child].items()):
                if child.get(rel.field) == key:
                    self._delete(SCHEMA[rel.child], child_id)
        old = self._tables[odef.name][key]
        self._put(odef.name, key, None)
        self._deleted[key] = (odef.name, self.now())
        self._remember(lambda: self._forget_deleted(key))
        self._emit(odef, key, None, old, self.user_id)
        automation.after_delete(self, odef, old)

    def _forget_deleted(self, key: str) -> None:
        self._deleted.pop(key, None)

    # --- change data capture ----------------------------------------------------------------

    def _emit(
        self, odef: SObjectDef, key: str, new: Record | None, old: Record | None, actor: str
    ) -> None:
        self._commit_number += 1
        self.change_events.append(
            change_event(
                odef,
                key,
                new,
                old,
                actor=actor,
                stamp=self._last_stamp,
                commit_number=self._commit_number,
                replay_id=len(self.change_events) + 1,
            )
        )


def _same(fdef: FieldDef, left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str) and fdef.type not in ("id", "reference"):
        return left.casefold() == right.casefold()
    return bool(left == right)


def _index_key(value: Any) -> Any:
    """Unique text values collide case-insensitively, as Salesforce's unique external ids do."""
    return value.casefold() if isinstance(value, str) else value
