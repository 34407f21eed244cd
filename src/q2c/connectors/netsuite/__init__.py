"""NetSuite connector: the ERP adapter (SuiteTalk REST web services) and its sandbox.

Production code needs only the adapter side, importable from here: one ``NetSuiteErp`` per
account serves the ERP, AR ledger, journal and reference-data roles. The emulated account
(``NetSuiteSandbox``, ASGI app, SuiteQL mirror) lives in ``q2c.connectors.netsuite.sandbox``
and is imported explicitly by tests, the demo and ``q2c sandbox``.

    adapter.py      NetSuiteErp (ErpPort + everything below), connect_netsuite_m2m / _tba
    accounting.py   NetSuiteAccounting: ArLedgerPort, JournalPort, ReferenceDataPort
    session.py      NetSuiteSession: record reads, upserts by external id, SuiteQL paging
    auth.py         httpx.Auth for OAuth 2.0 M2M (JWT assertion) and TBA (HMAC-SHA256)
    errors.py       o:errorDetails -> q2c.errors
    payloads.py     canonical customers, projects, sales orders <-> NetSuite record bodies
    transactions.py canonical invoices, payments, journals <-> NetSuite transaction bodies
    reference.py    SuiteQL for currencies, rates, tax codes, items -> canonical objects
    wire.py         exact-decimal JSON, error documents, account URLs (both sides)
    sandbox.py      NetSuiteSandbox: state + credentials + faults + app + seeding
    seed.py         the ledger reference data a sandbox starts with (accounts, tax, items)
    emulator.py     the REST web services (Starlette) and the concurrency governor
    state.py        the account's records; schema.py (record types as data), records.py
                    (body checks), ledger.py (posting rules: tax, totals, payments applied,
                    journals balanced), render.py (HAL output), suiteql.py (DuckDB mirror),
                    server_auth.py (token issuing, JWT and TBA verification, audit trail)
"""

from q2c.connectors.netsuite.adapter import (
    NetSuiteErp,
    connect_netsuite_m2m,
    connect_netsuite_tba,
)
from q2c.connectors.netsuite.auth import NetSuiteM2MAuth, NetSuiteTBAAuth
from q2c.connectors.netsuite.errors import translate_error
from q2c.connectors.netsuite.wire import base_url_for

__all__ = [
    "NetSuiteErp",
    "NetSuiteM2MAuth",
    "NetSuiteTBAAuth",
    "base_url_for",
    "connect_netsuite_m2m",
    "connect_netsuite_tba",
    "translate_error",
]
