"""The PostgreSQL path: the same adapter against trytond on PostgreSQL (127.0.0.1:5432).

The database is created from a cached template (``CREATE DATABASE ... TEMPLATE``) and dropped
when the server stops.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import psycopg
import pytest

from q2c.connectors.tryton.server import TrytonServer
from tests.connectors.tryton.helpers import (
    canonical_invoice,
    new_customer,
    payment,
    posting_refs,
    priced,
    usd,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg_server() -> Iterator[TrytonServer]:
    server = TrytonServer(backend="postgresql")
    with server:
        yield server
    assert not server.pg.exists(server.database)  # its own database is dropped at stop


def test_invoice_posted_and_paid_on_postgresql(pg_server: TrytonServer, uid: str) -> None:
    with httpx.Client(timeout=60.0) as client:
        erp = pg_server.erp(client)
        customer = new_customer(erp, uid)
        invoice = canonical_invoice(
            erp, uid, [priced("CONSULTING-HOUR", "7.5", "150.00", "US-SALES-10")]
        )
        ref = erp.upsert_invoice(
            invoice, external_id=f"q2c-inv-{uid}", refs=posting_refs(erp, customer)
        )
        read = erp.read_invoice(ref.erp_id)
        assert (read.subtotal, read.tax_total, read.total) == (
            usd("1125.00"),
            usd("112.50"),
            usd("1237.50"),
        )
        paid = erp.apply_payment(
            payment(uid, "1237.50"), external_id=f"q2c-pay-{uid}",
            customer_erp_id=customer.erp_id, subsidiary="", currency_erp_id="1",
            applications=[(ref.erp_id, usd("1237.50"))],
        )  # fmt: skip
        assert paid.unapplied == usd("0.00")
        assert erp.read_invoice(ref.erp_id).status == "paid"
        assert erp.receivable_balance(customer.erp_id) == usd("0.00")
    # the invoice is in PostgreSQL, in the database made for this server
    with psycopg.connect(
        host="127.0.0.1", port=5432, user="postgres", dbname=pg_server.database
    ) as db:
        rows = db.execute(
            "SELECT state, total_amount_cache FROM account_invoice WHERE reference = %s",
            (f"q2c-inv-{uid}",),
        ).fetchall()
    assert [(state, str(total)) for state, total in rows] == [("paid", "1237.50")]
