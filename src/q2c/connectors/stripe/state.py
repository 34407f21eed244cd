"""An emulated Stripe account's data: objects, events, idempotency results, the clock.

Objects are kept in their API representation (plus ``_``-prefixed bookkeeping) and rendered
on the way out. Lists come newest first, as Stripe returns them, and are paged with
``limit`` / ``starting_after`` / ``ending_before`` over a creation sequence, so a cursor still
works when its object no longer matches the list's filters. Everything is guarded by one
lock: the emulator may be driven from several threads.
"""

from __future__ import annotations

import copy
import random
import string
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from q2c.connectors.stripe import objects
from q2c.connectors.stripe.wire import API_VERSION, StripeApiError

__all__ = ["IdempotentResult", "StripeState", "public_line"]

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
_ALPHABET = string.ascii_letters + string.digits
_SHORT_IDS = {"cus", "prod", "si", "acct"}
# which object an id prefix names, for expansion and cursor look-ups
PREFIXES = {
    "cus": "customer",
    "ii": "invoiceitem",
    "in": "invoice",
    "il": "line_item",
    "txr": "tax_rate",
    "prod": "product",
    "price": "price",
    "sub": "subscription",
    "si": "subscription_item",
    "pi": "payment_intent",
    "ch": "charge",
    "inpay": "invoice_payment",
    "evt": "event",
    "mtr": "billing.meter",
}
LABELS = {
    "customer": "customer",
    "invoiceitem": "invoiceitem",
    "invoice": "invoice",
    "line_item": "invoice line item",
    "tax_rate": "tax_rate",
    "product": "product",
    "price": "price",
    "subscription": "subscription",
    "subscription_item": "subscription item",
    "payment_intent": "payment_intent",
    "charge": "charge",
    "invoice_payment": "invoice payment",
    "event": "event",
    "billing.meter": "billing.meter",
}


@dataclass
class IdempotentResult:
    """What Stripe keeps for an Idempotency-Key: the first request and its response."""

    method: str
    path: str
    params: dict[str, Any]
    request_id: str
    created: float
    status: int | None = None  # None while the first request is still executing
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class StripeState:
    """One Stripe account in memory (test mode)."""

    def __init__(
        self,
        *,
        account_id: str = "acct_1Q2cSandbox000",
        account_name: str = "q2c Sandbox",
        account_country: str = "US",
        clock: Callable[[], float] = time.time,
        seed: int | None = None,
        search_lag_seconds: float = 0.0,
    ) -> None:
        self.account_id = account_id
        self.account_name = account_name
        self.account_country = account_country
        self.clock = clock
        self.lock = threading.RLock()
        self._random = random.Random(seed)
        self._sequence = 0
        self.objects: dict[str, dict[str, Any]] = {}
        self.by_type: dict[str, list[str]] = {}
        self.order: dict[str, int] = {}
        self.items_by_customer: dict[str, list[str]] = {}
        self.invoice_lines: dict[str, list[dict[str, Any]]] = {}
        self.meter_events: list[dict[str, Any]] = []
        self.meter_identifiers: dict[str, float] = {}
        self.idempotency: dict[str, IdempotentResult] = {}
        self.requests = 0
        # Stripe's search index trails writes (usually under a minute); 0 = immediate
        self.search_lag_seconds = search_lag_seconds
        self.indexed_at: dict[str, float] = {}

    # --- clock and ids ---------------------------------------------------------------------

    def now(self) -> int:
        return int(self.clock())

    def new_id(self, prefix: str) -> str:
        length = 14 if prefix in _SHORT_IDS else 24
        with self.lock:
            body = "".join(self._random.choice(_ALPHABET) for _ in range(length - 1))
        return f"{prefix}_1{body}" if length == 24 else f"{prefix}_{body}Q"

    def token(self, length: int, alphabet: str = string.ascii_uppercase + string.digits) -> str:
        with self.lock:
            return "".join(self._random.choice(alphabet) for _ in range(length))

    # --- objects ---------------------------------------------------------------------------

    def next_sequence(self) -> int:
        with self.lock:
            self._sequence += 1
            return self._sequence

    def insert(self, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            sequence = self.next_sequence()
            object_id = obj["id"]
            self.objects[object_id] = obj
            self.order[object_id] = sequence
            self.by_type.setdefault(obj["object"], []).append(object_id)
            self.indexed_at[object_id] = self.clock() + self.search_lag_seconds
            return obj

    def searchable(self, obj: dict[str, Any]) -> bool:
        """Whether the search index has caught up with the object's creation."""
        return self.clock() >= self.indexed_at.get(obj["id"], 0.0)

    def find(self, object_id: str) -> dict[str, Any] | None:
        return self.objects.get(object_id)

    def get(self, object_type: str, object_id: str, *, param: str | None = "id") -> dict[str, Any]:
        """The object, or Stripe's 404 ``resource_missing`` naming ``param``."""
        found = self.objects.get(object_id)
        if found is None or found.get("object") != object_type:
            raise StripeApiError(
                404,
                f"No such {LABELS.get(object_type, object_type)}: '{object_id}'",
                code="resource_missing",
                param=param,
            )
        return found

    def all_of(self, object_type: str) -> list[dict[str, Any]]:
        """Every object of a type, oldest first."""
        return [self.objects[i] for i in self.by_type.get(object_type, [])]

    def remove(self, object_id: str) -> None:
        with self.lock:
            obj = self.objects.pop(object_id)
            self.by_type[obj["object"]].remove(object_id)
            self.order.pop(object_id, None)

    # --- rendering -------------------------------------------------------------------------

    def render(self, obj: dict[str, Any], expand: Iterable[str] = ()) -> dict[str, Any]:
        """The API representation: private keys dropped, nested lists built, ``expand``ed."""
        return self.expand(self._public(obj), expand)

    def expand(self, body: dict[str, Any], paths: Iterable[str]) -> dict[str, Any]:
        """Replace ids with their objects along ``paths`` (``customer``, ``data.customer``)."""
        for path in paths:
            self._expand(body, path.split("."), path)
        return body

    def _public(self, obj: dict[str, Any]) -> dict[str, Any]:
        out = {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}
        kind = obj.get("object")
        if kind == "invoice":
            lines = self.invoice_lines.get(obj["id"], [])
            out["lines"] = objects.list_object(
                [public_line(line) for line in lines[:10]],
                has_more=len(lines) > 10,
                url=f"/v1/invoices/{obj['id']}/lines",
            )
        elif kind == "invoiceitem":
            out["tax_rates"] = [self._public(self.objects[t]) for t in obj["_tax_rates"]]
        return out

    def _expand(self, node: Any, parts: list[str], path: str) -> None:
        if not parts:
            return
        head, rest = parts[0], parts[1:]
        if isinstance(node, dict) and node.get("object") in ("list", "search_result"):
            if head != "data":
                raise _not_expandable(path)
            for element in node["data"]:
                self._expand(element, rest, path)
            return
        if not isinstance(node, dict) or head not in node:
            raise _not_expandable(path)
        value = node[head]
        if isinstance(value, str):  # an id: replace it with its object
            target = self.objects.get(value)
            if target is None:
                raise _not_expandable(path)
            node[head] = value = self._public(target)
        if value is not None:
            self._expand(value, rest, path)

    # --- lists -----------------------------------------------------------------------------

    def page(
        self,
        candidates: list[dict[str, Any]],
        params: dict[str, Any],
        *,
        url: str,
        render: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        newest_first: bool = True,
    ) -> dict[str, Any]:
        """One page of ``candidates`` (any order in, Stripe's order out) as a list object."""
        limit = _limit(params)
        ordered = sorted(candidates, key=lambda o: self._sequence_of(o), reverse=newest_first)
        after, before = params.get("starting_after"), params.get("ending_before")
        if after and before:
            raise StripeApiError(
                400,
                "You may only specify one of these parameters: ending_before, starting_after.",
                param="ending_before",
            )
        if after:
            pivot = self._cursor(after, "starting_after")
            ordered = [o for o in ordered if _later(self._sequence_of(o), pivot, newest_first)]
            chunk = ordered[:limit]
        elif before:
            pivot = self._cursor(before, "ending_before")
            ordered = [o for o in ordered if _later(pivot, self._sequence_of(o), newest_first)]
            chunk = ordered[-limit:]
        else:
            chunk = ordered[:limit]
        has_more = len(ordered) > limit
        make = render or self.render
        return objects.list_object([make(o) for o in chunk], has_more=has_more, url=url)

    def _sequence_of(self, obj: dict[str, Any]) -> int:
        return self.order.get(obj["id"]) or int(obj.get("_sequence", 0))

    def _cursor(self, object_id: str, param: str) -> int:
        if object_id in self.order:
            return self.order[object_id]
        for lines in self.invoice_lines.values():
            for line in lines:
                if line["id"] == object_id:
                    return int(line["_sequence"])
        prefix = object_id.split("_", 1)[0]
        label = LABELS.get(PREFIXES.get(prefix, ""), "object")
        raise StripeApiError(
            404, f"No such {label}: '{object_id}'", code="resource_missing", param=param
        )

    # --- events ----------------------------------------------------------------------------

    def emit(
        self,
        event_type: str,
        obj: dict[str, Any],
        *,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        previous_attributes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record an event carrying a snapshot of ``obj`` as it is now."""
        event = objects.event(
            self.new_id("evt"),
            self.now(),
            event_type=event_type,
            data_object=self.render(obj),
            api_version=API_VERSION,
            request_id=request_id,
            idempotency_key=idempotency_key,
            previous_attributes=previous_attributes,
        )
        return self.insert(event)

    # --- idempotency -----------------------------------------------------------------------

    def forget_idempotency_keys(self, older_than_seconds: float = 0) -> int:
        """Drop stored results (Stripe keeps them about 24 hours); returns how many."""
        with self.lock:
            cutoff = self.clock() - older_than_seconds
            stale = [k for k, r in self.idempotency.items() if r.created <= cutoff]
            for key in stale:
                del self.idempotency[key]
            return len(stale)

    def idempotent_result(self, key: str) -> IdempotentResult | None:
        with self.lock:
            found = self.idempotency.get(key)
            if found is not None and self.clock() - found.created > IDEMPOTENCY_TTL_SECONDS:
                del self.idempotency[key]
                return None
            return found


def public_line(line: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in line.items() if not k.startswith("_")}


def _later(sequence: int, pivot: int, newest_first: bool) -> bool:
    """Whether the object numbered ``sequence`` comes after ``pivot`` in list order."""
    return sequence < pivot if newest_first else sequence > pivot


def _limit(params: dict[str, Any]) -> int:
    raw = params.get("limit", "10")
    try:
        limit = int(raw)
    except (TypeError, ValueError):
        raise StripeApiError(
            400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param="limit"
        ) from None
    if not 1 <= limit <= 100:
        raise StripeApiError(
            400,
            "Invalid limit: must be between 1 and 100",
            code="parameter_invalid_integer",
            param="limit",
        )
    return limit


def _not_expandable(path: str) -> StripeApiError:
    return StripeApiError(400, f"This property cannot be expanded ({path}).", param="expand")
