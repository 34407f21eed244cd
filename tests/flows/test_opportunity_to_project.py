"""Opportunity-to-project through the real saga engine and store, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from q2c.errors import RateLimitedError, RetriableError
from q2c.flows.ports import ErpCustomer
from q2c.runtime.exception_queue import ExceptionFilter
from q2c.store.schema import outbox, steps, xref
from tests.flows.helpers import MAPPINGS, World, approved_event, proposal


def _count(db: sa.Engine, table: sa.Table, *where: object) -> int:
    with db.connect() as c:
        return c.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()


def test_happy_path_creates_each_record_once_and_publishes(db, clock):
    world = World(db, clock)
    tx = world.submit(proposal("006A"))
    outcomes = world.engine.run_due()
    assert [o.status for o in outcomes] == ["completed"]
    assert len(world.erp.customers) == 1
    assert len(world.erp.projects) == 1
    assert len(world.erp.sales_orders) == 1
    assert world.crm.write_backs["006A"]["sales_order"] == next(
        iter(world.erp.sales_orders.values()))["id"]
    assert _count(db, outbox, outbox.c.type == "project.activated") == 1
    assert _count(db, steps, steps.c.transaction_id == tx, steps.c.status == "done") == 9
    customer_links = world.xref.search(object_type="customer")
    assert {link["system"] for link in customer_links} == {"crm", "erp"}
    assert world.status(tx) == "completed"


def test_duplicate_event_and_second_event_for_same_key_are_not_processed_twice(db, clock):
    world = World(db, clock)
    p = proposal("006B")
    world.crm.proposals[p.opportunity_id] = p
    first, again, other_id = world.inbox.accept(
        [approved_event(p, "e1"), approved_event(p, "e1"), approved_event(p, "e2")]
    )
    assert first.status == "accepted"
    assert again.status == "duplicate"
    assert other_id.status == "duplicate_business_key"
    assert other_id.transaction_id == first.transaction_id
    assert world.inbox.accept([approved_event(p, "e1")])[0].status == "duplicate"
    world.engine.run_due()
    assert world.engine.run_due() == []
    assert len(world.erp.sales_orders) == 1
    assert world.crm.write_back_calls == 1


def test_retriable_error_waits_for_retry_after_then_succeeds(db, clock):
    world = World(db, clock, attempts=3)
    failures = iter([RateLimitedError("slow down", retry_after=30)])

    def flaky(operation: str) -> None:
        if operation == "upsert_project":
            error = next(failures, None)
            if error:
                raise error

    world.erp.fault = flaky
    tx = world.submit(proposal("006C"))
    [outcome] = world.engine.run_due()
    assert outcome.status == "retry_wait"
    assert outcome.step == "create_project"
    clock.advance(20)
    assert world.engine.run_due() == []  # Retry-After is a floor
    clock.advance(11)
    [outcome] = world.engine.run_due()
    assert outcome.status == "completed"
    assert len(world.erp.projects) == 1
    with db.connect() as c:
        attempt = c.execute(sa.select(steps.c.attempt).where(
            steps.c.transaction_id == tx, steps.c.step == "create_project")).scalar_one()
    assert attempt == 2


def test_retries_exhausted_parks_with_business_message(db, clock):
    world = World(db, clock, attempts=2)

    def down(operation: str) -> None:
        if operation == "find_customer":
            raise RetriableError("erp could not be reached", detail="ConnectError")

    world.erp.fault = down
    tx = world.submit(proposal("006D"))
    world.engine.run_due()
    clock.advance(5)
    [outcome] = world.engine.run_due()
    assert outcome.status == "parked"
    [parked] = world.engine.exception_queue.list()
    assert parked.transaction_id == tx
    assert parked.step == "resolve_customer"
    assert "gave up after 2 attempts" in parked.message
    assert parked.kind == "retriable"
    assert _count(db, outbox, outbox.c.type == "transaction.failed") == 1


def test_missing_mapping_parks_then_fix_and_replay_resumes_at_failed_step(db, clock):
    world = World(db, clock)
    tx = world.submit(proposal("006E", department="Consulting-EMEA"))
    [outcome] = world.engine.run_due()
    assert outcome.status == "parked"
    [parked] = world.engine.exception_queue.list()
    assert parked.step == "enrich"
    assert "Consulting-EMEA" in parked.message
    assert "US01" in parked.message
    assert parked.suggested_fix
    assert len(world.erp.customers) == 1  # resolve_customer had already run

    fetches_before = _count(db, steps, steps.c.transaction_id == tx)
    world.maps = world.maps.with_mapping("department", "Consulting-EMEA", "US01", "erp", "9")
    preview = world.engine.replay(tx, by="ops@example.com", dry_run=True)
    assert preview.dry_run and preview.accepted
    assert {w["operation"] for w in preview.intended_writes} >= {
        "upsert_project", "upsert_sales_order", "write_back"}
    assert world.erp.projects == {}  # the dry run wrote nothing
    assert world.status(tx) == "parked"

    replay = world.engine.replay(tx, by="ops@example.com", reason="mapping added")
    assert replay.accepted and replay.from_step == "enrich"
    [outcome] = world.engine.run_due()
    assert outcome.status == "completed"
    assert len(world.erp.customers) == 1  # not created again
    assert _count(db, steps, steps.c.transaction_id == tx) == 9
    assert fetches_before == 4  # fetch, validate, resolve done + enrich failed
    [resolved] = world.engine.exception_queue.list(ExceptionFilter(status="resolved"))
    assert resolved.transaction_id == tx
    assert world.engine.exception_queue.list() == []


def test_replay_is_capped_and_only_for_parked(db, clock):
    world = World(db, clock)
    tx = world.submit(proposal("006F", department="Nowhere"))
    world.engine.run_due()
    for _ in range(3):
        assert world.engine.replay(tx, by="ops").accepted
        world.engine.run_due()
    capped = world.engine.replay(tx, by="ops")
    assert not capped.accepted
    assert "cap 3" in capped.message
    assert not world.engine.replay("nope", by="ops").accepted


def test_bulk_replay_by_filter(db, clock):
    world = World(db, clock)
    for opp in ("006G", "006H"):
        world.submit(proposal(opp, department="Consulting-EMEA"))
    world.engine.run_due()
    assert len(world.engine.exception_queue.list(ExceptionFilter(step="enrich"))) == 2
    world.maps = world.maps.with_mapping("department", "Consulting-EMEA", "US01", "erp", "9")
    outcomes = world.engine.replay_many(ExceptionFilter(message_contains="Consulting-EMEA"),
                                        by="ops")
    assert [o.accepted for o in outcomes] == [True, True]
    assert {o.status for o in world.engine.run_due()} == {"completed"}


def test_crash_after_side_effect_resumes_without_duplicates(db, clock):
    world = World(db, clock)

    class Crash(BaseException):
        pass

    crashed = []

    def crash_once(operation: str) -> None:
        if operation == "write_back" and not crashed:
            crashed.append(operation)
            raise Crash  # like SIGKILL: nothing after this line runs in the worker

    world.crm.fault = crash_once
    tx = world.submit(proposal("006I"))
    with pytest.raises(Crash):
        world.engine.run_due()
    assert world.status(tx) == "running"
    successor = world.make_engine("w2")
    assert successor.run_due() == []  # lease still held by the dead worker
    clock.advance(61)
    [outcome] = successor.run_due()
    assert outcome.status == "completed"
    assert len(world.erp.sales_orders) == 1 and len(world.erp.projects) == 1
    assert _count(db, outbox, outbox.c.type == "project.activated") == 1


def test_restarted_worker_takes_back_its_own_claims(db, clock):
    world = World(db, clock)
    tx = world.submit(proposal("006J"))
    assert world.engine.claim() == [tx]
    restarted = world.make_engine("w1")
    assert restarted.release_own_claims() == 1
    assert [o.status for o in restarted.run_due()] == ["completed"]


def test_lost_lease_stops_the_slow_worker(db, clock):
    world = World(db, clock)
    tx = world.submit(proposal("006K"))
    slow = world.engine
    assert slow.claim() == [tx]
    clock.advance(61)
    fast = world.make_engine("w2")
    [outcome] = fast.run_due()
    assert outcome.status == "completed"
    assert slow.run(tx).status == "lost"
    assert len(world.erp.sales_orders) == 1


def test_shadow_mode_computes_everything_and_writes_nothing(db, clock):
    world = World(db, clock, mode="shadow")
    tx = world.submit(proposal("006L"))
    [outcome] = world.engine.run_due()
    assert outcome.status == "completed"
    assert world.erp.customers == {} and world.erp.projects == {}
    assert world.crm.write_backs == {}
    assert _count(db, outbox) == 0
    assert _count(db, xref) == 0
    assert world.status(tx) == "completed"


def test_approval_check_refuses_customer_without_tax_id(db, clock):
    world = World(db, clock)
    world.submit(proposal("006M", tax_id=None))
    [outcome] = world.engine.run_due()
    assert outcome.status == "parked"
    assert "no tax id" in outcome.error.message
    assert world.erp.customers == {}


def test_existing_erp_customer_is_matched_by_tax_id_not_created(db, clock):
    world = World(db, clock)
    existing = ErpCustomer(erp_id="777", number="CUST-777", legal_name="Old Name Inc",
                           subsidiary="1", tax_id="US-12-3456789", external_id="legacy-1")
    world.erp.customers["legacy-1"] = existing
    tx = world.submit(proposal("006N", tax_id="US-12-3456789"))
    [outcome] = world.engine.run_due()
    assert outcome.status == "completed"
    assert list(world.erp.customers) == ["legacy-1"]
    assert world.crm.write_backs["006N"]["customer"] == "777"
    [link] = world.xref.search(system="erp", object_type="customer")
    assert link["external_id"] == "777"
    with db.connect() as c:
        output = c.execute(sa.select(steps.c.output).where(
            steps.c.transaction_id == tx, steps.c.step == "resolve_customer")).scalar_one()
    assert '"matched_by":"erp_match"' in output


def test_duplicate_crm_account_for_same_erp_customer_is_parked(db, clock):
    world = World(db, clock)
    world.submit(proposal("006N", tax_id="US-DUP-1"))
    world.engine.run_due()
    second = proposal("006O", tax_id="US-DUP-1")
    second = second.model_copy(update={"customer": second.customer.model_copy(
        update={"id": "001other", "xrefs": {"crm": "001other"}})})
    world.submit(second)
    [outcome] = world.engine.run_due()
    assert outcome.status == "parked"
    assert "duplicate customer records in crm" in outcome.error.message
    assert len(world.erp.customers) == 1


def test_second_success_resolves_older_exceptions_for_same_key(db, clock):
    world = World(db, clock, mappings={**MAPPINGS, "department": {}})
    world.submit(proposal("006P", version=1))
    world.engine.run_due()
    assert len(world.engine.exception_queue.list()) == 1
    world.maps = world.maps.with_mapping("department", "Consulting-US", "US01", "erp", "3")
    world.submit(proposal("006P", version=2))
    [outcome] = world.engine.run_due()
    assert outcome.status == "completed"
    assert world.engine.exception_queue.list() == []
