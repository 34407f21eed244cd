"""Crash safety: SIGKILL the worker at random points during opportunity-to-project, restart
it, and check in the vendors themselves that nothing was lost and nothing was duplicated.

The emulators run in their own process (``q2c sandbox``) and are reached over TCP, so they
outlive every worker; the worker is the real ``q2c worker`` command. Runs on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import yaml

from q2c.serving import free_port
from q2c.store.db import create_store_engine
from q2c.store.schema import exceptions, outbox, transactions
from tests.conftest import PG_URL

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEALS = 24
KILLS = 8


def _q2c(*args: str, output: object = subprocess.DEVNULL, **kwargs: object
         ) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "q2c.cli", *args],
        stdout=output, stderr=subprocess.STDOUT if output is not subprocess.DEVNULL
        else subprocess.PIPE, **kwargs,  # type: ignore[call-overload]
    )


def _wait_until_started(worker: subprocess.Popen[bytes], log: Path) -> None:
    """Imports and migrations take a second or two on a loaded machine; the kill clock
    starts when the worker says it runs, so kills land in the work, not in start-up."""
    deadline = time.monotonic() + 60
    while "worker started" not in log.read_text():
        if worker.poll() is not None:
            pytest.fail(f"worker died by itself: {log.read_text()[-2000:]}")
        assert time.monotonic() < deadline, f"worker did not start: {log.read_text()[-2000:]}"
        time.sleep(0.05)


@pytest.fixture
def sandboxes(tmp_path: Path) -> Iterator[dict]:
    credentials = tmp_path / "sandbox.json"
    process = _q2c("sandbox", "--salesforce-port", str(free_port()), "--netsuite-port",
                   str(free_port()), "--credentials-out", str(credentials),
                   "--seed-deals", str(DEALS))
    deadline = time.monotonic() + 60
    while not credentials.exists():
        assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "sandbox did not start"
        time.sleep(0.1)
    yield json.loads(credentials.read_text())
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'q2c.db'}"
        return
    schema = f"crash_{uuid.uuid4().hex[:8]}"
    admin = create_store_engine(PG_URL)
    with admin.begin() as c:
        c.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as c:
        c.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


def _config(tmp_path: Path, store_url: str, sandbox: dict) -> tuple[Path, dict[str, str]]:
    key = tmp_path / "netsuite.pem"
    key.write_text(sandbox["netsuite"]["private_key_pem"])
    ref = sandbox["reference"]
    config = {
        "version": 1,
        "store": {"url": store_url},
        "legal_entities": [
            {"code": "US01", "name": "Acme Consulting Inc.", "country": "US",
             "base_currency": "USD"},
            {"code": "UK01", "name": "Acme Consulting Ltd", "country": "GB",
             "base_currency": "GBP"},
        ],
        "systems": {
            "salesforce": {
                "vendor": "salesforce", "roles": ["crm", "cpq"],
                "base_url": sandbox["salesforce"]["base_url"],
                "login_url": sandbox["salesforce"]["base_url"],
                "auth": {"flow": "client_credentials", "client_id_env": "SF_CLIENT_ID",
                         "client_secret_env": "SF_CLIENT_SECRET"},
                "timeout_seconds": 5,
            },
            "netsuite": {
                "vendor": "netsuite", "roles": ["erp"],
                "account_id": sandbox["netsuite"]["account_id"],
                "base_url": sandbox["netsuite"]["base_url"],
                "auth": {"flow": "m2m", "client_id_env": "NS_CLIENT_ID",
                         "certificate_id_env": "NS_CERTIFICATE_ID",
                         "private_key_file": str(key)},
                "timeout_seconds": 5,
            },
        },
        "ownership": {"customer": {"create": ["netsuite"]}, "project": {"create": ["netsuite"]},
                      "proposal": {"create": ["salesforce"]}},
        "mappings": {
            "subsidiary": {c: {"netsuite": i} for c, i in ref["subsidiaries"].items()},
            "department": {
                "Consulting-US": {"US01": {"netsuite": ref["departments"]["Consulting-US"]}},
                "Consulting-UK": {"UK01": {"netsuite": ref["departments"]["Consulting-UK"]}},
            },
            "item": {code: {"*": {"netsuite": i}} for code, i in ref["items"].items()},
        },
        "flows": {"opportunity_to_project": {
            "enabled_for": ["US01", "UK01"],
            "retry": {"attempts": 20, "initial_seconds": 0.1, "max_seconds": 1},
        }},
    }
    path = tmp_path / "q2c.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "SF_CLIENT_ID": sandbox["salesforce"]["client_id"],
        "SF_CLIENT_SECRET": sandbox["salesforce"]["client_secret"],
        "NS_CLIENT_ID": sandbox["netsuite"]["client_id"],
        "NS_CERTIFICATE_ID": sandbox["netsuite"]["certificate_id"],
    }
    return path, env


def _statuses(db: sa.Engine) -> Counter[str]:
    try:
        with db.connect() as c:
            return Counter(dict(c.execute(
                sa.select(transactions.c.status, sa.func.count())
                .group_by(transactions.c.status)).all()))
    except sa.exc.OperationalError:
        return Counter()  # the first worker has not migrated the store yet
    except sa.exc.ProgrammingError:
        return Counter()


def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path, sandboxes, store_url):
    config, env = _config(tmp_path, store_url, sandboxes)
    rng = random.Random(int(os.environ.get("Q2C_CRASH_SEED", "20261126")))
    db = create_store_engine(store_url)
    worker_args = ("worker", "--config", str(config), "--lease-seconds", "1",
                   "--poll-seconds", "0.2")
    kills = 0
    after_kill: list[Counter[str]] = []
    for round_no in range(KILLS):
        log = tmp_path / f"worker-{round_no}.log"
        with log.open("wb") as sink:
            worker = _q2c(*worker_args, "--id", f"w{round_no % 2}", env=env, output=sink)
        _wait_until_started(worker, log)
        time.sleep(rng.uniform(0.2, 1.5))
        if worker.poll() is not None:
            pytest.fail(f"worker died by itself: {log.read_text()[-2000:]}")
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        kills += 1
        after_kill.append(_statuses(db))
    # a last worker finishes the job
    worker = _q2c(*worker_args, "--id", "final", env=env)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            statuses = _statuses(db)
            if statuses.get("completed", 0) == DEALS:
                break
            assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
            time.sleep(0.5)
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    assert kills == KILLS
    print("statuses after each kill:", after_kill)
    # the kills must have landed mid-work: some sagas were cut while running
    worker_logs = "\n".join(
        (tmp_path / f"worker-{n}.log").read_text()[-800:] for n in range(KILLS))
    assert sum(1 for s in after_kill if s.get("running")) >= 2, (after_kill, worker_logs)
    assert after_kill[0].get("completed", 0) < DEALS, "work finished before the first kill"
    statuses = _statuses(db)
    assert statuses == Counter({"completed": DEALS}), statuses

    netsuite = httpx.get(f"{sandboxes['netsuite']['base_url']}/__sandbox__/state").json()
    records = netsuite["records"]
    deals = sandboxes["deals"]
    for record_type, expected in (
        ("salesOrder", DEALS), ("job", DEALS),
        ("customer", len({d["account_id"] for d in deals})),
    ):
        items = records.get(record_type, [])
        external_ids = [r["externalId"] for r in items]
        assert len(items) == expected, f"{record_type}: {len(items)} != {expected}"
        assert len(set(external_ids)) == len(external_ids), f"duplicate {record_type}"

    salesforce = httpx.get(f"{sandboxes['salesforce']['base_url']}/__sandbox__/state").json()
    opportunities = {o["Id"]: o for o in salesforce["records"]["Opportunity"]}
    orders = {r["id"] for r in records["salesOrder"]}
    for deal in deals:
        written = opportunities[deal["opportunity_id"]]["ERP_Sales_Order_Id__c"]
        assert written in orders, f"{deal['opportunity_id']} not written back"

    with db.connect() as c:
        activated = c.execute(sa.select(sa.func.count()).select_from(outbox).where(
            outbox.c.type == "project.activated")).scalar_one()
        open_exceptions = c.execute(sa.select(sa.func.count()).select_from(exceptions).where(
            exceptions.c.status == "open")).scalar_one()
    assert activated == DEALS
    assert open_exceptions == 0
    db.dispose()
