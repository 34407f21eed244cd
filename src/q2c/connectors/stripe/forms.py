"""Stripe's form encoding, both ways: nested parameters as ``application/x-www-form-urlencoded``.

Stripe's v1 API takes every request as flat form fields whose names carry the nesting:
``metadata[q2c_key]=L1``, ``expand[]=lines`` (or ``expand[0]=lines``, as stripe-python sends
it), ``items[0][price]=price_123``. ``encode`` writes that form from plain values (dicts,
lists, str, int, bool, Decimal); ``decode`` reads it back into nested dicts and lists, so the
adapter and the emulator agree on one definition. Leaf values come back as strings; an empty
value stays ``""`` because Stripe gives it a meaning (``metadata[key]=`` unsets the key,
``metadata=`` unsets all of them). A hash whose keys are all digits is read as a list, except
under free-form hashes (``metadata``, ``payload``), whose keys are the caller's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, quote

__all__ = ["FREE_FORM", "FormError", "decode", "encode", "pairs"]

FREE_FORM = frozenset({"metadata", "payload"})

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


class FormError(ValueError):
    """A form field name or value Stripe would refuse (names the offending field)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        raise TypeError("form values must not be floats (amounts are integers in minor units)")
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def pairs(params: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Flatten nested parameters into (field name, value) pairs, in insertion order.

    None is left out (Stripe's "not sent"); an empty dict becomes ``name=`` (Stripe's "unset
    all"); a list of scalars becomes ``name[]=v`` per element, a list of dicts ``name[i][k]``.
    """
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            if not value:
                yield name, ""
            else:
                yield from pairs(value, name)
        elif isinstance(value, list | tuple):
            for index, element in enumerate(value):
                if isinstance(element, Mapping):
                    yield from pairs(element, f"{name}[{index}]")
                elif element is not None:
                    yield f"{name}[]", _scalar(element)
        else:
            yield name, _scalar(value)


def encode(params: Mapping[str, Any]) -> str:
    """The form body (or query string) for ``params``; brackets stay readable, like Stripe's."""
    return "&".join(
        f"{quote(name, safe='[]')}={quote(value, safe='')}" for name, value in pairs(params)
    )


def decode(body: str | bytes, *, free_form: frozenset[str] = FREE_FORM) -> dict[str, Any]:
    """Nested parameters from a form body or query string (values are strings)."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    root: dict[str, Any] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        match = _KEY.match(name)
        if match is None:
            raise FormError(f"Invalid parameter name: {name}", name)
        path = [match.group(1), *_PART.findall(match.group(2))]
        _assign(root, path, value, name)
    return _listify(root, free_form)


_APPEND = "\x00append"  # marks "name[]" until the tree is turned into lists


def _assign(node: dict[str, Any], path: list[str], value: str, name: str) -> None:
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        key = part
        if part == "":
            appended = node.setdefault(_APPEND, [])
            if not last:
                raise FormError(f"Invalid array parameter: {name}", name)
            appended.append(value)
            return
        if last:
            if isinstance(node.get(key), dict):
                raise FormError(f"Invalid hash parameter: {name} is also a hash", name)
            node[key] = value
            return
        child = node.get(key)
        if child is None or child == "":
            child = {}
            node[key] = child
        elif not isinstance(child, dict):
            raise FormError(f"Invalid hash parameter: {name}", name)
        node = child


def _listify(node: dict[str, Any], free_form: frozenset[str]) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if key == _APPEND:
            continue
        if key in free_form and isinstance(value, dict) and _APPEND not in value:
            converted[key] = dict(value)  # the caller's own keys, even "0", "1", ...
        else:
            converted[key] = _as_list_or_dict(value, free_form)
    return converted


def _as_list_or_dict(value: Any, free_form: frozenset[str]) -> Any:
    if not isinstance(value, dict):
        return value
    appended = value.get(_APPEND)
    indexed = {k: v for k, v in value.items() if k != _APPEND}
    if appended is not None and not indexed:
        return list(appended)
    if indexed and all(k.isdigit() for k in indexed):
        ordered = [_as_list_or_dict(indexed[k], free_form) for k in sorted(indexed, key=int)]
        return ordered + list(appended or [])
    if appended is not None:
        raise FormError("Invalid array parameter mixed with hash keys", next(iter(indexed)))
    return _listify(value, free_form)
