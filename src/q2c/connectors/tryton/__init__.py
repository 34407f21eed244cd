"""Tryton connector: the real open-source ERP (trytond 8.2) driven over JSON-RPC.

Production code needs only the adapter side, importable from here. The managed server used by
tests, the demo and benchmarks (``TrytonServer``) lives in ``q2c.connectors.tryton.server`` and
is imported explicitly, because it starts processes and needs ``trytond`` installed.

    rpc.py        JSON-RPC client: session login/re-login (httpx.Auth), context, models,
                  buttons, wizards, call latencies
    wire.py       Tryton's typed JSON values (Decimal, date, timedelta, ...) and envelope
    errors.py     Tryton errors -> q2c.errors
    payloads.py   canonical objects <-> Tryton values; where external ids live
    base.py       company, currencies, periods, warnings, projects (shared by the roles)
    adapter.py    TrytonErp (ErpPort + ArLedgerPort + JournalPort + ReferenceDataPort),
                  connect_tryton
    invoices.py   customer invoices: create, compare, post, read back
    tax_rounding.py  billed tax vs Tryton's rounding: when it is rounding only, the fix
    ledger.py     payments (pay wizard, unapplied credit), journal entries
    reference.py  currencies, rates, taxes, items
    psa.py        TrytonPsa (PsaPort): projects and timesheet lines
    provision.py  the company setup a new database gets (over RPC)
    server.py     TrytonServer: cached database + trytond subprocess on loopback
"""

from q2c.connectors.tryton.adapter import TrytonErp, connect_tryton
from q2c.connectors.tryton.errors import translate_http_error, translate_rpc_error
from q2c.connectors.tryton.psa import TrytonPsa
from q2c.connectors.tryton.rpc import CallStats, TrytonRpc, TrytonSessionAuth, connect_rpc

__all__ = [
    "CallStats",
    "TrytonErp",
    "TrytonPsa",
    "TrytonRpc",
    "TrytonSessionAuth",
    "connect_rpc",
    "connect_tryton",
    "translate_http_error",
    "translate_rpc_error",
]
