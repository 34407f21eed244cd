"""How the emulated record service presents records and collections (HAL-style links).

A record is its body fields plus ``links`` (``rel: self``); a reference is ``{"links", "id",
"refName"}``; a select field is ``{"id", "refName"}``; a sublist is a link to the sub-resource
unless ``expandSubResources=true``, when it carries its ``items``. Collections (record lists,
SuiteQL results) share one paging envelope: ``links`` (self, first, prev, next, last),
``count``, ``hasMore``, ``items``, ``offset``, ``totalResults``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from q2c.connectors.netsuite.schema import Field, RecordType
from q2c.connectors.netsuite.state import NetSuiteState

__all__ = ["collection", "record_href", "render_record", "render_sublist"]

RECORD_PATH = "/services/rest/record/v1"


def record_href(base: str, type_name: str, record_id: str) -> str:
    return f"{base}{RECORD_PATH}/{type_name}/{quote(str(record_id), safe=':')}"


def _self(href: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": href}]


def render_record(
    state: NetSuiteState, rt: RecordType, record: Mapping[str, Any], base: str, *, expand: bool
) -> dict[str, Any]:
    href = record_href(base, rt.name, record["id"])
    out: dict[str, Any] = {"links": _self(href)}
    for name, value in record.items():
        if name == "id" or value is None:
            continue
        spec = rt.fields.get(name)
        if spec is not None and spec.kind == "sublist":
            if expand:
                out[name] = render_sublist(state, spec, value, f"{href}/{name}", base)
            else:
                out[name] = {"links": _self(f"{href}/{name}")}
        else:
            out[name] = _value(state, spec, value, base)
    out["id"] = record["id"]
    return out


def render_sublist(
    state: NetSuiteState, spec: Field, lines: list[Mapping[str, Any]], href: str, base: str
) -> dict[str, Any]:
    items = []
    for line in lines:
        item: dict[str, Any] = {"links": _self(f"{href}/{line.get('line')}")}
        for name, value in line.items():
            item[name] = _value(state, spec.lines.get(name), value, base)
        items.append(item)
    return {
        "links": _self(href),
        "count": len(items),
        "hasMore": False,
        "items": items,
        "offset": 0,
        "totalResults": len(items),
    }


def _value(state: NetSuiteState, spec: Field | None, value: Any, base: str) -> Any:
    if spec is None:
        return value
    if spec.kind == "ref" and isinstance(value, Mapping):
        described = state.describe_ref(spec.targets, str(value["id"]))
        if described is None:  # the referenced record was removed behind NetSuite's back
            return {"id": value["id"]}
        target, ref_name = described
        return {
            "links": _self(record_href(base, target, value["id"])),
            "id": value["id"],
            "refName": ref_name,
        }
    if spec.kind == "select":
        return {"id": value, "refName": spec.choices.get(value, value)}
    return value


def collection(
    items: list[dict[str, Any]], total: int, *, limit: int, offset: int, href: str
) -> dict[str, Any]:
    """The paging envelope shared by record lists and SuiteQL results."""

    def page(at: int) -> dict[str, str]:
        separator = "&" if "?" in href else "?"
        return {"href": f"{href}{separator}limit={limit}&offset={at}"}

    has_more = offset + len(items) < total
    last = max(0, ((total - 1) // limit) * limit) if total else 0
    links = [{"rel": "self", **page(offset)}, {"rel": "first", **page(0)}]
    if offset > 0:
        links.append({"rel": "prev", **page(max(0, offset - limit))})
    if has_more:
        links.append({"rel": "next", **page(offset + limit)})
    links.append({"rel": "last", **page(last)})
    return {
        "links": links,
        "count": len(items),
        "hasMore": has_more,
        "items": items,
        "offset": offset,
        "totalResults": total,
    }
