"""System-of-record rules: which systems may create or update each canonical object.

Ownership is configuration (``ownership`` in ``q2c.yaml``), not code. A write by a system
that does not own the object is refused with an OwnershipError a finance operator can act on
("NetSuite owns customer records; salesforce may not update them"). Objects the file does not
mention fall back to the design's defaults by role when the whole config is given (customer
-> ERP, proposal -> CPQ, project -> PSA else ERP, ...); with only the raw section, an object
without a rule has no writer at all: fail closed. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from q2c.errors import ConfigError, OwnershipError
from q2c.mapping.value_maps import system_display_name, yaml_key

if TYPE_CHECKING:
    from q2c.config import Q2CConfig

__all__ = ["DEFAULT_OWNER_ROLES", "Action", "OwnershipRules"]

Action = Literal["create", "update"]
_ACTIONS: tuple[Action, ...] = get_args(Action)

DEFAULT_OWNER_ROLES: dict[str, tuple[str, ...]] = {
    # object -> roles in order of preference: the first role some system plays owns it
    "legal_entity": ("erp",),
    "customer": ("erp",),
    "proposal": ("cpq", "crm"),
    "rate_card": ("cpq", "billing"),
    "project": ("psa", "erp"),
    "contract": ("billing", "erp"),
    "billing_event": ("psa",),
    "invoice": ("billing", "erp"),
    "payment": ("billing", "erp"),
    "revenue_schedule": ("erp",),
    "tax_code": ("erp",),
    "exchange_rate": ("erp",),
    "item": ("erp",),
    "dimension_map": ("erp",),
}


def _names(systems: Iterable[str], display: Mapping[str, str]) -> str:
    names = [system_display_name(s, display.get(s)) for s in systems]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


@dataclass(frozen=True, slots=True)
class OwnershipRules:
    """``writers[(object_type, action)]`` is the set of systems allowed to do it."""

    writers: Mapping[tuple[str, Action], frozenset[str]]
    vendors: Mapping[str, str]

    @classmethod
    def from_config(cls, source: Q2CConfig | Mapping[str, Any]) -> OwnershipRules:
        """From a loaded ``Q2CConfig`` (with role defaults) or a raw ``ownership`` section.

        In a rule, ``update`` defaults to the ``create`` list: whoever creates also updates.
        """
        if isinstance(source, Mapping):
            return cls(_rules_from_section(source), {})
        vendors = {name: system.vendor for name, system in source.systems.items()}
        writers = _defaults_by_role({n: s.roles for n, s in source.systems.items()})
        section = {
            obj: {"create": rule.create, "update": rule.updaters}
            for obj, rule in source.ownership.items()
        }
        writers.update(_rules_from_section(section))
        return cls(writers, vendors)

    def owners(self, object_type: str, action: Action) -> tuple[str, ...]:
        return tuple(sorted(self.writers.get((object_type, action), frozenset())))

    def allows(self, object_type: str, system: str, action: Action) -> bool:
        return system in self.writers.get((object_type, action), frozenset())

    def check(self, object_type: str, system: str, action: Action) -> None:
        """Refuse a write the rules do not allow, naming who does own the object."""
        if action not in _ACTIONS:
            raise ValueError(f"action must be one of {_ACTIONS}, got {action!r}")
        if self.allows(object_type, system, action):
            return
        owners = self.owners(object_type, action)
        noun = object_type.replace("_", " ")
        rule_key = yaml_key("ownership", object_type, action)
        if owners:
            verb = "owns" if len(owners) == 1 else "own"
            message = (
                f"{_names(owners, self.vendors)} {verb} {noun} records; "
                f"{system} may not {action} them"
            )
            fix = (
                f"Make this change in {_names(owners, self.vendors)}, or add {system} to "
                f"{rule_key} in q2c.yaml if it should be allowed to {action} {noun} records."
            )
        else:
            message = f"no system may {action} {noun} records; {system} may not {action} them"
            fix = f"Add {rule_key}: [{system}] to q2c.yaml if {system} owns {noun} records."
        raise OwnershipError(
            message,
            detail=f"{system} attempted {action} of {object_type}; allowed: {list(owners)}",
            suggested_fix=fix,
            system=system,
            field=object_type,
            context={
                "object_type": object_type,
                "system": system,
                "action": action,
                "owners": list(owners),
            },
        )


def _rules_from_section(section: Mapping[str, Any]) -> dict[tuple[str, Action], frozenset[str]]:
    writers: dict[tuple[str, Action], frozenset[str]] = {}
    for object_type, rule in section.items():
        if not isinstance(rule, Mapping) or set(rule) - set(_ACTIONS):
            raise ConfigError(
                f"q2c.yaml: {yaml_key('ownership', object_type)}: "
                "expected {create: [systems], update: [systems]}"
            )
        create = frozenset(rule.get("create") or ())
        update = rule.get("update")
        writers[(object_type, "create")] = create
        writers[(object_type, "update")] = create if update is None else frozenset(update)
    return writers


def _defaults_by_role(
    roles: Mapping[str, Iterable[str]],
) -> dict[tuple[str, Action], frozenset[str]]:
    writers: dict[tuple[str, Action], frozenset[str]] = {}
    for object_type, preferred in DEFAULT_OWNER_ROLES.items():
        for role in preferred:
            holders = frozenset(name for name, held in roles.items() if role in held)
            if holders:
                for action in _ACTIONS:
                    writers[(object_type, action)] = holders
                break
    return writers
