"""``q2c sandbox``: the bundled vendor emulators as real HTTP servers on loopback.

Used when the hub must reach the vendors over TCP (a worker in another process, the crash
test, trying adapters by hand). The emulators keep their state in this process, so a worker
can die and restart while the "vendors" remember what it wrote. Credentials, reference ids
and seeded deals are written to a JSON file for whoever connects.

``q2c sandbox tryton`` serves a real Tryton instead (``serve_tryton``): a ``trytond`` process
on 127.0.0.1 started from the cached initialised database, stopped by pid when this command
stops (SIGINT/SIGTERM). Its URL, database, admin credentials and setup ids are printed and
written to a JSON file.
"""

from __future__ import annotations

import json
import random
import signal
import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any

from q2c.connectors.netsuite.sandbox import NetSuiteSandbox
from q2c.connectors.salesforce.emulator import SalesforceSandbox
from q2c.serving import serving

__all__ = ["serve_sandboxes", "serve_tryton"]


def serve_sandboxes(
    *,
    host: str = "127.0.0.1",
    salesforce_port: int = 8101,
    netsuite_port: int = 8102,
    credentials_out: Path = Path(".q2c/sandbox.json"),
    seed_deals: int = 0,
    seed: int = 7,
) -> None:
    from q2c.demo_opportunities import ENTITIES, ITEMS, UNMAPPED_DEPARTMENT
    from q2c.demo_opportunities import seed_deals as make_deals

    salesforce_url = f"http://{host}:{salesforce_port}"
    netsuite_url = f"http://{host}:{netsuite_port}"
    salesforce = SalesforceSandbox(login_url=salesforce_url, instance_url=salesforce_url)
    netsuite = NetSuiteSandbox(base_url=netsuite_url)
    reference = netsuite.seed_reference_data(
        subsidiaries={code: e["name"] for code, e in ENTITIES.items()},
        departments=[*(e["department"] for e in ENTITIES.values()), UNMAPPED_DEPARTMENT],
        currencies=["USD", "GBP"],
        items=list(ITEMS),
    )
    deals = make_deals(salesforce, random.Random(seed), seed_deals, unmapped_at=None)
    document: dict[str, Any] = {
        "salesforce": {
            "base_url": salesforce_url,
            "client_id": salesforce.client_id,
            "client_secret": salesforce.client_secret,
        },
        "netsuite": {
            "base_url": netsuite_url,
            "account_id": netsuite.account_id,
            "client_id": netsuite.m2m.client_id,
            "certificate_id": netsuite.m2m.certificate_id,
            "private_key_pem": _text(netsuite.m2m.private_key_pem),
        },
        "reference": reference,
        "deals": [{k: str(v) for k, v in deal.items() if k != "product_ids"} for deal in deals],
    }
    with ExitStack() as servers:
        try:
            for app, port in ((salesforce.app, salesforce_port), (netsuite.app, netsuite_port)):
                servers.enter_context(serving(app, port=port, host=host))
        except RuntimeError as exc:
            raise SystemExit(f"a sandbox server failed to start: {exc}") from None
        credentials_out.parent.mkdir(parents=True, exist_ok=True)
        partial = credentials_out.with_suffix(".tmp")
        partial.write_text(json.dumps(document, indent=2))
        partial.replace(credentials_out)  # readers never see a half-written file
        _wait_for_stop_signal()


def serve_tryton(
    *,
    port: int = 0,
    credentials_out: Path = Path(".q2c/tryton.json"),
    announce: Callable[[dict[str, Any]], None] = lambda document: None,
) -> None:
    """Serve a managed Tryton on 127.0.0.1 (``port`` 0: a free one) until SIGINT/SIGTERM."""
    from q2c.connectors.tryton.rpc import rpc_url_for
    from q2c.connectors.tryton.server import TrytonServer

    with TrytonServer(port=port) as server:
        document: dict[str, Any] = {
            "base_url": server.base_url,
            "rpc_url": rpc_url_for(server.base_url, server.database),
            "database": server.database,
            "username": server.username,
            "password": server.password,
            "pid": server.pid,
            "cache_hit": server.timings.cache_hit,
            "setup": server.setup.as_json(),
        }
        _write_private(credentials_out, document)
        announce(document)
        _wait_for_stop_signal()


def _write_private(path: Path, document: dict[str, Any]) -> None:
    """Credentials only the owner reads; readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(document, indent=2))
    partial.chmod(0o600)
    partial.replace(path)


def _wait_for_stop_signal() -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
