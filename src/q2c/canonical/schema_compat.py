"""Backward compatibility of two JSON Schemas, judged for producers.

The question asked of every difference: would a payload that was valid against the published
(old) schema still be valid against the new one? If not, the change is *breaking*; if so, it
is *drift* (the published file is merely stale). The walk follows ``$ref`` into ``$defs`` and
pairs the alternatives of ``anyOf``/``oneOf`` by JSON type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["ContractProblem", "Severity", "compare_schemas"]

Severity = Literal["drift", "breaking"]
Schema = dict[str, Any]
_META_KEYS = ("$id", "$schema", "x-q2c-version")


@dataclass(frozen=True, slots=True)
class ContractProblem:
    severity: Severity
    schema: str
    path: str
    message: str

    def describe(self) -> str:
        where = f"{self.schema}.{self.path}" if self.path else self.schema
        return f"{where}: {self.message}"


_UPPER_BOUNDS = ("maxLength", "maxItems", "maxProperties", "maximum", "exclusiveMaximum")
_LOWER_BOUNDS = ("minLength", "minItems", "minProperties", "minimum", "exclusiveMinimum")
_EXACT_CONSTRAINTS = ("pattern", "format", "multipleOf")


def compare_schemas(name: str, old: Schema, new: Schema) -> list[ContractProblem]:
    """Every difference between a published schema and its successor, classified."""
    old_body = {k: v for k, v in old.items() if k not in _META_KEYS}
    new_body = {k: v for k, v in new.items() if k not in _META_KEYS}
    if old_body == new_body:
        return []
    walker = _Walker(name, old_body, new_body)
    walker.compare(old_body, new_body, "")
    if not walker.problems:
        where = _first_difference(old_body, new_body, "") or "(root)"
        walker.problems.append(
            ContractProblem("drift", name, where, "title, description or default changed")
        )
    return walker.problems


class _Walker:
    """Walks a published (old) and a current (new) schema side by side."""

    def __init__(self, name: str, old_root: Schema, new_root: Schema) -> None:
        self.name = name
        self.old_root = old_root
        self.new_root = new_root
        self.problems: list[ContractProblem] = []
        self._seen: set[tuple[str, str]] = set()

    def _add(self, severity: Severity, path: str, message: str) -> None:
        self.problems.append(ContractProblem(severity, self.name, path, message))

    def compare(self, old: Schema, new: Schema, path: str) -> None:
        old, old_ref = _resolve(old, self.old_root)
        new, new_ref = _resolve(new, self.new_root)
        if old_ref and new_ref:
            if (old_ref, new_ref) in self._seen:
                return  # recursive model, or a definition already compared elsewhere
            self._seen.add((old_ref, new_ref))
        old_members, new_members = _members(old), _members(new)
        if len(old_members) == 1 and len(new_members) == 1:
            self._compare_node(old, new, path)
            return
        # a union: pair each old alternative with the new one that takes it over
        new_variants = [_resolve(member, self.new_root)[0] for member in new_members]
        if any(_unconstrained(variant) for variant in new_variants):
            return  # the new schema accepts anything here
        matched: set[int] = set()
        for member in old_members:
            variant = _resolve(member, self.old_root)[0]
            index = _matching_variant(variant, new_variants)
            if index is None:
                self._add("breaking", path, f"no longer accepts {_describe_kind(variant)}")
            else:
                matched.add(index)
                self.compare(member, new_members[index], path)  # raw: keeps $ref tracking
        for index, variant in enumerate(new_variants):
            if index not in matched:
                self._add("drift", path, f"now also accepts {_describe_kind(variant)}")

    def _compare_node(self, old: Schema, new: Schema, path: str) -> None:
        old_types, new_types = _types(old), _types(new)
        if new_types and not _types_accepted(old_types, new_types):
            before = "/".join(sorted(old_types)) or "any"
            self._add(
                "breaking", path, f"type changed from {before} to {'/'.join(sorted(new_types))}"
            )
            return
        if new_types and old_types != new_types:
            after = "/".join(sorted(new_types))
            self._add("drift", path, f"type widened from {'/'.join(sorted(old_types))} to {after}")
        self._compare_enum(old, new, path)
        self._compare_constraints(old, new, path)
        if "object" in old_types or "properties" in old or "properties" in new:
            self._compare_object(old, new, path)
        if isinstance(old.get("items"), dict) or isinstance(new.get("items"), dict):
            self._compare_items(old, new, path)

    def _compare_enum(self, old: Schema, new: Schema, path: str) -> None:
        old_values, new_values = _allowed_values(old), _allowed_values(new)
        if new_values is None:
            return
        if old_values is None:
            self._add("breaking", path, f"now restricted to {sorted(map(str, new_values))}")
            return
        removed = [v for v in old_values if v not in new_values]
        added = [v for v in new_values if v not in old_values]
        if removed:
            self._add("breaking", path, f"enum value(s) removed: {', '.join(map(str, removed))}")
        if added:
            self._add("drift", path, f"enum value(s) added: {', '.join(map(str, added))}")

    def _compare_constraints(self, old: Schema, new: Schema, path: str) -> None:
        for key in _UPPER_BOUNDS:
            self._bound(key, old.get(key), new.get(key), path, tighter=lambda o, n: n < o)
        for key in _LOWER_BOUNDS:
            self._bound(key, old.get(key), new.get(key), path, tighter=lambda o, n: n > o)
        for key in _EXACT_CONSTRAINTS:
            before, after = old.get(key), new.get(key)
            if after is not None and after != before:
                change = "added" if before is None else f"changed from {before!r}"
                self._add("breaking", path, f"{key} {after!r} {change}")
            elif before is not None and after is None:
                self._add("drift", path, f"{key} {before!r} removed")
        if new.get("uniqueItems") and not old.get("uniqueItems"):
            self._add("breaking", path, "uniqueItems added")

    def _bound(self, key: str, old: Any, new: Any, path: str, *, tighter: Any) -> None:
        if new is None:
            if old is not None:
                self._add("drift", path, f"{key} {old} removed")
        elif old is None:
            self._add("breaking", path, f"{key} {new} added")
        elif tighter(old, new):
            self._add("breaking", path, f"{key} tightened from {old} to {new}")
        elif old != new:
            self._add("drift", path, f"{key} relaxed from {old} to {new}")

    def _compare_object(self, old: Schema, new: Schema, path: str) -> None:
        old_props: dict[str, Schema] = old.get("properties", {})
        new_props: dict[str, Schema] = new.get("properties", {})
        old_required = set(old.get("required", []))
        new_required = set(new.get("required", []))
        for prop in old_props:
            if prop not in new_props:
                self._add("breaking", _join(path, prop), "property removed")
            else:
                self.compare(old_props[prop], new_props[prop], _join(path, prop))
                if prop in new_required and prop not in old_required:
                    self._add("breaking", _join(path, prop), "property is now required")
                elif prop in old_required and prop not in new_required:
                    self._add("drift", _join(path, prop), "property is now optional")
        for prop in new_props:
            if prop not in old_props:
                if prop in new_required:
                    self._add("breaking", _join(path, prop), "new required property")
                else:
                    self._add("drift", _join(path, prop), "optional property added")
        self._compare_additional(old, new, path)

    def _compare_additional(self, old: Schema, new: Schema, path: str) -> None:
        before = old.get("additionalProperties", True)
        after = new.get("additionalProperties", True)
        if after is False and before is not False:
            self._add("breaking", path, "additionalProperties false added: unknown keys refused")
        elif before is False and after is not False:
            self._add("drift", path, "unknown keys are now allowed")
        elif isinstance(after, dict) and before is True:
            self._add("breaking", path, "values of additional properties are now constrained")
        elif isinstance(before, dict) and isinstance(after, dict):
            self.compare(before, after, _join(path, "*"))

    def _compare_items(self, old: Schema, new: Schema, path: str) -> None:
        before, after = old.get("items"), new.get("items")
        if isinstance(before, dict) and isinstance(after, dict):
            self.compare(before, after, f"{path}[]")
        elif isinstance(after, dict):
            self._add("breaking", f"{path}[]", "array items are now constrained")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _resolve(node: Schema, root: Schema) -> tuple[Schema, str]:
    """Follow ``$ref`` (``#/$defs/Name``) to its definition; return it and the ref followed."""
    ref = ""
    seen: set[str] = set()
    while isinstance(node, dict) and "$ref" in node and node["$ref"] not in seen:
        ref = node["$ref"]
        seen.add(ref)
        target: Any = root
        for part in ref.removeprefix("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        extra = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **extra}
    return node, ref


def _members(node: Schema) -> list[Schema]:
    """The alternatives a node accepts: the members of ``anyOf``/``oneOf``, or itself."""
    return node.get("anyOf") or node.get("oneOf") or [node]


def _types(node: Schema) -> set[str]:
    declared = node.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return set(declared)
    if "properties" in node:
        return {"object"}
    return set()


def _types_accepted(old: set[str], new: set[str]) -> bool:
    """Is every JSON type the old schema accepted still accepted (integer is a number)?"""
    if not old:
        return not new
    return all(t in new or (t == "integer" and "number" in new) for t in old)


def _allowed_values(node: Schema) -> list[Any] | None:
    if "enum" in node:
        return list(node["enum"])
    if "const" in node:
        return [node["const"]]
    return None


def _kind(node: Schema) -> tuple[str, str]:
    types = "/".join(sorted(_types(node))) or "any"
    return types, node.get("title", "") if "object" in _types(node) else ""


def _describe_kind(node: Schema) -> str:
    types, title = _kind(node)
    return f"{types} {title}".strip()


def _unconstrained(node: Schema) -> bool:
    return not (node.keys() - {"title", "description", "default", "examples"})


def _matching_variant(variant: Schema, candidates: list[Schema]) -> int | None:
    """Index of the new alternative that takes over from an old one: same kind, else wider."""
    for index, candidate in enumerate(candidates):
        if _kind(candidate) == _kind(variant):
            return index
    for index, candidate in enumerate(candidates):
        if _types(variant) and _types_accepted(_types(variant), _types(candidate)):
            return index
    return None


def _first_difference(old: Any, new: Any, path: str) -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            if old.get(key) != new.get(key):
                return _first_difference(old.get(key), new.get(key), _join(path, key))
        return None
    return path if old != new else None
