"""Stripe's Search Query Language, enough of it for the searchable resources emulated here.

A query is up to 10 clauses joined by ``AND`` or by ``OR`` (not both). A clause is
``field:value`` (exact, case-insensitive for strings), ``field~value`` (substring, at least
three characters), ``field>value`` / ``<`` / ``>=`` / ``<=`` (numbers), optionally negated
with a leading ``-``; ``metadata['key']:'value'`` matches one metadata key; ``field:null``
matches a missing value. Values are quoted with single or double quotes (numbers may be
bare).

Stripe's search index is eventually consistent: new objects usually appear within a minute.
The emulator is immediate unless ``StripeState.search_lag_seconds`` says otherwise (then an
object becomes searchable that long after its creation; simplification: updates are
searchable at once). Results come newest first; ``next_page`` is an opaque cursor.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from q2c.connectors.stripe.state import StripeState
from q2c.connectors.stripe.wire import StripeApiError

__all__ = [
    "Clause",
    "SearchQuery",
    "decode_page",
    "encode_page",
    "parse_query",
    "resolve_field",
    "search_page",
]

_CLAUSE = re.compile(
    r"""^(?P<neg>-)?
        (?P<field>[a-z_]+)(?:\[(?P<q1>['"])(?P<key>[^'"]+)(?P=q1)\])?
        (?P<op>:|~|>=|<=|>|<)
        (?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s'"]+)$""",
    re.VERBOSE,
)
MAX_CLAUSES = 10


@dataclass(frozen=True)
class Clause:
    field: str
    key: str | None
    op: str
    value: str | None  # None for ``:null``
    negated: bool
    quoted: bool

    def matches(self, obj: dict[str, Any], resolve: Callable[[dict[str, Any], str], Any]) -> bool:
        if self.field == "metadata":
            actual: Any = (obj.get("metadata") or {}).get(self.key or "")
        else:
            actual = resolve(obj, self.field)
        return self._test(actual) != self.negated

    def _test(self, actual: Any) -> bool:
        if self.value is None:
            return actual is None
        if actual is None:
            return False
        if self.op == ":":
            if isinstance(actual, bool):
                return str(actual).lower() == self.value.lower()
            if isinstance(actual, int | float | Decimal) and not self.quoted:
                return _number(self.value) == Decimal(str(actual))
            return str(actual).lower() == self.value.lower()
        if self.op == "~":
            return self.value.lower() in str(actual).lower()
        left, right = Decimal(str(actual)), _number(self.value)
        return {
            ">": left > right,
            "<": left < right,
            ">=": left >= right,
            "<=": left <= right,
        }[self.op]


@dataclass(frozen=True)
class SearchQuery:
    clauses: tuple[Clause, ...]
    conjunction: str  # "AND" or "OR"

    def matches(self, obj: dict[str, Any], resolve: Callable[[dict[str, Any], str], Any]) -> bool:
        results = (c.matches(obj, resolve) for c in self.clauses)
        return all(results) if self.conjunction == "AND" else any(results)


def _number(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        raise _invalid(f"'{value}' is not a number") from None


def _invalid(reason: str) -> StripeApiError:
    return StripeApiError(
        400, f"We were unable to parse your search query. {reason}", param="query"
    )


def parse_query(query: str, fields: frozenset[str], resource: str) -> SearchQuery:
    """Parse ``query`` for a resource whose searchable fields are ``fields``."""
    text = query.strip()
    if not text:
        raise StripeApiError(
            400, "Missing required param: query.", code="parameter_missing", param="query"
        )
    parts = re.split(r"\s+(AND|OR)\s+", text)
    terms, joiners = parts[0::2], set(parts[1::2])
    if len(joiners) > 1:
        raise _invalid("AND and OR cannot be combined in one query.")
    if len(terms) > MAX_CLAUSES:
        raise _invalid(f"A query can have at most {MAX_CLAUSES} clauses.")
    clauses = []
    for term in terms:
        match = _CLAUSE.match(term.strip())
        if match is None:
            raise _invalid(f"Could not understand the clause `{term.strip()}`.")
        name = match.group("field")
        if name not in fields:
            raise StripeApiError(
                400,
                f"Field `{name}` is an unsupported search field for resource `{resource}`. "
                f"See https://stripe.com/docs/search#query-fields-for-{resource} for a list "
                "of supported fields.",
                param="query",
            )
        if name == "metadata" and match.group("key") is None:
            raise _invalid("Metadata clauses name a key: metadata['key']:'value'.")
        raw = match.group("value")
        quoted = raw[:1] in ("'", '"')
        value: str | None = re.sub(r"\\(.)", r"\1", raw[1:-1]) if quoted else raw
        if not quoted and value == "null":
            value = None
        op = match.group("op")
        if op == "~" and (value is None or len(value) < 3):
            raise _invalid("Substring matches (~) need at least three characters.")
        clauses.append(
            Clause(name, match.group("key"), op, value, bool(match.group("neg")), quoted)
        )
    return SearchQuery(tuple(clauses), joiners.pop() if joiners else "AND")


def encode_page(sequence: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{sequence}".encode()).decode().rstrip("=")


def decode_page(token: str) -> int:
    try:
        padded = token + "=" * (-len(token) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        if not text.startswith("seq:"):
            raise ValueError(text)
        return int(text[4:])
    except (ValueError, UnicodeDecodeError):
        raise StripeApiError(400, f"Invalid page: {token}", param="page") from None


def resolve_field(obj: dict[str, Any], name: str) -> Any:
    """A searchable field's value; expanded references count by their id."""
    value = obj.get(name)
    if isinstance(value, dict) and "id" in value:
        return value["id"]
    return value


def search_page(
    state: StripeState,
    object_type: str,
    params: dict[str, Any],
    *,
    fields: frozenset[str],
    resource: str,
    resolve: Callable[[dict[str, Any], str], Any] = resolve_field,
) -> dict[str, Any]:
    """One page of search results (``object: "search_result"``), newest first."""
    query = parse_query(str(params.get("query") or ""), fields, resource)
    limit = int(params.get("limit") or 10)
    if not 1 <= limit <= 100:
        raise StripeApiError(400, "Invalid limit: must be between 1 and 100", param="limit")
    candidates = [
        o for o in state.all_of(object_type) if state.searchable(o) and query.matches(o, resolve)
    ]
    candidates.sort(key=lambda o: state.order[o["id"]], reverse=True)
    if params.get("page"):
        below = decode_page(str(params["page"]))
        candidates = [o for o in candidates if state.order[o["id"]] < below]
    chunk = candidates[:limit]
    has_more = len(candidates) > limit
    return {
        "object": "search_result",
        "data": [state.render(o) for o in chunk],
        "has_more": has_more,
        "next_page": encode_page(state.order[chunk[-1]["id"]]) if has_more else None,
        "url": f"/v1/{resource}/search",
    }
