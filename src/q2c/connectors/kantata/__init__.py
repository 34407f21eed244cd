"""Kantata OX (formerly Mavenlink) connector: the PSA adapter (REST API v1) and its sandbox.

Production code needs only the adapter side, importable from here. The emulated account
(``KantataSandbox``, ASGI app) lives in ``q2c.connectors.kantata.sandbox`` and is imported
explicitly by tests, the demo and ``q2c sandbox``.

    adapter.py      KantataPsa (PsaPort), connect_kantata (bearer token or client credentials)
    auth.py         httpx.Auth: bearer token, renewed by refresh-token / client-credentials grant
    errors.py       {"errors": [...]} -> q2c.errors
    payloads.py     Kantata records <-> DeliveryRecord / workspace bodies (the mapping rules)
    webhooks.py     Subscribed Events (change feed) -> ChangeNotice
    wire.py         envelope, timestamps, exact-decimal JSON (both sides)
    sandbox.py      KantataSandbox: state + OAuth application + faults + app, seeding helpers
    emulator.py     the REST API (Starlette); queries.py (filters, paging, side-loads);
                    state.py (tables, clock, change feed); server_auth.py (token endpoint)
"""

from q2c.connectors.kantata.adapter import (
    DEFAULT_OVERLAP,
    SERVICE_NAME,
    KantataPsa,
    connect_kantata,
)
from q2c.connectors.kantata.auth import KantataAuth
from q2c.connectors.kantata.errors import translate_error
from q2c.connectors.kantata.payloads import MappingRules, event_id
from q2c.connectors.kantata.webhooks import ChangeNotice, parse_change_events

__all__ = [
    "DEFAULT_OVERLAP",
    "SERVICE_NAME",
    "ChangeNotice",
    "KantataAuth",
    "KantataPsa",
    "MappingRules",
    "connect_kantata",
    "event_id",
    "parse_change_events",
    "translate_error",
]
