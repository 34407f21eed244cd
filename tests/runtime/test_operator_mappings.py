"""Operator mappings: a fix made in one hub process is used by every other one on the same
store, from its next run, without a restart; replacements keep their history; q2c.yaml wins
again once it is changed for the key."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from q2c.bootstrap import Hub, bootstrap
from q2c.config import DEMO_CONFIG_YAML, Q2CConfig, parse_config
from q2c.connectors.memory import InMemoryCrm, InMemoryErp
from q2c.connectors.registry import Connections
from q2c.errors import MappingMissingError
from q2c.mapping.value_maps import MappingEntry, ValueMaps
from q2c.runtime.operator_mappings import (
    LiveValueMaps,
    OperatorMapping,
    OperatorMappingError,
    OperatorMappings,
    overlay,
    standing,
)
from q2c.store.db import create_store_engine
from q2c.store.schema import transactions
from tests.api.conftest import SECRETS, api_config, api_section
from tests.console.conftest import deal, parked

EMEA = ("department", "Consulting-EMEA", "US01", "netsuite")


def _other_process_engine(db: sa.Engine) -> sa.Engine:
    """A second engine on the same database, with its own pool, as another process has."""
    url = db.url.render_as_string(hide_password=False)
    if db.dialect.name == "sqlite":
        return create_store_engine(url)
    with db.connect() as connection:
        schema = connection.exec_driver_sql("SHOW search_path").scalar_one()
    return create_store_engine(url, connect_args={"options": f"-csearch_path={schema}"})


class Hubs:
    """Hub processes on one store, sharing the (in-memory) CRM and ERP they talk to."""

    def __init__(self, db: sa.Engine, clock: Any) -> None:
        self.db, self.clock = db, clock
        self.crm, self.erp = InMemoryCrm(system="salesforce"), InMemoryErp(system="netsuite")
        self.started: list[Hub] = []

    def start(self, name: str, config: Q2CConfig | None = None) -> Hub:
        connections = Connections()
        connections.add("salesforce", ["crm"], self.crm)
        connections.add("netsuite", ["erp"], self.erp)
        hub = bootstrap(config or api_config(), db=_other_process_engine(self.db),
                        clock=self.clock, connections=connections, worker_id=name)
        self.started.append(hub)
        return hub


@pytest.fixture
def hubs(db, clock) -> Iterator[Hubs]:
    started = Hubs(db, clock)
    yield started
    for hub in started.started:
        hub.close()


def _status(hub: Hub, transaction_id: str) -> str:
    with hub.db.connect() as connection:
        return connection.execute(sa.select(transactions.c.status).where(
            transactions.c.id == transaction_id)).scalar_one()


def test_a_fix_in_one_hub_is_used_by_another_on_its_next_run(hubs):
    console, worker = hubs.start("console"), hubs.start("worker")
    blocked = deal(worker, "006A", department="Consulting-EMEA")
    assert _status(worker, blocked) == "parked"

    console.add_mapping(*EMEA, "7", by="ada", reason="EMEA consulting books to dept 7")

    fresh = deal(worker, "006B", department="Consulting-EMEA")  # no restart in between
    assert _status(worker, fresh) == "completed"
    assert [project["department"] for project in hubs.erp.projects.values()] == ["7"]


def test_a_parked_transaction_replayed_by_another_hub_completes(hubs):
    console, worker = hubs.start("console"), hubs.start("worker")
    blocked = deal(console, "006C", department="Consulting-EMEA")
    assert parked(console, blocked).error == "MappingMissingError"
    worker.engine.run_due()  # the worker has been running, with the maps it loaded then

    console.add_mapping(*EMEA, "7", by="ada", reason="mapped")
    assert worker.engine.replay(blocked, by="ops").accepted
    worker.engine.run_due()

    assert _status(worker, blocked) == "completed"


def test_a_restarted_hub_starts_with_the_stored_mappings(hubs):
    hubs.start("console").add_mapping(*EMEA, "7", by="ada")
    assert hubs.start("restarted").maps.get(*EMEA) == "7"


def test_a_second_fix_replaces_the_id_and_the_history_keeps_both(hubs):
    console, worker = hubs.start("console"), hubs.start("worker")
    console.add_mapping(*EMEA, "7", by="ada", reason="first guess")
    assert worker.services("live").maps.resolve(*EMEA) == "7"

    worker.add_mapping(*EMEA, "9", by="bob", reason="7 is the APAC department")

    assert console.live_maps is not None
    assert console.live_maps.refresh().get(*EMEA) == "9"  # what its next check loads
    store = OperatorMappings(hubs.db, now=hubs.clock)
    [current] = store.load()
    assert (current.external_id, current.added_by, current.reason) == (
        "9", "bob", "7 is the APAC department")
    changes = [(c.old_external_id, c.new_external_id, c.added_by) for c in store.history()]
    assert changes == [(None, "7", "ada"), ("7", "9", "bob")]


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_store_is_checked_at_most_once_per_interval_unless_a_mapping_is_missing(db, clock):
    store, ticks = OperatorMappings(db, now=clock), Ticks()
    live = LiveValueMaps(ValueMaps.from_config(api_config()), store, check_every=1.0,
                         monotonic=ticks)
    loaded = live.current()
    other_process = OperatorMappings(_other_process_engine(db), now=clock)
    other_process.add(MappingEntry(*EMEA, "7"), by="ada")
    other_process.add(MappingEntry("department", "Consulting-US", "US01", "netsuite", "8"),
                      by="ada", config_external_id="3")

    ticks.now = 0.5
    assert live.current() is loaded  # within the interval: no query, the maps as loaded
    assert loaded.get("department", "Consulting-US", "US01", "netsuite") == "3"
    assert loaded.resolve(*EMEA) == "7"  # a miss checks the store at once
    ticks.now = 1.5
    assert live.current().get("department", "Consulting-US", "US01", "netsuite") == "8"
    other_process.engine.dispose()


def test_an_unknown_value_still_reports_the_missing_mapping(hubs):
    maps = hubs.start("worker").services("live").maps
    with pytest.raises(MappingMissingError, match="Consulting-EMEA"):
        maps.resolve(*EMEA)


def _config_with_department(external_id: str | None) -> Q2CConfig:
    """The test config, with q2c.yaml mapping Consulting-EMEA for US01 to this id (or not)."""
    data = yaml.safe_load(DEMO_CONFIG_YAML)
    data["api"] = api_section()
    if external_id is not None:
        data["mappings"]["department"]["Consulting-EMEA"] = {"US01": {"netsuite": external_id}}
    return parse_config(data, env=SECRETS)


def test_operator_mapping_wins_until_q2c_yaml_changes_for_the_key(hubs):
    with_wrong_id = _config_with_department("3")
    hubs.start("console", with_wrong_id).add_mapping(*EMEA, "7", by="ada", reason="3 is wrong")

    assert hubs.start("same q2c.yaml", with_wrong_id).maps.get(*EMEA) == "7"
    assert hubs.start("q2c.yaml edited", _config_with_department("8")).maps.get(*EMEA) == "8"
    assert hubs.start("q2c.yaml caught up", _config_with_department("7")).maps.get(*EMEA) == "7"


def test_a_fix_made_after_q2c_yaml_changed_wins_again(hubs):
    hubs.start("old", _config_with_department("3")).add_mapping(*EMEA, "7", by="ada")
    edited = hubs.start("edited", _config_with_department("8"))
    assert edited.maps.get(*EMEA) == "8"
    edited.add_mapping(*EMEA, "9", by="bob", reason="8 closed")
    assert edited.maps.get(*EMEA) == "9"


def test_a_mapping_with_an_empty_field_is_refused_and_nothing_is_stored(db, clock):
    store = OperatorMappings(db, now=clock)
    with pytest.raises(OperatorMappingError, match="external id is empty"):
        store.add(MappingEntry(*EMEA, " "), by="ada")
    with pytest.raises(OperatorMappingError, match="legal entity is longer than 40"):
        store.add(MappingEntry("department", "X", "E" * 41, "netsuite", "1"), by="ada")
    assert store.load() == [] and store.history() == []


def _stored(external_id: str, config_external_id: str | None) -> OperatorMapping:
    return OperatorMapping(*EMEA, external_id, config_external_id, "ada", None,
                           datetime(2026, 12, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("in_q2c_yaml", "when_fixed", "expected_standing", "used"),
    [
        (None, None, "not_in_q2c_yaml", "7"),  # the usual missing mapping
        ("3", "3", "not_in_q2c_yaml", "7"),  # the operator corrected a wrong id
        ("8", "3", "overridden_by_q2c_yaml", "8"),  # q2c.yaml edited since: it wins
        (None, "3", "overridden_by_q2c_yaml", None),  # the key removed from q2c.yaml
        ("7", None, "in_q2c_yaml", "7"),  # copied into q2c.yaml
    ],
)
def test_standing_and_overlay(in_q2c_yaml, when_fixed, expected_standing, used):
    entries = [MappingEntry(*EMEA, in_q2c_yaml)] if in_q2c_yaml else []
    configured = ValueMaps(entries)
    mapping = _stored("7", when_fixed)
    assert standing(mapping, configured) == expected_standing
    assert overlay(configured, [mapping]).get(*EMEA) == used


def test_concurrent_fixes_of_one_key_leave_one_mapping_and_a_consistent_history(db, clock):
    store = OperatorMappings(_other_process_engine(db), now=clock)
    start = threading.Barrier(6)

    def fix(external_id: str) -> None:
        start.wait()
        store.add(MappingEntry(*EMEA, external_id), by=f"operator {external_id}")

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(fix, [str(n) for n in range(6)]))
    store.engine.dispose()

    changes = store.history()
    assert sorted(c.new_external_id for c in changes) == [str(n) for n in range(6)]
    # each change replaced the one committed before it: a chain from "nothing" to the current
    assert [c.old_external_id for c in changes] == [None] + [
        c.new_external_id for c in changes[:-1]]
    [current] = store.load()
    assert current.external_id == changes[-1].new_external_id
