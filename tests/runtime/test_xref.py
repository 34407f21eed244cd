from __future__ import annotations

import threading

import pytest

from q2c.runtime.flow import XrefLink
from q2c.runtime.xref import XrefConflictError, XrefHub


def test_link_lookup_both_ways_and_idempotent(db, clock):
    hub = XrefHub(db, now=clock)
    hub.link(XrefLink("cust_1", "customer", "netsuite", "1042"))
    hub.link(XrefLink("cust_1", "customer", "netsuite", "1042"))  # same link again: no-op
    hub.link(XrefLink("cust_1", "customer", "salesforce", "001A"))
    assert hub.canonical_id("netsuite", "customer", "1042") == "cust_1"
    assert hub.external_ids("cust_1", "customer") == {"netsuite": "1042", "salesforce": "001A"}
    assert len(hub.history("cust_1")) == 2


def test_external_record_belongs_to_one_canonical_object(db, clock):
    hub = XrefHub(db, now=clock)
    hub.link(XrefLink("cust_1", "customer", "netsuite", "1042"))
    with pytest.raises(XrefConflictError) as info:
        hub.link(XrefLink("cust_2", "customer", "netsuite", "1042"))
    assert "already linked" in info.value.message


def test_one_record_per_system_per_canonical_object_and_relink_keeps_history(db, clock):
    hub = XrefHub(db, now=clock)
    hub.link(XrefLink("cust_1", "customer", "netsuite", "1042"))
    with pytest.raises(XrefConflictError) as info:
        hub.link(XrefLink("cust_1", "customer", "netsuite", "2000"))
    assert "duplicate customer records in netsuite" in info.value.message
    hub.relink(XrefLink("cust_1", "customer", "netsuite", "2000"), changed_by="migration")
    assert hub.external_ids("cust_1", "customer") == {"netsuite": "2000"}
    history = hub.history("cust_1")
    assert (history[-1]["old_external_id"], history[-1]["new_external_id"]) == ("1042", "2000")
    assert history[-1]["changed_by"] == "migration"


def test_concurrent_writers_agree_on_one_link(db, clock):
    hub = XrefHub(db, now=clock)
    outcomes: list[str] = []
    messages: list[str] = []
    barrier = threading.Barrier(6)

    def claim(canonical: str) -> None:
        barrier.wait()
        try:
            hub.link(XrefLink(canonical, "project", "netsuite", "77"))
            outcomes.append(f"linked {canonical}")
        except XrefConflictError as error:
            outcomes.append("conflict")
            messages.append(f"{canonical}: {error.message} {error.detail}")

    threads = [threading.Thread(target=claim, args=(f"proj_{i % 2}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winner = hub.canonical_id("netsuite", "project", "77")
    assert winner in ("proj_0", "proj_1")
    loser = "proj_1" if winner == "proj_0" else "proj_0"
    assert f"linked {loser}" not in outcomes
    assert outcomes.count("conflict") == 3, messages
    assert len(hub.search(system="netsuite", object_type="project")) == 1
