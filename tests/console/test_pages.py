"""Console read pages: dashboard panels, transaction search, the end-to-end timeline, kept
payloads (redacted) and the cross-reference browser."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa
from markupsafe import escape

from q2c.console.dashboard import build_dashboard, percentile
from q2c.console.timeline import search_transactions, thread_of
from q2c.runtime.payload_history import REDACTED
from q2c.store.schema import transactions
from tests.console.conftest import deal, parked


def _row(page: str, flow: str) -> str:
    found = re.search(rf'<tr class="([^"]*)">\s*<td><a href="/console/transactions\?flow={flow}"'
                      r'.*?</tr>', page, re.S)
    assert found is not None, f"no row for {flow}"
    return found.group(0)


def test_dashboard_counts_throughput_failures_and_aging(hub, operator):
    deal(hub, "006A")
    deal(hub, "006B")
    deal(hub, "006C", department="Consulting-EMEA")
    board = build_dashboard(hub.db, now=hub.clock(), flows=list(hub.flows),
                            enabled={"opportunity_to_project"})
    [flow] = board.throughput
    assert flow.flow == "opportunity_to_project" and flow.totals == (2, 1, 0)
    assert board.totals["open_exceptions"] == 1 and board.aging_totals[0] == 1
    page = operator.get("/console/").text
    assert "Throughput and failures per flow" in page and "<svg" in page
    assert "2 ok" in page and "1 failed" in page
    assert "Exception aging" in page and "Latency per flow" in page


def test_exception_aging_moves_with_time(hub, clock):
    deal(hub, "006D", department="Consulting-EMEA")
    clock.advance(5 * 3600)
    board = build_dashboard(hub.db, now=hub.clock(), flows=list(hub.flows), enabled=set())
    assert board.aging["opportunity_to_project"] == [0, 0, 1, 0, 0]


def test_a_flow_silent_past_its_threshold_is_highlighted(hub, clock, operator):
    deal(hub, "006E")
    fresh = operator.get("/console/").text
    assert "stale" not in _row(fresh, "opportunity_to_project")
    clock.advance(5 * 3600)  # the default threshold is 4 h
    silent = operator.get("/console/").text
    row = _row(silent, "opportunity_to_project")
    assert 'class="stale"' in row and "5.0 h ago" in row
    # an enabled flow that never succeeded is stale too
    assert 'class="stale"' in _row(silent, "invoice_to_ledger") and "never" in silent


def test_latency_percentiles_come_from_the_transactions(hub, clock):
    with hub.db.begin() as c:
        for n, seconds in enumerate([1, 2, 3, 4, 100]):
            created = clock() - timedelta(minutes=10)
            c.execute(sa.insert(transactions).values(
                id=f"t{n}", flow="invoice_to_ledger", business_key=f"in_{n}", version=1,
                mode="live", status="completed", correlation_id=f"c{n}", event_type="x",
                input="{}", attempts=1, replay_count=0, created_at=created, updated_at=created,
                completed_at=created + timedelta(seconds=seconds)))
    board = build_dashboard(hub.db, now=clock(), flows=list(hub.flows), enabled=set(),
                            window="1h")
    [latency] = board.latency
    assert (latency.count, latency.p50, latency.max) == (5, 3.0, 100.0)
    assert latency.p95 == percentile([1, 2, 3, 4, 100], 95) == 100.0


def test_transaction_search_filters_and_pages(hub, clock, operator):
    ids = []
    for n in range(5):
        ids.append(deal(hub, f"006P{n}"))
        clock.advance(1)
    parked_id = deal(hub, "006PX", department="Consulting-EMEA")
    first = search_transactions(hub.db, flow="opportunity_to_project", limit=2)
    assert [r.id for r in first.rows] == [parked_id, ids[4]]
    second = search_transactions(hub.db, flow="opportunity_to_project", limit=2,
                                 cursor=first.next_cursor)
    assert [r.id for r in second.rows] == [ids[3], ids[2]]
    assert [r.id for r in search_transactions(hub.db, status="parked").rows] == [parked_id]
    assert [r.id for r in search_transactions(hub.db, business_key="006P3").rows] == [ids[3]]
    page = operator.get("/console/transactions", params={"status": "parked"}).text
    assert "006PX" in page and "006P3" not in page
    partial = operator.get("/console/transactions", params={"business_key": "006P1"},
                           headers={"HX-Request": "true"})
    assert "<html" not in partial.text and "006P1" in partial.text
    by_system = operator.get("/console/transactions", params={"system": "erp"}).text
    assert "006P0" in by_system


def test_timeline_shows_every_step_with_system_attempts_and_external_ids(hub, operator):
    transaction_id = deal(hub, "006F")
    page = operator.get(f"/console/transactions/{transaction_id}")
    assert page.status_code == 200 and "/console/timeline/" in str(page.url)
    text = page.text
    for step in ("fetch_proposal", "resolve_customer", "create_project", "write_back_crm"):
        assert f"<td>{step}</td>" in text
    assert "erp_customer_id" in text and "<svg" in text
    thread = thread_of(hub.db, transaction_id)  # the correlation id is the transaction id
    [linked] = thread.transactions
    assert all(s.status == "done" and s.attempt == 1 for s in linked.steps)


def test_timeline_follows_business_keys_across_flows(hub, operator):
    first = deal(hub, "006G")
    project = next(s.external_ids["project_id"]
                   for s in thread_of(hub.db, first).transactions[0].steps
                   if "project_id" in s.external_ids)
    with hub.db.begin() as c:  # a PSA delivery naming the project, with its own correlation
        c.execute(sa.insert(transactions).values(
            id="delivery-1", flow="delivery_to_billing", business_key="kantata:time_entry:1",
            version=1, mode="live", status="completed", correlation_id="corr-delivery",
            event_type="delivery.approved",
            input=f'{{"data":{{"id":"kantata:time_entry:1","project_id":"{project}"}}}}',
            attempts=1, replay_count=0, created_at=hub.clock(), updated_at=hub.clock()))
    thread = thread_of(hub.db, first)
    assert [t.row.flow for t in thread.transactions] == ["opportunity_to_project",
                                                         "delivery_to_billing"]
    assert thread.transactions[1].how == project
    page = operator.get(f"/console/timeline/{first}").text
    assert "PSA: delivery" in page and "kantata:time_entry:1" in page


def test_payload_view_is_redacted(hub, operator):
    hub.payloads.record_inbound(system="salesforce", operation="webhook", correlation_id="c-1",
                                body=b'{"password": "hunter2", "amount": "5"}',
                                headers={"Authorization": "Bearer abc"}, status=202)
    hub.payloads.flush()
    [kept] = hub.payloads.for_correlation("c-1")
    page = operator.get(f"/console/payloads/{kept['id']}").text
    assert "hunter2" not in page and "Bearer abc" not in page
    assert str(escape(REDACTED)) in page and "amount" in page
    assert operator.get("/console/payloads/999999").status_code == 404


def test_cross_reference_browser_searches_by_system_and_id(hub, operator):
    deal(hub, "006H")
    rows = hub.xref.search(system="netsuite")
    assert rows
    page = operator.get("/console/xref", params={"system": "netsuite"}).text
    assert all(r["external_id"] in page for r in rows)
    canonical = rows[0]["canonical_id"]
    one = operator.get("/console/xref", params={"canonical_id": canonical}).text
    assert canonical in one and "History of" in one
    none = operator.get("/console/xref", params={"external_id": "no-such-id"}).text
    assert "No cross-reference matches" in none


def test_exception_queue_shows_the_business_message_and_fix(hub, operator):
    item = parked(hub, deal(hub, "006J", department="Consulting-EMEA"))
    page = operator.get("/console/exceptions").text
    assert str(escape(item.message)) in page and str(escape(item.suggested_fix)) in page
    assert f"/console/exceptions/{item.id}/fix-mapping" in page
    detail = operator.get(f"/console/exceptions/{item.id}").text
    assert "Consulting-EMEA" in detail and "Technical detail" in detail
    assert operator.get("/console/exceptions", params={"status": "resolved"}).text.count(
        'class="exception') == 0
