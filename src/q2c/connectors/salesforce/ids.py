"""Salesforce record ids: 15-character case-sensitive ids and their 18-character safe form.

An id is a 3-character key prefix naming the object (001 Account, 006 Opportunity ...), then
12 characters, then (in the 18-character form) a 3-character suffix encoding which of the
first 15 characters are upper case, so the id survives case-insensitive systems. The emulator
issues real-looking 18-character ids and accepts either form, as Salesforce does.
"""

from __future__ import annotations

import itertools
import threading

__all__ = ["KEY_PREFIXES", "IdFactory", "normalize_id", "prefix_of"]

KEY_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Lead": "00Q",
    "Opportunity": "006",
    "Product2": "01t",
    "Quote": "0Q0",
    "QuoteLineItem": "0QL",
    "User": "005",
    "Organization": "00D",
    "QueryLocator": "01g",
}

_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _suffix(id15: str) -> str:
    out = []
    for chunk in range(3):
        bits = 0
        for i, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << i
        out.append(_SUFFIX[bits])
    return "".join(out)


def _restore_case(id18: str) -> str:
    """Rebuild the case of the first 15 characters from the suffix (ids may arrive lowered)."""
    chars = []
    for chunk in range(3):
        bits = _SUFFIX.index(id18[15 + chunk].upper())
        for i, char in enumerate(id18[chunk * 5 : chunk * 5 + 5]):
            chars.append(char.upper() if bits & (1 << i) else char.lower())
    return "".join(chars)


def normalize_id(value: object) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None when it is not an id."""
    if not isinstance(value, str) or len(value) not in (15, 18) or not value.isalnum():
        return None
    if not value.isascii():
        return None
    if len(value) == 15:
        return value + _suffix(value)
    if any(c.upper() not in _SUFFIX for c in value[15:]):
        return None
    restored = _restore_case(value)
    if _suffix(restored) != value[15:].upper():
        return None
    return restored + value[15:].upper()


def prefix_of(value: str) -> str:
    return value[:3]


class IdFactory:
    """Issues unique ids per key prefix: prefix + pod + zero padding + base-62 counter."""

    def __init__(self, pod: str = "8d") -> None:
        self._pod = pod
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def new(self, prefix: str) -> str:
        with self._lock:
            n = next(self._counter)
        digits = ""
        while n:
            n, rem = divmod(n, 62)
            digits = _BASE62[rem] + digits
        body = f"{prefix}{self._pod}{digits.rjust(10, '0')}"
        return body + _suffix(body)
