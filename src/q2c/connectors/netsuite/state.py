"""The emulated NetSuite account's data: records, internal ids, numbering and the SuiteQL mirror.

``NetSuiteState`` is what the record service reads and writes, and what tests and the demo
use to look inside the account (``records``, ``find_by_external_id``) or to seed it
(``insert``). It applies NetSuite's rules on every write: references must point at existing
records, mandatory fields must be present, an external id is unique per record type, entity
numbers are unique, updates merge body fields and append sublist lines unless the sublist is
named in ``replace``. The AR and GL transactions (invoice, customer payment, journal entry)
also go through the posting rules of ``ledger.py``: tax and totals computed, payments applied
to invoices, unbalanced journals refused. One re-entrant lock makes it safe to share between
the emulator's event loop and test threads.

Per-write work is proportional to the record written: external ids and entity numbers are
indexed, so a few hundred invoices and payments post as fast as the first ones.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any

from q2c.connectors.netsuite.ledger import Ledger, Posting
from q2c.connectors.netsuite.records import check_required, derive, normalize_body
from q2c.connectors.netsuite.schema import REGISTRY, RecordType, record_type
from q2c.connectors.netsuite.suiteql import SuiteQLMirror
from q2c.connectors.netsuite.wire import NetSuiteApiError

__all__ = ["NetSuiteState"]

Record = dict[str, Any]

_ID_SPACE_START = {"entity": 1000, "transaction": 5000, "item": 200, "account": 100}


def _utc_now() -> datetime:
    return datetime.now(UTC)


class NetSuiteState:
    """Thread-safe in-memory NetSuite account."""

    def __init__(self, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self._mirror = SuiteQLMirror()
        self._ledger = Ledger(self._raw, self._today)
        self._reset_unlocked()

    # --- inspection and seeding (tests, demo, admin endpoints) -------------------------------

    def insert(self, type_name: str, fields: Mapping[str, Any]) -> str:
        """Create a record as the record service would (same checks); returns its id."""
        return self.create(type_name, dict(fields))

    def get(self, type_name: str, record_id: str) -> Record | None:
        with self._lock:
            record = self._table(type_name).get(str(record_id))
            return copy.deepcopy(record) if record is not None else None

    def records(self, type_name: str) -> list[Record]:
        with self._lock:
            return [copy.deepcopy(r) for r in self._table(type_name).values()]

    def find_by_external_id(self, type_name: str, external_id: str) -> Record | None:
        with self._lock:
            record_id = self._external_id_owner(type_name, external_id)
            return self.get(type_name, record_id) if record_id else None

    def count(self, type_name: str, *, external_id: str | None = None) -> int:
        with self._lock:
            if external_id is None:
                return len(self._table(type_name))
            return int(
                self._external_id_owner(record_type(type_name).name, external_id) is not None
            )

    def reset(self) -> None:
        with self._lock:
            self._reset_unlocked()

    def snapshot(self) -> dict[str, list[Record]]:
        with self._lock:
            return {name: self.records(name) for name in REGISTRY if self._records[name]}

    # --- record service operations ------------------------------------------------------------

    def create(self, type_name: str, body: Any, *, external_id: str | None = None) -> str:
        rt = record_type(type_name)
        with self._lock:
            values = normalize_body(rt, body, self.resolve)
            record: Record = {k: v for k, v in values.items() if v is not None}
            if external_id is not None:
                record["externalId"] = external_id
            self._check_external_id(rt, record.get("externalId"), None)
            if rt.number_field and not record.get(rt.number_field):
                record[rt.number_field] = self._next_number(rt)
            self._check_number(rt, record, None)
            check_required(rt, record)
            derive(rt, record)
            posting = self._ledger.check(rt.name, record, None)
            now = self._stamp()
            record_id = self._next_id(rt)
            record["id"] = record_id
            record["dateCreated"] = record["lastModifiedDate"] = now
            self._store(rt, record_id, None, record)
            self._book(record_id, posting)
            return record_id

    def update(
        self, type_name: str, record_id: str, body: Any, *, replace: Collection[str] = ()
    ) -> None:
        rt = record_type(type_name)
        with self._lock:
            current = self._require(rt, record_id)
            values = normalize_body(rt, body, self.resolve)
            merged = copy.deepcopy(current)
            for name, value in values.items():
                if value is None:
                    merged.pop(name, None)
                elif rt.fields.get(name) is not None and rt.fields[name].kind == "sublist":
                    merged[name] = _merge_lines(merged.get(name) or [], value, name in replace)
                else:
                    merged[name] = value
            self._check_external_id(rt, merged.get("externalId"), record_id)
            self._check_number(rt, merged, record_id)
            check_required(rt, merged)
            derive(rt, merged)
            posting = self._ledger.check(rt.name, merged, record_id)
            merged["lastModifiedDate"] = self._stamp()
            self._store(rt, record_id, current, merged)
            self._book(record_id, posting)

    def upsert(
        self, type_name: str, external_id: str, body: Any, *, replace: Collection[str] = ()
    ) -> tuple[str, bool]:
        """Create or update the record with this external id; returns (id, created)."""
        rt = record_type(type_name)
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k != "externalId"}
        with self._lock:
            existing = self._external_id_owner(rt.name, external_id)
            if existing is None:
                return self.create(rt.name, body, external_id=external_id), True
            self.update(rt.name, existing, body, replace=replace)
            return existing, False

    def delete(self, type_name: str, record_id: str) -> None:
        rt = record_type(type_name)
        with self._lock:
            self._require(rt, record_id)
            if self._has_dependents(rt.name, record_id):
                raise NetSuiteApiError(
                    400,
                    "USER_ERROR",
                    "This record cannot be deleted because it has dependent records.",
                )
            record = self._records[rt.name].pop(record_id)
            self._unindex(rt, record_id, record)
            self._mirror.remove(rt.name, record_id)
            if rt.name == "customerPayment":
                self._settle(self._ledger.release(record_id))

    def read(self, type_name: str, record_id: str) -> Record:
        rt = record_type(type_name)
        with self._lock:
            return copy.deepcopy(self._require(rt, record_id))

    def id_for_external_id(self, type_name: str, external_id: str) -> str:
        rt = record_type(type_name)
        with self._lock:
            record_id = self._external_id_owner(rt.name, external_id)
        if record_id is None:
            raise _nonexistent()
        return record_id

    def page(self, type_name: str, limit: int, offset: int) -> tuple[list[str], int]:
        rt = record_type(type_name)
        with self._lock:
            ids = sorted(self._records[rt.name], key=int)
        return ids[offset : offset + limit], len(ids)

    def resolve(self, targets: tuple[str, ...], ref: Mapping[str, Any]) -> str | None:
        """Internal id of the referenced record, if it exists in one of ``targets``."""
        with self._lock:
            if ref.get("id") is not None:
                wanted = str(ref["id"])
                return wanted if any(wanted in self._records[t] for t in targets) else None
            external_id = ref.get("externalId")
            for target in targets:
                found = self._external_id_owner(target, str(external_id))
                if found is not None:
                    return found
            return None

    def describe_ref(self, targets: tuple[str, ...], record_id: str) -> tuple[str, str] | None:
        """(record type, refName) of a referenced record: what a GET shows for a reference."""
        with self._lock:
            for target in targets:
                record = self._records[target].get(record_id)
                if record is not None:
                    return target, str(record.get(REGISTRY[target].display_field) or "")
            return None

    def query(self, suiteql: Any) -> list[dict[str, str]]:
        with self._lock:
            return self._mirror.run(suiteql)

    # --- internals ---------------------------------------------------------------------------

    def _reset_unlocked(self) -> None:
        self._records: dict[str, dict[str, Record]] = {name: {} for name in REGISTRY}
        self._sequences: dict[str, int] = {}
        self._numbers: dict[str, int] = {}
        # indexes kept in step with _records: type -> external id / number -> internal id
        self._by_external_id: dict[str, dict[str, str]] = {name: {} for name in REGISTRY}
        self._by_number: dict[str, dict[str, str]] = {name: {} for name in REGISTRY}
        self._ledger.clear()
        self._mirror.clear()

    def _raw(self, type_name: str, record_id: str) -> Record | None:
        """The stored record itself, for the posting rules (called under the lock)."""
        table = self._records.get(type_name)
        return table.get(str(record_id)) if table is not None else None

    def _today(self) -> date:
        return self._clock().astimezone(UTC).date()

    def _store(self, rt: RecordType, record_id: str, old: Record | None, new: Record) -> None:
        if old is not None:
            self._unindex(rt, record_id, old)
        self._records[rt.name][record_id] = new
        external_id = new.get("externalId")
        if external_id is not None:
            self._by_external_id[rt.name][str(external_id)] = record_id
        number = new.get(rt.number_field) if rt.number_field else None
        if number:
            self._by_number[rt.name].setdefault(str(number), record_id)
        self._mirror.put(rt.name, new)

    def _unindex(self, rt: RecordType, record_id: str, record: Record) -> None:
        external_id = record.get("externalId")
        key = str(external_id)
        if external_id is not None and self._by_external_id[rt.name].get(key) == record_id:
            del self._by_external_id[rt.name][key]
        number = record.get(rt.number_field) if rt.number_field else None
        if number and self._by_number[rt.name].get(str(number)) == record_id:
            del self._by_number[rt.name][str(number)]

    def _book(self, record_id: str, posting: Posting | None) -> None:
        if posting is not None:
            self._settle(self._ledger.book(record_id, posting))

    def _settle(self, invoice_ids: Collection[str]) -> None:
        """Bring invoices a payment touched up to date: amount paid, remaining, status."""
        stamp = self._stamp()
        for invoice_id in invoice_ids:
            invoice = self._records["invoice"].get(invoice_id)
            if invoice is None:
                continue
            self._ledger.settle(invoice, invoice_id)
            invoice["lastModifiedDate"] = stamp
            self._mirror.put("invoice", invoice)

    def _table(self, type_name: str) -> dict[str, Record]:
        return self._records[record_type(type_name).name]

    def _require(self, rt: RecordType, record_id: str) -> Record:
        record = self._records[rt.name].get(str(record_id))
        if record is None:
            raise _nonexistent()
        return record

    def _stamp(self) -> str:
        return self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _next_id(self, rt: RecordType) -> str:
        current = self._sequences.get(rt.id_space, _ID_SPACE_START.get(rt.id_space, 0))
        self._sequences[rt.id_space] = current + 1
        return str(current + 1)

    def _next_number(self, rt: RecordType) -> str:
        taken = self._by_number[rt.name]
        number = self._numbers.get(rt.name, rt.number_start)
        while rt.number_format.format(number) in taken:
            number += 1
        self._numbers[rt.name] = number + 1
        return rt.number_format.format(number)

    def _external_id_owner(self, type_name: str, external_id: str) -> str | None:
        return self._by_external_id[type_name].get(str(external_id))

    def _check_external_id(self, rt: RecordType, external_id: Any, own_id: str | None) -> None:
        if external_id is None:
            return
        owner = self._external_id_owner(rt.name, external_id)
        if owner is not None and owner != own_id:
            what = "entity" if rt.duplicate_external_id_code == "DUP_ENTITY" else "record"
            raise NetSuiteApiError(
                400,
                rt.duplicate_external_id_code,
                f"This {what} already exists: a {rt.label.lower()} with external ID "
                f"'{external_id}' exists (internal ID {owner}).",
                path="externalId",
            )

    def _check_number(self, rt: RecordType, record: Record, own_id: str | None) -> None:
        if not rt.number_field or not rt.duplicate_number_code:
            return
        number = record.get(rt.number_field)
        if number is None:
            return
        owner = self._by_number[rt.name].get(str(number))
        if owner is not None and owner != own_id:
            detail = (
                "A customer record with this ID already exists. You must enter a unique "
                "customer ID for each record you create."
                if rt.duplicate_number_code == "UNIQUE_CUST_ID_REQD"
                else f"This entity already exists: '{number}' is the ID of another "
                f"{rt.label.lower()}."
            )
            raise NetSuiteApiError(400, rt.duplicate_number_code, detail, path=rt.number_field)

    def _has_dependents(self, type_name: str, record_id: str) -> bool:
        return any(
            type_name in targets and ref_id == record_id
            for rt in REGISTRY.values()
            for record in self._records[rt.name].values()
            for targets, ref_id in _references(rt, record)
        )


def _references(rt: RecordType, record: Record) -> Iterator[tuple[tuple[str, ...], str]]:
    """(possible target types, internal id) of every reference a record holds."""
    for name, spec in rt.fields.items():
        value = record.get(name)
        if spec.kind == "ref" and isinstance(value, dict):
            yield spec.targets, value["id"]
        elif spec.kind == "sublist" and isinstance(value, list):
            for line in value:
                for line_name, line_spec in spec.lines.items():
                    ref = line.get(line_name)
                    if line_spec.kind == "ref" and isinstance(ref, dict):
                        yield line_spec.targets, ref["id"]


def _merge_lines(current: list[Record], incoming: list[Record], replace: bool) -> list[Record]:
    """NetSuite's sublist update: keyed lines (``line``) are updated in place; new lines are
    appended, or, with ``?replace=<sublist>``, become the whole sublist."""
    by_line = {line.get("line"): line for line in current}
    result: list[Record] = [] if replace else [copy.deepcopy(line) for line in current]
    positions = {line.get("line"): i for i, line in enumerate(result)}
    for line in incoming:
        key = line.get("line")
        if key is not None and key in by_line:
            merged = {**by_line[key], **line}
            merged = {k: v for k, v in merged.items() if v is not None}
            if key in positions:
                result[positions[key]] = merged
            else:
                result.append(merged)
        else:
            result.append({k: v for k, v in line.items() if v is not None and k != "line"})
    return result


def _nonexistent() -> NetSuiteApiError:
    return NetSuiteApiError(
        404,
        "NONEXISTENT_ID",
        "The record instance does not exist. Provide a valid record instance ID.",
    )
