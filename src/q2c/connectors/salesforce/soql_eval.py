"""Runs a parsed SOQL query against the emulated org, with Salesforce's semantic errors.

Names resolve case-insensitively against the schema and come back in their canonical case;
parent paths follow lookups (``Opportunity.Account.Name``); text compares case-insensitively;
a null field matches ``!= 'x'`` and ``NOT IN`` but no ordering operator, as in SOQL. Wrong
names raise INVALID_FIELD / INVALID_TYPE and a literal of the wrong type raises
INVALID_QUERY_FILTER_OPERATOR, with the messages Salesforce uses.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from q2c.connectors.salesforce.ids import normalize_id
from q2c.connectors.salesforce.schema import (
    NUMBER_TYPES,
    SCHEMA,
    STRING_TYPES,
    FieldDef,
    SObjectDef,
    sobject_def,
)
from q2c.connectors.salesforce.soql import (
    And,
    Comparison,
    Condition,
    CountAll,
    FieldPath,
    Literal,
    Not,
    Or,
    OrderKey,
    Query,
    SubQuery,
)
from q2c.connectors.salesforce.values import to_wire
from q2c.connectors.salesforce.wire import ApiError

if TYPE_CHECKING:
    from q2c.connectors.salesforce.state import Record, SalesforceState

__all__ = ["QueryResult", "run_query"]

_CUSTOM_FIELD_HINT = (
    "If you are attempting to use a custom field, be sure to append the '__c' after the custom "
    "field name. Please reference your WSDL or the describe call for the appropriate names."
)


@dataclass(frozen=True)
class QueryResult:
    sobject: str
    total_size: int
    records: list[dict[str, Any]]


@dataclass(frozen=True)
class _Resolved:
    """A field path resolved to the lookups it walks through and the field it ends on."""

    hops: tuple[FieldDef, ...]
    field: FieldDef


def run_query(
    state: SalesforceState, query: Query, *, version: str, today: date | None = None
) -> QueryResult:
    """Evaluate ``query``; raises ``ApiError`` for unknown names and mistyped filters."""
    return _Executor(state, version, today or datetime.now(UTC).date()).run(query)


class _Executor:
    def __init__(self, state: SalesforceState, version: str, today: date) -> None:
        self.state = state
        self.version = version
        self.today = today

    def run(self, query: Query) -> QueryResult:
        odef = sobject_def(query.sobject)
        if odef is None:
            raise ApiError.one(
                400,
                "INVALID_TYPE",
                f"sObject type '{query.sobject}' is not supported. If you are attempting to use "
                "a custom object, be sure to append the '__c' after the entity name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            )
        with self.state.lock:
            count, records = self._select(odef, query, self._candidates(odef, query.where))
        return QueryResult(odef.name, count, records)

    def _select(
        self, odef: SObjectDef, query: Query, rows: list[Record]
    ) -> tuple[int, list[dict[str, Any]]]:
        plan = [self._plan_item(odef, item) for item in query.select]
        matches = self._compile(odef, query.where) if query.where else None
        order = [(self._resolve(odef, k.field), k) for k in query.order_by]
        selected = [r for r in rows if matches is None or matches(r)]
        if order:
            selected.sort(key=functools.cmp_to_key(self._comparator(order)))
        selected = selected[query.offset or 0 :]
        if query.limit is not None:
            selected = selected[: query.limit]
        if any(isinstance(item, CountAll) for item in query.select):
            return len(selected), []
        return len(selected), [self._project(odef, r, plan) for r in selected]

    def _candidates(self, odef: SObjectDef, where: Condition | None) -> list[Record]:
        """All rows, or just one when the filter pins ``Id = '...'`` (the WHERE still runs)."""
        table = self.state.table(odef.name)
        items = where.items if isinstance(where, And) else (where,)
        for item in items:
            if (
                isinstance(item, Comparison)
                and item.op == "="
                and isinstance(item.value, Literal)
                and [p.casefold() for p in item.field.parts]
                in (["id"], [odef.name.casefold(), "id"])
                and item.value.kind == "string"
            ):
                record = table.get(normalize_id(item.value.value) or "")
                return [record] if record is not None else []
        return list(table.values())

    # --- names --------------------------------------------------------------------------

    def _resolve(self, odef: SObjectDef, path: FieldPath) -> _Resolved:
        parts = list(path.parts)
        if (
            len(parts) > 1
            and parts[0].casefold() == odef.name.casefold()
            and not odef.relationship(parts[0])
        ):
            parts = parts[1:]  # SELECT Account.Name FROM Account is legal SOQL
        hops: list[FieldDef] = []
        current = odef
        for part in parts[:-1]:
            lookup = current.relationship(part)
            if lookup is None:
                raise ApiError.one(
                    400,
                    "INVALID_FIELD",
                    f"Didn't understand relationship '{part}' in field path. If you are "
                    "attempting to use a custom relationship, be sure to append the '__r' after "
                    "the custom relationship name. Please reference your WSDL or the describe "
                    "call for the appropriate names.",
                )
            hops.append(lookup)
            current = SCHEMA[lookup.reference_to[0]]
        final = current.field(parts[-1])
        if final is None:
            raise ApiError.one(
                400,
                "INVALID_FIELD",
                f"No such column '{parts[-1]}' on entity '{current.name}'. {_CUSTOM_FIELD_HINT}",
            )
        return _Resolved(tuple(hops), final)

    def _value(self, record: Record | None, resolved: _Resolved) -> Any:
        for hop in resolved.hops:
            if record is None:
                return None
            parent_id = record.get(hop.name)
            record = self.state.table(hop.reference_to[0]).get(parent_id) if parent_id else None
        return record.get(resolved.field.name) if record is not None else None

    # --- projection -----------------------------------------------------------------------

    def _plan_item(self, odef: SObjectDef, item: FieldPath | CountAll | SubQuery) -> Any:
        if isinstance(item, FieldPath):
            return self._resolve(odef, item)
        if isinstance(item, SubQuery):
            rel = odef.child(item.query.sobject)
            if rel is None:
                raise ApiError.one(
                    400,
                    "INVALID_TYPE",
                    f"Didn't understand relationship '{item.query.sobject}' in FROM part of "
                    "query call. If you are attempting to use a custom relationship, be sure to "
                    "append the '__r' after the custom relationship name.",
                )
            child = SCHEMA[rel.child]
            # validate the sub-query now so errors surface even when no parent matches
            [self._plan_item(child, sub) for sub in item.query.select]
            if item.query.where:
                self._compile(child, item.query.where)
            return (rel, item.query)
        return item

    def _project(self, odef: SObjectDef, record: Record, plan: list[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": self._attributes(odef.name, record["Id"])}
        for item in plan:
            if isinstance(item, _Resolved):
                self._put_path(out, record, item.hops, item.field)
            elif isinstance(item, tuple):
                rel, sub = item
                children = [
                    r
                    for r in self.state.table(rel.child).values()
                    if r.get(rel.field) == record["Id"]
                ]
                count, records = self._select(SCHEMA[rel.child], sub, children)
                out[rel.name] = (
                    {"totalSize": count, "done": True, "records": records} if count else None
                )
        return out

    def _attributes(self, sobject: str, record_id: str) -> dict[str, str]:
        return {
            "type": sobject,
            "url": f"/services/data/{self.version}/sobjects/{sobject}/{record_id}",
        }

    def _put_path(
        self, out: dict[str, Any], record: Record, hops: tuple[FieldDef, ...], final: FieldDef
    ) -> None:
        if not hops:
            out[final.name] = to_wire(final, record.get(final.name))
            return
        hop = hops[0]
        key = hop.relationship_name or hop.name
        parent_id = record.get(hop.name)
        parent = self.state.table(hop.reference_to[0]).get(parent_id) if parent_id else None
        if parent is None:
            out.setdefault(key, None)
            return
        nested = out.get(key)
        if nested is None:
            nested = {"attributes": self._attributes(hop.reference_to[0], parent["Id"])}
            out[key] = nested
        self._put_path(nested, parent, hops[1:], final)

    # --- ordering -------------------------------------------------------------------------

    def _comparator(self, order: list[tuple[_Resolved, OrderKey]]) -> Any:
        def compare(left: Record, right: Record) -> int:
            for resolved, key in order:
                a = _sortable(self._value(left, resolved))
                b = _sortable(self._value(right, resolved))
                if a == b:
                    continue
                nulls_last = key.descending if key.nulls_last is None else key.nulls_last
                if a is None or b is None:
                    first_is_null = a is None
                    return (1 if nulls_last else -1) * (1 if first_is_null else -1)
                result = -1 if a < b else 1
                return -result if key.descending else result
            return 0

        return compare

    # --- filtering ------------------------------------------------------------------------

    def _compile(self, odef: SObjectDef, cond: Condition) -> Any:
        if isinstance(cond, And):
            parts = [self._compile(odef, c) for c in cond.items]
            return lambda r: all(p(r) for p in parts)
        if isinstance(cond, Or):
            parts = [self._compile(odef, c) for c in cond.items]
            return lambda r: any(p(r) for p in parts)
        if isinstance(cond, Not):
            inner = self._compile(odef, cond.item)
            return lambda r: not inner(r)
        return self._comparison(odef, cond)

    def _comparison(self, odef: SObjectDef, cmp: Comparison) -> Any:
        resolved = self._resolve(odef, cmp.field)
        fdef = resolved.field
        literals = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
        values = [self._literal_value(fdef, lit, cmp.op) for lit in literals]
        op = cmp.op
        if op == "LIKE":
            pattern = _like(str(values[0]))
            return lambda r: _matches_like(pattern, self._value(r, resolved))
        if op in ("IN", "NOT IN"):
            wanted = [_key(v) for v in values]
            negate = op == "NOT IN"
            return lambda r: (_key(self._value(r, resolved)) in wanted) != negate
        target = values[0]
        return lambda r: _compare(op, self._value(r, resolved), target)

    def _literal_value(self, fdef: FieldDef, lit: Literal, op: str) -> Any:
        if lit.kind == "null":
            return None
        kind = fdef.type
        ok = (
            (kind in STRING_TYPES and lit.kind == "string")
            or (kind in ("id", "reference") and lit.kind == "string")
            or (kind in NUMBER_TYPES and lit.kind == "number")
            or (kind == "boolean" and lit.kind == "boolean" and op in ("=", "!="))
            or (kind == "date" and lit.kind in ("date", "relative"))
            or (kind == "datetime" and lit.kind in ("datetime", "relative"))
        )
        if op == "LIKE" and kind not in STRING_TYPES:
            ok = False
        if not ok:
            expected = {"datetime": "dateTime"}.get(kind, kind)
            message = (
                f"value of filter criterion for field '{fdef.name}' must be of type {expected}"
            )
            if lit.kind == "string":
                message += " and should not be enclosed in quotes"
            raise ApiError.one(400, "INVALID_QUERY_FILTER_OPERATOR", message)
        if kind in ("id", "reference"):
            normalized = normalize_id(lit.value)
            if normalized is None:
                raise ApiError.one(
                    400, "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {lit.value}"
                )
            return normalized
        if lit.kind == "relative":
            return self._relative_range(lit.value, as_datetime=kind == "datetime")
        return lit.value

    def _relative_range(self, spec: tuple[str, int], *, as_datetime: bool) -> _Range:
        word, days = spec
        today = self.today
        start, end = {
            "TODAY": (today, today),
            "YESTERDAY": (today - timedelta(days=1), today - timedelta(days=1)),
            "TOMORROW": (today + timedelta(days=1), today + timedelta(days=1)),
            "LAST_N_DAYS": (today - timedelta(days=days), today),
            "NEXT_N_DAYS": (today + timedelta(days=1), today + timedelta(days=days)),
        }[word]
        return _Range(start, end)


@dataclass(frozen=True)
class _Range:
    """A relative date literal: whole days from ``start`` to ``end`` inclusive."""

    start: date
    end: date


def _day(value: Any) -> date:
    return value.astimezone(UTC).date() if isinstance(value, datetime) else value


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _compare(op: str, value: Any, target: Any) -> bool:
    if target is None:
        return (value is None) == (op == "=") if op in ("=", "!=") else False
    if value is None:
        return op == "!="
    if isinstance(target, _Range):
        day = _day(value)
        inside = target.start <= day <= target.end
        if op in ("=", "!="):
            return inside == (op == "=")
        bound = target.start if op in ("<", ">=") else target.end
        return bool(_OPS[op](day, bound))
    return bool(_OPS[op](_sortable(value), _sortable(target)))


def _sortable(value: Any) -> Any:
    if isinstance(value, str):
        return value.casefold()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return Decimal(value)
    return value


def _key(value: Any) -> Any:
    return _sortable(value)


def _like(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _matches_like(pattern: re.Pattern[str], value: Any) -> bool:
    return bool(isinstance(value, str) and pattern.fullmatch(value) is not None)
