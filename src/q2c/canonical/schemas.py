"""Published contracts: JSON Schema for every canonical model, event payload and the envelope.

Other teams build against ``contracts/v<N>/*.json``, not against our Python classes, so a
change to a model is a change to a published promise. ``check_contracts`` compares the models
as they are now with the newest committed version and sorts every difference into:

- **drift**: backward compatible (an optional property added, a limit relaxed, a description
  edited). The committed files are stale; ``q2c contracts generate`` refreshes them.
- **breaking**: an existing producer's payload could now be refused (a property removed or
  retyped, a new required property, an enum value removed, a tighter constraint, unknown keys
  newly refused). Refused unless the new schemas go to a new version, ``contracts/v<N+1>/``.

Compatibility is judged for producers (validation mode): "would a payload that was valid
against the published schema still be valid?". The comparison walks both schemas, following
``$ref`` into ``$defs``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from q2c.canonical import models
from q2c.canonical.base import SCHEMA_VERSION
from q2c.canonical.events import INBOUND_TYPES, OUTBOUND_TYPES, CloudEvent
from q2c.canonical.schema_compat import ContractProblem, compare_schemas
from q2c.errors import FatalError

__all__ = [
    "CONTRACTS_BASE_URL",
    "CURRENT_VERSION",
    "INDEX_FILE",
    "ContractBreakingError",
    "ContractProblem",
    "ContractReport",
    "check_contracts",
    "compare_schemas",
    "contract_models",
    "contracts_check_exit_code",
    "generate_index",
    "generate_schemas",
    "render_contracts",
    "write_contracts",
]

CURRENT_VERSION = SCHEMA_VERSION
CONTRACTS_BASE_URL = "https://q2c.dev/contracts"
INDEX_FILE = "index.json"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_VERSION_DIR = re.compile(r"^v(\d+)$")

Schema = dict[str, Any]


class ContractBreakingError(FatalError):
    """Writing would silently replace a published contract with an incompatible one."""

    default_fix = "Publish a new contract version instead of editing the published one."


# --- generation ----------------------------------------------------------------------------


def contract_models() -> dict[str, type[BaseModel]]:
    """Every published model by schema name: canonical objects, event payloads, the envelope."""
    found: dict[str, type[BaseModel]] = {}
    for name in models.__all__:
        candidate = getattr(models, name)
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            found[name] = candidate
    for model in (*INBOUND_TYPES.values(), *OUTBOUND_TYPES.values()):
        found.setdefault(model.__name__, model)
    found[CloudEvent.__name__] = CloudEvent
    return dict(sorted(found.items()))


def _schema_url(version: int, filename: str) -> str:
    return f"{CONTRACTS_BASE_URL}/v{version}/{filename}"


def generate_schemas(version: int = CURRENT_VERSION) -> dict[str, Schema]:
    """JSON Schema (validation mode) of every published model, keyed by model name."""
    schemas: dict[str, Schema] = {}
    for name, model in contract_models().items():
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = JSON_SCHEMA_DIALECT
        schema["$id"] = _schema_url(version, f"{name}.json")
        schema["x-q2c-version"] = version
        schemas[name] = schema
    return schemas


def generate_index(version: int = CURRENT_VERSION, names: list[str] | None = None) -> Schema:
    """The catalogue: which schema describes each model and each event type's ``data``."""
    catalogue = [(t, m, "inbound") for t, m in INBOUND_TYPES.items()]
    catalogue += [(t, m, "outbound") for t, m in OUTBOUND_TYPES.items()]
    return {
        "$id": _schema_url(version, INDEX_FILE),
        "x-q2c-version": version,
        "envelope": f"{CloudEvent.__name__}.json",
        "models": {name: f"{name}.json" for name in sorted(names or contract_models())},
        "events": {
            event_type: {"direction": direction, "schema": f"{model.__name__}.json"}
            for event_type, model, direction in sorted(catalogue)
        },
    }


def _render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_contracts(
    version: int = CURRENT_VERSION, schemas: Mapping[str, Schema] | None = None
) -> dict[str, str]:
    """File name -> exact file text of one contract version, index included."""
    schemas = schemas if schemas is not None else generate_schemas(version)
    files = {f"{name}.json": _render(schema) for name, schema in schemas.items()}
    files[INDEX_FILE] = _render(generate_index(version, sorted(schemas)))
    return dict(sorted(files.items()))


def write_contracts(
    root: Path, version: int | None = None, *, schemas: Mapping[str, Schema] | None = None
) -> list[Path]:
    """Write ``root/v<version>/`` (default: the models' current version).

    Refuses to overwrite a published version with a breaking change, which is how a
    breaking edit would otherwise slip through: regenerate, commit, and the check sees no diff.
    """
    version = version or CURRENT_VERSION
    schemas = schemas if schemas is not None else generate_schemas(version)
    target = root / f"v{version}"
    if target.is_dir():
        published, published_index = _read_version(target)
        problems = _compare_versions(published, published_index, schemas, version)
        breaking = [p for p in problems if p.severity == "breaking"]
        if breaking:
            raise ContractBreakingError(
                f"refusing to overwrite published contracts {target}: "
                f"{len(breaking)} breaking change(s)",
                detail="\n".join(p.describe() for p in breaking),
                suggested_fix=_new_version_fix(version),
            )
    target.mkdir(parents=True, exist_ok=True)
    files = render_contracts(version, schemas)
    for stale in target.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    written = []
    for filename, text in files.items():
        path = target / filename
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


# --- report --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContractReport:
    root: Path
    version: int
    problems: tuple[ContractProblem, ...] = ()
    fixes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def breaking(self) -> list[ContractProblem]:
        return [p for p in self.problems if p.severity == "breaking"]

    @property
    def drift(self) -> list[ContractProblem]:
        return [p for p in self.problems if p.severity == "drift"]

    def render(self) -> str:
        where = self.root / f"v{self.version}"
        if self.ok:
            return f"contracts OK: {where}/ matches the canonical models"
        lines = [
            f"contracts: {len(self.breaking)} breaking change(s), {len(self.drift)} drift "
            f"against {where}/"
        ]
        lines += [f"  BREAKING  {p.describe()}" for p in self.breaking]
        lines += [f"  drift     {p.describe()}" for p in self.drift]
        lines += [f"fix: {fix}" for fix in self.fixes]
        return "\n".join(lines)


def _new_version_fix(published: int) -> str:
    nxt = published + 1
    return (
        f"a breaking change needs a new contract version: set SCHEMA_VERSION = {nxt} in "
        f"src/q2c/canonical/base.py, run `q2c contracts generate` and commit contracts/v{nxt}/"
    )


_DRIFT_FIX = "run `q2c contracts generate` and commit the updated contracts"


# --- check ---------------------------------------------------------------------------------


def _committed_versions(root: Path) -> list[int]:
    if not root.is_dir():
        return []
    found = (_VERSION_DIR.match(p.name) for p in root.iterdir() if p.is_dir())
    return sorted(int(m.group(1)) for m in found if m)


def _read_version(directory: Path) -> tuple[dict[str, Schema], Schema]:
    schemas = {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob("*.json"))
        if path.name != INDEX_FILE
    }
    index_path = directory / INDEX_FILE
    index = json.loads(index_path.read_text(encoding="utf-8")) if index_path.exists() else {}
    return schemas, index


def check_contracts(
    root: Path, *, current: Mapping[str, Schema] | None = None, version: int | None = None
) -> ContractReport:
    """Compare the models (or ``current`` schemas) with the newest version under ``root``.

    ``version`` is the models' contract version (default ``CURRENT_VERSION``). When it is
    newer than every committed directory, breaking changes are allowed and the only
    problem is that the new directory has not been written yet.
    """
    version = version or CURRENT_VERSION
    current = current if current is not None else generate_schemas(version)
    committed = _committed_versions(root)
    if not committed:
        problem = ContractProblem("drift", "contracts", "", f"no contract versions in {root}")
        return ContractReport(root, version, (problem,), (_DRIFT_FIX,))
    latest = committed[-1]
    if version > latest:
        message = f"contracts/v{version}/ has not been written yet (newest is v{latest})"
        problem = ContractProblem("drift", "contracts", "", message)
        return ContractReport(root, version, (problem,), (_DRIFT_FIX,))
    if version < latest:
        message = f"contracts/v{latest}/ is newer than the models' contract version {version}"
        problem = ContractProblem("breaking", "contracts", "", message)
        fix = f"set SCHEMA_VERSION = {latest} in src/q2c/canonical/base.py or remove v{latest}/"
        return ContractReport(root, version, (problem,), (fix,))
    published, published_index = _read_version(root / f"v{latest}")
    problems = _compare_versions(published, published_index, current, version)
    fixes = []
    if any(p.severity == "breaking" for p in problems):
        fixes.append(_new_version_fix(latest))
    if any(p.severity == "drift" for p in problems):
        fixes.append(_DRIFT_FIX)
    return ContractReport(root, version, tuple(problems), tuple(fixes))


def contracts_check_exit_code(root: Path) -> tuple[int, str]:
    """Exit code for ``q2c contracts check``: 0 ok, 1 drift only, 2 breaking; and the report."""
    report = check_contracts(root)
    code = 2 if report.breaking else 1 if report.drift else 0
    return code, report.render()


def _compare_versions(
    published: Mapping[str, Schema],
    published_index: Mapping[str, Any],
    current: Mapping[str, Schema],
    version: int,
) -> list[ContractProblem]:
    problems: list[ContractProblem] = []
    for name in sorted(published.keys() - current.keys()):
        problems.append(ContractProblem("breaking", name, "", "schema removed"))
    for name in sorted(current.keys() - published.keys()):
        problems.append(ContractProblem("drift", name, "", "new schema not yet published"))
    for name in sorted(published.keys() & current.keys()):
        problems += compare_schemas(name, published[name], current[name])
    problems += _compare_events(published_index, generate_index(version, sorted(current)))
    return problems


def _compare_events(
    old_index: Mapping[str, Any], new_index: Mapping[str, Any]
) -> list[ContractProblem]:
    old_events: dict[str, Any] = old_index.get("events", {})
    new_events: dict[str, Any] = new_index.get("events", {})
    problems = []
    for event_type in sorted(old_events.keys() - new_events.keys()):
        problems.append(ContractProblem("breaking", "index", event_type, "event type removed"))
    for event_type in sorted(new_events.keys() - old_events.keys()):
        problems.append(ContractProblem("drift", "index", event_type, "event type added"))
    for event_type in sorted(old_events.keys() & new_events.keys()):
        old_schema = old_events[event_type].get("schema")
        new_schema = new_events[event_type].get("schema")
        if old_schema != new_schema:
            message = f"data schema changed from {old_schema} to {new_schema}"
            problems.append(ContractProblem("breaking", "index", event_type, message))
    return problems
