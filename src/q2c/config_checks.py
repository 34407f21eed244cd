"""Second pass over ``q2c.yaml`` and the wording of every configuration error.

Pydantic checks each section's shape; what it cannot see is how sections refer to each other
(a system named in ``ownership`` must exist, a legal entity named in ``flows`` must be defined)
and the environment (``client_id_env: NS_CLIENT_ID`` must be set). Both passes report
``Issue``s with the exact key path, so an engineer reads ``q2c.yaml:
flows.opportunity_to_project.enabled_for[1]: unknown legal entity 'FR01'`` and knows where
to look. Kept apart from ``q2c.config`` so that module stays the readable schema.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr

from q2c.errors import ConfigError
from q2c.mapping.value_maps import (
    ANY_ENTITY,
    ENTITY_KEYED_DIMENSIONS,
    parse_mappings,
    system_display_name,
    yaml_key,
)

if TYPE_CHECKING:
    from q2c.config import AuthConfig, Q2CConfig, SystemConfig

__all__ = [
    "CANONICAL_OBJECTS",
    "SINGLE_SYSTEM_ROLES",
    "VENDOR_AUTH_FLOWS",
    "Issue",
    "check_config",
    "config_error",
    "issue_from_pydantic",
]

SINGLE_SYSTEM_ROLES = ("crm", "erp")  # at most one system per legal entity, for now
CANONICAL_OBJECTS = (
    "legal_entity", "customer", "contract", "project", "proposal", "rate_card",
    "billing_event", "invoice", "payment", "revenue_schedule", "tax_code", "exchange_rate",
    "item", "dimension_map",
)  # fmt: skip
VENDOR_AUTH_FLOWS: dict[str, tuple[str, ...]] = {
    "salesforce": ("client_credentials", "jwt_bearer"),
    "netsuite": ("m2m", "tba"),
    "hubspot": ("api_key", "client_credentials"),
    "stripe": ("api_key",),
    "kantata": ("client_credentials", "api_key"),
    "tryton": ("password",),
}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem in the file: where (key path parts), what, and a hint for the fix."""

    loc: Loc
    message: str
    kind: str = "invalid"
    hint: str | None = None

    def path(self) -> str:
        return yaml_key(*self.loc) if self.loc else "(top level)"


def config_error(source: str, issues: list[Issue]) -> ConfigError:
    """One ConfigError for all issues: a line each in ``message``, the raw list in ``detail``.

    Inputs are left out of ``detail`` on purpose: a misplaced secret must not reach a log.
    """
    lines = [f"{source}: {issue.path()}: {issue.message}" for issue in issues]
    hints = list(dict.fromkeys(issue.hint for issue in issues if issue.hint))
    detail = [{"loc": list(i.loc), "type": i.kind, "msg": i.message} for i in issues]
    return ConfigError(
        "\n".join(lines),
        detail=json.dumps(detail, indent=2),
        suggested_fix=" ".join(hints) or None,
        field=issues[0].path() if issues else None,
    )


# --- first pass: pydantic errors, reworded -------------------------------------------------


def issue_from_pydantic(
    error: Mapping[str, Any], data: Mapping[str, Any], root: type[BaseModel]
) -> Issue:
    loc = _clean_loc(tuple(error["loc"]), data)
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing":
        return Issue(loc, "required key is missing", kind)
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        key = str(ctx.get("discriminator", "")).strip("'")
        if kind == "union_tag_not_found":
            return Issue((*loc, key), "required key is missing", kind)
        hint = f"Use one of {ctx.get('expected_tags')} for {yaml_key(*loc, key)}."
        return Issue((*loc, key), f"unknown value {ctx.get('tag')!r}", kind, hint)
    if kind == "extra_forbidden":
        return _unknown_key(loc, data, root)
    if kind in _MONEY_PARTS:  # Money validates as a whole; point at the part that is wrong
        loc = (*loc, _MONEY_PARTS[kind])
    return Issue(loc, str(error["msg"]).removeprefix("Value error, "), kind)


_MONEY_PARTS = {"money_amount": "amount", "currency_unknown": "currency"}


def _unknown_key(loc: Loc, data: Mapping[str, Any], root: type[BaseModel]) -> Issue:
    key = str(loc[-1])
    allowed = _allowed_keys(loc[:-1], data, root)
    for suffix, holder in (("_env", "environment variable"), ("_file", "file")):
        if f"{key}{suffix}" in allowed:
            return Issue(
                loc,
                f"secrets are never written in q2c.yaml; use {key}{suffix} to name the "
                f"{holder} that holds it",
                "literal_secret",
            )
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"Did you mean {yaml_key(*loc[:-1], close[0])}?" if close else None
    expected = f"; expected one of: {', '.join(allowed)}" if allowed else ""
    return Issue(loc, f"unknown key{expected}", "extra_forbidden", hint)


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and part < len(node):
        return node[part]
    return None


def _clean_loc(loc: Loc, data: Any) -> Loc:
    """Drop the union tags pydantic inserts (``auth.client_credentials.x`` -> ``auth.x``)."""
    cleaned: list[str | int] = []
    node = data
    for part in loc:
        is_tag = isinstance(node, dict) and part not in node
        if is_tag and part in (node.get("flow"), node.get("kind")):
            continue
        cleaned.append(part)
        node = _child(node, part)
    return tuple(cleaned)


def _allowed_keys(loc: Loc, data: Any, root: type[BaseModel]) -> list[str]:
    """Keys the section at ``loc`` accepts, so a typo can be matched to what was meant."""
    annotation: Any = root
    node = data
    for part in loc:
        model = _model_of(annotation, node)
        if model is not None:
            field = model.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        else:
            args = get_args(_strip(annotation))
            if not args:
                return []
            annotation = args[-1]  # dict[str, X] or list[X]: the values are X
        node = _child(node, part)
    model = _model_of(annotation, node)
    return list(model.model_fields) if model else []


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, type(int | str))


def _strip(annotation: Any) -> Any:
    """Unwrap ``Annotated[...]`` and ``X | None`` down to X."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if _is_union(annotation):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _strip(members[0])
    return annotation


def _model_of(annotation: Any, node: Any) -> type[BaseModel] | None:
    """The model an annotation stands for; a union member is picked by its ``flow``/``kind``."""
    annotation = _strip(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if not _is_union(annotation) or not isinstance(node, dict):
        return None
    for member in map(_strip, get_args(annotation)):
        if not (isinstance(member, type) and issubclass(member, BaseModel)):
            continue
        for tag in ("flow", "kind"):
            field = member.model_fields.get(tag)
            if field is not None and node.get(tag) in get_args(field.annotation):
                return member
    return None


# --- second pass: references between sections, and the environment ------------------------


def check_config(config: Q2CConfig, env: Mapping[str, str], base_dir: Path) -> list[Issue]:
    """Cross-field checks; resolves secrets and mapping entries onto ``config`` as it goes."""
    checker = _Checker(config, env, base_dir)
    checker.run()
    return checker.issues


class _Checker:
    def __init__(self, config: Q2CConfig, env: Mapping[str, str], base_dir: Path) -> None:
        self.config = config
        self.env = env
        self.base_dir = base_dir
        self.issues: list[Issue] = []
        self.entities = [entity.code for entity in config.legal_entities]

    def run(self) -> None:
        self._legal_entities()
        self._store_and_transport()
        for name, system in self.config.systems.items():
            self._system(name, system)
        self._single_system_roles()
        self._ownership()
        self._mappings()
        self._flows()
        self._erp_migration()

    def _add(self, loc: Loc, message: str, kind: str = "invalid", hint: str | None = None) -> None:
        self.issues.append(Issue(loc, message, kind, hint))

    def _entity_ref(self, loc: Loc, code: str, *, wildcard: bool = True) -> None:
        if code in self.entities or (wildcard and code == ANY_ENTITY):
            return
        hint = f"Legal entities defined in q2c.yaml: {', '.join(self.entities)}."
        self._add(loc, f"unknown legal entity {code!r}", "unknown_legal_entity", hint)

    def _system_ref(self, loc: Loc, name: str) -> None:
        if name not in self.config.systems:
            hint = f"Systems defined in q2c.yaml: {', '.join(self.config.systems)}."
            self._add(loc, f"unknown system {name!r}", "unknown_system", hint)

    def _legal_entities(self) -> None:
        seen: set[str] = set()
        for index, entity in enumerate(self.config.legal_entities):
            if entity.code in seen:
                loc = ("legal_entities", index, "code")
                self._add(loc, f"duplicate legal entity {entity.code!r}", "duplicate")
            seen.add(entity.code)

    def _store_and_transport(self) -> None:
        store = self.config.store
        if store.password_env is not None:
            value = self._env(("store", "password_env"), store.password_env, required=True)
            if value is not None:
                store._password = value
        credentials = getattr(self.config.transport, "credentials_file", None)
        if credentials is not None:
            self._file(("transport", "credentials_file"), credentials, required=True)

    # systems --------------------------------------------------------------------------------

    def _system(self, name: str, system: SystemConfig) -> None:
        loc: Loc = ("systems", name)
        if not _NAME.match(name):
            self._add(loc, "system names are lower-case letters, digits and underscores")
        for index, role in enumerate(system.roles):
            if system.roles.index(role) != index:
                self._add((*loc, "roles", index), f"duplicate role {role!r}", "duplicate")
        for index, code in enumerate(system.legal_entities or []):
            self._entity_ref((*loc, "legal_entities", index), code, wildcard=False)
        if system.account_id is not None and system.vendor != "netsuite":
            self._add((*loc, "account_id"), "applies to netsuite systems only")
        if system.auth is not None and system.auth.flow not in VENDOR_AUTH_FLOWS[system.vendor]:
            flows = ", ".join(VENDOR_AUTH_FLOWS[system.vendor])
            message = f"{system.vendor} does not support auth flow {system.auth.flow!r}"
            self._add((*loc, "auth", "flow"), message, hint=f"Use one of: {flows}.")
        if not system.sandbox:
            self._live_system_requirements(loc, system)
        if system.auth is not None:
            self._credentials((*loc, "auth"), system.auth, system.vendor, system.sandbox)

    def _live_system_requirements(self, loc: Loc, system: SystemConfig) -> None:
        sandbox_hint = f"Or set {yaml_key(*loc, 'sandbox')}: true to use the bundled emulator."
        if system.auth is None:
            message = "required for a system that is not a sandbox"
            self._add((*loc, "auth"), message, "missing", sandbox_hint)
        if system.vendor == "netsuite" and system.account_id is None:
            message = 'required for NetSuite (e.g. "1234567" or "1234567_SB1")'
            self._add((*loc, "account_id"), message, "missing", sandbox_hint)
        if system.vendor == "salesforce" and system.base_url is None:
            message = "required for Salesforce (e.g. https://acme.my.salesforce.com)"
            self._add((*loc, "base_url"), message, "missing", sandbox_hint)

    def _credentials(self, loc: Loc, auth: AuthConfig, vendor: str, sandbox: bool) -> None:
        """Resolve every ``*_env``/``*_file`` reference; a sandbox needs none of them."""
        for key, kind, reference in auth.references():
            name = key.rsplit("_", 1)[0]
            if kind == "env":
                value = self._env((*loc, key), reference, required=not sandbox, vendor=vendor)
            else:
                value = self._file((*loc, key), Path(reference), required=not sandbox)
            if value is not None:
                auth._secrets[name] = value  # the companion module fills the private slot

    def _env(
        self, loc: Loc, variable: str, *, required: bool, vendor: str | None = None
    ) -> SecretStr | None:
        value = self.env.get(variable)
        if value:
            return SecretStr(value)
        if required:
            state = "is not set" if value is None else "is empty"
            hint = f"Export {variable} before starting q2c"
            if vendor is not None:
                hint += f" (credentials for {system_display_name(vendor)})"
            self._add(loc, f"environment variable {variable} {state}", "env_missing", hint + ".")
        return None

    def _file(self, loc: Loc, path: Path, *, required: bool) -> SecretStr | None:
        full = path if path.is_absolute() else self.base_dir / path
        try:
            return SecretStr(full.read_text(encoding="utf-8"))
        except OSError as exc:
            if required:
                self._add(loc, f"cannot read file {full}: {exc.strerror}", "file_missing")
            return None

    def _single_system_roles(self) -> None:
        for role in SINGLE_SYSTEM_ROLES:
            clashes: dict[tuple[str, str], list[str]] = {}  # (first, extra) -> legal entities
            for entity in self.entities:
                first, *extras = self.config.systems_with_role(role, entity) or [""]
                for extra in extras:
                    clashes.setdefault((first, extra), []).append(entity)
            for (first, extra), entities in clashes.items():
                if role == "erp" and self._migration_pair(first, extra):
                    continue  # two ERPs in a parallel run: q2c.erp_migration decides
                roles = self.config.systems[extra].roles
                index = next(i for i, held in enumerate(roles) if held == role)
                message = (
                    f"{role} system {first!r} already serves legal entity "
                    f"{', '.join(entities)}; only one {role} system per legal entity is supported"
                )
                hint = f"Limit {yaml_key('systems', extra, 'legal_entities')} to other entities."
                self._add(("systems", extra, "roles", index), message, "conflict", hint)

    def _migration_pair(self, first: str, extra: str) -> bool:
        migration = self.config.erp_migration
        return migration is not None and {first, extra} == {migration.legacy, migration.target}

    def _erp_migration(self) -> None:
        """Both ERPs exist, are ERPs, serve the parallel run's legal entities and have their
        subsidiary mapped, so nothing is discovered at the first posting."""
        migration = self.config.erp_migration
        if migration is None:
            return
        loc: Loc = ("erp_migration",)
        if migration.legacy == migration.target:
            message = f"legacy and target are both {migration.legacy!r}; name two ERP systems"
            self._add((*loc, "target"), message, "conflict")
            return
        for key in ("legacy", "target"):
            name = getattr(migration, key)
            if name not in self.config.systems:
                self._system_ref((*loc, key), name)
                continue
            if "erp" not in self.config.systems[name].roles:
                message = (
                    f"system {name!r} is not an ERP (its roles: "
                    f"{', '.join(self.config.systems[name].roles)}); a parallel run needs two ERPs"
                )
                hint = f"Add erp to {yaml_key('systems', name, 'roles')}."
                self._add((*loc, key), message, "not_an_erp", hint)
        if any(issue.loc[:1] == loc for issue in self.issues):
            return  # the systems themselves are wrong: checking entities would only add noise
        vendor = self.config.systems[migration.legacy].vendor
        if self.config.systems[migration.target].vendor == vendor:
            message = (
                f"legacy and target are both {system_display_name(vendor)} systems; a parallel "
                "run needs two different ERPs (q2c files each connector's ids under its vendor)"
            )
            self._add((*loc, "target"), message, "conflict")
            return
        for index, code in enumerate(migration.legal_entities):
            where: Loc = (*loc, "legal_entities", index)
            if code not in self.entities:
                self._entity_ref(where, code, wildcard=False)
                continue
            for name in (migration.legacy, migration.target):
                if not self.config.systems[name].serves(code):
                    message = f"system {name!r} does not serve legal entity {code!r}"
                    hint = f"Add {code} to {yaml_key('systems', name, 'legal_entities')}."
                    self._add(where, message, "not_served", hint)
                elif not self._subsidiary_mapped(code, name):
                    display = system_display_name(name, self.config.systems[name].vendor)
                    message = (
                        f"legal entity {code!r} has no {display} subsidiary mapping; the "
                        f"parallel run posts {code}'s documents to {display} too"
                    )
                    hint = f"Add {yaml_key('mappings', 'subsidiary', code, name)}: <id>."
                    self._add(where, message, "mapping_missing", hint)

    def _subsidiary_mapped(self, legal_entity: str, system: str) -> bool:
        for entry in parse_mappings(self.config.mappings).entries:
            if (entry.dimension, entry.value, entry.system) == ("subsidiary", legal_entity, system):
                return True
        return False

    # rules ----------------------------------------------------------------------------------

    def _ownership(self) -> None:
        for obj, rule in self.config.ownership.items():
            if obj not in CANONICAL_OBJECTS:
                close = difflib.get_close_matches(obj, CANONICAL_OBJECTS, n=1)
                hint = f"Did you mean {close[0]!r}?" if close else None
                message = (
                    f"unknown canonical object; expected one of: {', '.join(CANONICAL_OBJECTS)}"
                )
                self._add(("ownership", obj), message, "unknown_object", hint)
            for action in ("create", "update"):
                for index, name in enumerate(getattr(rule, action) or []):
                    self._system_ref(("ownership", obj, action, index), name)

    def _mappings(self) -> None:
        for dimension in self.config.mappings:
            if not _NAME.match(dimension):
                self._add(("mappings", dimension), "dimension names are lower-case, like item")
        parsed = parse_mappings(self.config.mappings)
        for loc, message in parsed.problems:
            self._add(("mappings", *loc), message, "mapping_shape")
        for entry, loc in zip(parsed.entries, parsed.locations, strict=True):
            full: Loc = ("mappings", *loc)
            if entry.dimension in ENTITY_KEYED_DIMENSIONS:
                self._entity_ref(full[:3], entry.value, wildcard=False)
            if len(loc) == 4:  # {value: {legal entity: {system: id}}}
                self._entity_ref(full[:4], entry.legal_entity)
            self._system_ref(full, entry.system)
        self.config._entries = tuple(parsed.entries)

    def _flows(self) -> None:
        for flow in type(self.config.flows).model_fields:
            settings = getattr(self.config.flows, flow)
            loc: Loc = ("flows", flow)
            for key in ("enabled_for", "shadow_for"):
                for index, code in enumerate(getattr(settings, key)):
                    self._entity_ref((*loc, key, index), code)
            for index, code in enumerate(settings.shadow_for):
                if code in settings.enabled_for:
                    message = f"legal entity {code!r} is both live (enabled_for) and in shadow mode"
                    self._add((*loc, "shadow_for", index), message, "conflict")
            retry = settings.retry
            if retry.max_seconds < retry.initial_seconds:
                message = f"{retry.max_seconds} is below initial_seconds {retry.initial_seconds}"
                self._add((*loc, "retry", "max_seconds"), message)
