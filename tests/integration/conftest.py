"""Integration fixtures: the live Tryton server of ``tests/connectors/tryton`` (one ``trytond``
from the cached database for the session), its signed-in adapter and an admin connection."""

from tests.connectors.tryton.conftest import admin, erp, tryton_server

__all__ = ["admin", "erp", "tryton_server"]
