"""Value maps: a canonical value (a department, an item, a subsidiary) to a system's own id.

The ``mappings`` section of ``q2c.yaml`` reads canonical value -> legal entity -> system ->
external id, with ``"*"`` for "any legal entity"; a value whose map names systems directly
(``subsidiary: {US01: {netsuite: "1"}}``) is the shorthand for ``"*"``::

    department: {Consulting-US: {US01: {netsuite: "3"}}}
    item: {CONSULT-SR: {"*": {netsuite: "21"}}}
    subsidiary: {US01: {netsuite: "1"}}

A missing mapping is a business fix, not a bug: the error names the value, the system, the
legal entity and the exact ``q2c.yaml`` key to add, so the operator can fix it and replay.
Pure: no I/O; ``with_mapping`` returns a new instance.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from q2c.errors import ConfigError, MappingMissingError

if TYPE_CHECKING:
    from q2c.config import Q2CConfig

__all__ = [
    "ANY_ENTITY",
    "ENTITY_KEYED_DIMENSIONS",
    "MappingEntry",
    "ParsedMappings",
    "ValueMaps",
    "entity_term",
    "parse_mappings",
    "system_display_name",
    "yaml_key",
]

ANY_ENTITY = "*"
ENTITY_KEYED_DIMENSIONS = frozenset({"subsidiary", "tax_nexus"})
"""Dimensions whose canonical value is the legal entity itself: written ``{US01: {erp: id}}``."""

_DISPLAY_NAMES = {
    "salesforce": "Salesforce",
    "netsuite": "NetSuite",
    "hubspot": "HubSpot",
    "stripe": "Stripe",
    "kantata": "Kantata",
    "tryton": "Tryton",
    "crm": "CRM",
    "cpq": "CPQ",
    "psa": "PSA",
    "billing": "billing",
    "erp": "ERP",
}
# what each vendor calls a legal entity, so the message speaks the operator's language
_ENTITY_TERMS = {"netsuite": "subsidiary", "erp": "subsidiary", "tryton": "company"}
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def system_display_name(system: str, vendor: str | None = None) -> str:
    """``netsuite`` -> ``NetSuite``; a second NetSuite named ``ns_uk`` -> ``NetSuite (ns_uk)``."""
    vendor = vendor or system
    name = _DISPLAY_NAMES.get(vendor, vendor)
    return name if system in (vendor, name) else f"{name} ({system})"


def entity_term(system: str, vendor: str | None = None) -> str:
    return _ENTITY_TERMS.get(vendor or system, "legal entity")


def yaml_key(*parts: str | int) -> str:
    """A dotted q2c.yaml key path, quoting parts that are not plain names: ``a."B-1".c``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = part if _PLAIN_KEY.match(part) else '"' + part.replace('"', '\\"') + '"'
        out = f"{out}.{text}" if out else text
    return out


class MappingEntry(NamedTuple):
    dimension: str
    value: str
    legal_entity: str  # a legal entity code, or "*"
    system: str
    external_id: str


@dataclass(frozen=True, slots=True)
class ParsedMappings:
    """Entries read from a ``mappings`` section, where each came from, and what was wrong."""

    entries: list[MappingEntry] = field(default_factory=list)
    locations: list[tuple[str, ...]] = field(default_factory=list)
    problems: list[tuple[tuple[str, ...], str]] = field(default_factory=list)


def _external_id(raw: Any) -> str | None:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return None
    text = str(raw).strip()
    return text or None


def parse_mappings(mappings: Mapping[str, Any]) -> ParsedMappings:
    """Flatten the nested section into entries; shape problems carry their key path."""
    parsed = ParsedMappings()

    def add(loc: tuple[str, ...], entity: str, system: str, raw: Any) -> None:
        external = _external_id(raw)
        if external is None:
            parsed.problems.append((loc, 'external id must be a non-empty string such as "21"'))
            return
        parsed.entries.append(MappingEntry(loc[0], loc[1], entity, system, external))
        parsed.locations.append(loc)

    for dimension, values in mappings.items():
        if not isinstance(values, Mapping):
            parsed.problems.append(((dimension,), "must map canonical values to systems"))
            continue
        for value, targets in values.items():
            loc = (str(dimension), str(value))
            if not isinstance(targets, Mapping) or not targets:
                parsed.problems.append(
                    (loc, 'must map legal entities (or "*") to {system: external id}')
                )
                continue
            nested = [isinstance(t, Mapping) for t in targets.values()]
            if all(nested):
                for entity, systems in targets.items():
                    for system, raw in systems.items():
                        add((*loc, str(entity), str(system)), str(entity), str(system), raw)
            elif not any(nested):
                for system, raw in targets.items():
                    add((*loc, str(system)), ANY_ENTITY, str(system), raw)
            else:
                parsed.problems.append(
                    (loc, "mixes systems and legal entities: write {legal entity: {system: id}}")
                )
    return parsed


class ValueMaps:
    """Lookup of external ids by (dimension, canonical value, legal entity, system).

    A mapping for the exact legal entity wins over the ``"*"`` mapping.
    """

    __slots__ = ("_display", "_table")

    def __init__(
        self, entries: Iterable[MappingEntry] = (), vendors: Mapping[str, str] | None = None
    ) -> None:
        self._table: dict[tuple[str, str, str, str], str] = {
            (e.dimension, e.value, e.legal_entity, e.system): e.external_id for e in entries
        }
        self._display: dict[str, str] = dict(vendors or {})

    @classmethod
    def from_config(cls, source: Q2CConfig | Mapping[str, Any]) -> ValueMaps:
        """From a loaded ``Q2CConfig`` or a raw ``mappings`` section (tests, tools)."""
        if isinstance(source, Mapping):
            parsed = parse_mappings(source)
            if parsed.problems:
                loc, message = parsed.problems[0]
                raise ConfigError(f"q2c.yaml: {yaml_key('mappings', *loc)}: {message}")
            return cls(parsed.entries)
        vendors = {name: system.vendor for name, system in source.systems.items()}
        return cls(source.mapping_entries(), vendors)

    def __len__(self) -> int:
        return len(self._table)

    def __iter__(self) -> Iterator[MappingEntry]:
        for (dimension, value, entity, system), external in sorted(self._table.items()):
            yield MappingEntry(dimension, value, entity, system, external)

    def get(
        self, dimension: str, canonical_value: str, legal_entity: str, system: str
    ) -> str | None:
        table = self._table
        exact = table.get((dimension, canonical_value, legal_entity, system))
        return (
            exact
            if exact is not None
            else table.get((dimension, canonical_value, ANY_ENTITY, system))
        )

    def exact(
        self, dimension: str, canonical_value: str, legal_entity: str, system: str
    ) -> str | None:
        """The id mapped for exactly this key, without falling back to the ``"*"`` entry."""
        return self._table.get((dimension, canonical_value, legal_entity, system))

    def resolve(self, dimension: str, canonical_value: str, legal_entity: str, system: str) -> str:
        """The system's id for the value, or MappingMissingError saying what to add where."""
        found = self.get(dimension, canonical_value, legal_entity, system)
        if found is not None:
            return found
        raise self._missing(dimension, canonical_value, legal_entity, system)

    def canonical_value(
        self, dimension: str, system: str, external_id: str, legal_entity: str | None = None
    ) -> str | None:
        """Reverse lookup for inbound payloads: which canonical value has this external id?"""
        for (dim, value, entity, sys), external in self._table.items():
            if (dim, sys, external) == (dimension, system, external_id) and (
                legal_entity is None or entity in (legal_entity, ANY_ENTITY)
            ):
                return value
        return None

    def with_mapping(
        self,
        dimension: str,
        canonical_value: str,
        legal_entity: str,
        system: str,
        external_id: str,
    ) -> ValueMaps:
        """A copy with one more (or one replaced) mapping: "fix the mapping, then replay"."""
        clone = ValueMaps((), self._display)
        clone._table = {
            **self._table,
            (dimension, canonical_value, legal_entity, system): external_id,
        }
        return clone

    def with_mappings(self, entries: Iterable[MappingEntry]) -> ValueMaps:
        """A copy with these mappings laid over this one's (an entry replaces the same key)."""
        clone = ValueMaps((), self._display)
        clone._table = {
            **self._table,
            **{(e.dimension, e.value, e.legal_entity, e.system): e.external_id for e in entries},
        }
        return clone

    def _missing(
        self, dimension: str, value: str, legal_entity: str, system: str
    ) -> MappingMissingError:
        vendor = self._display.get(system)
        display = system_display_name(system, vendor)
        label = dimension.replace("_", " ").capitalize()
        if dimension in ENTITY_KEYED_DIMENSIONS and value == legal_entity:
            message = f"{label} '{value}' has no {display} mapping"
            key = yaml_key("mappings", dimension, value, system)
        else:
            term = entity_term(system, vendor)
            message = f"{label} '{value}' has no {display} mapping for {term} {legal_entity}"
            key = yaml_key("mappings", dimension, value, legal_entity, system)
        return MappingMissingError(
            message,
            detail=f"no entry for ({dimension!r}, {value!r}, {legal_entity!r}, {system!r}) "
            f'and no "*" entry for any legal entity',
            suggested_fix=f'Add {key}: "<{display} internal id>" to q2c.yaml, then replay.',
            system=system,
            field=dimension,
            context={
                "dimension": dimension,
                "value": value,
                "legal_entity": legal_entity,
                "system": system,
            },
        )
