"""Property-based run of the app's own OpenAPI (schemathesis): no input makes a 5xx, and every
response has a declared status, content type and body schema.

Runs with an admin token over a seeded store (a completed and a parked transaction, so ids
exist), bounded by ``max_examples`` per operation to stay well under two minutes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import orjson
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from q2c.api.app import create_app
from q2c.bootstrap import bootstrap
from q2c.connectors.memory import InMemoryCrm, InMemoryErp
from q2c.connectors.registry import Connections
from q2c.store.db import create_store_engine, upgrade
from tests.api.conftest import api_config, bearer
from tests.api.test_events_api import BATCH, _event

EXAMPLES = 20
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def seeded_app(tmp_path_factory) -> Iterator[FastAPI]:
    db = create_store_engine(f"sqlite:///{tmp_path_factory.mktemp('st') / 'q2c.db'}")
    upgrade(db)
    connections = Connections()
    connections.add("salesforce", ["crm"], InMemoryCrm(system="salesforce"))
    connections.add("netsuite", ["erp"], InMemoryErp(system="netsuite"))
    hub = bootstrap(api_config(), db=db, connections=connections, worker_id="schemathesis")
    app = create_app(hub, max_body_bytes=64 * 1024)
    parked = _event("006X", "st-2")
    parked["data"]["department"] = "Consulting-EMEA"
    from fastapi.testclient import TestClient

    with TestClient(app, headers=bearer(app, "admin")) as client:
        body = orjson.dumps([_event("006W", "st-1"), parked])
        assert client.post("/v1/events", content=body, headers=BATCH).status_code == 202
    hub.engine.run_due()
    yield app
    hub.close()


@pytest.fixture(scope="module")
def api_schema(seeded_app):
    return schemathesis.openapi.from_asgi("/openapi.json", seeded_app)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_makes_a_server_error(api_schema, seeded_app, mode):
    # Driven by hand rather than by schemathesis' pytest plugin, which does not support
    # pytest 9 yet: every operation gets its own bounded hypothesis run.
    headers = bearer(seeded_app, "admin")
    failures: dict[str, str] = {}
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            statuses[response.status_code // 100] += 1

        try:
            run()
        except Unsatisfiable:
            if mode is GenerationMode.POSITIVE:
                raise
            continue  # nothing to negate: no parameters, or a body that takes any JSON
        except Exception as exc:  # one operation's failure must not hide the others'
            failures[operation.label] = f"{type(exc).__name__}: {exc}"[:2000]
    assert not failures, "\n\n".join(f"{label}: {error}" for label, error in failures.items())
    assert statuses[5] == 0
    assert statuses[4] > 50  # bad input was tried, and refused
    if mode is GenerationMode.POSITIVE:
        assert statuses[2] > 50  # the token works: valid input got through
