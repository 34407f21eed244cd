"""Competing workers never claim the same transaction (SKIP LOCKED on PostgreSQL, the single
writer lock on SQLite)."""

from __future__ import annotations

import threading

from q2c.bench import make_events, noop_flow
from q2c.runtime.engine import SagaEngine
from q2c.runtime.inbox import Inbox, Routing


def test_two_workers_split_the_work_without_overlap(db, clock):
    flow = noop_flow()
    inbox = Inbox(db, Routing({flow.name: flow}, lambda f, p: "live"), now=clock)
    inbox.accept(make_events(60, duplicate_every=1000))
    claimed: dict[str, list[str]] = {"a": [], "b": []}
    barrier = threading.Barrier(2)

    def work(name: str) -> None:
        engine = SagaEngine(db, {flow.name: flow}, services=lambda mode: None,
                            worker_id=name, now=clock)
        barrier.wait()
        while batch := engine.claim(7):
            claimed[name] += batch
            for transaction_id in batch:
                assert engine.run(transaction_id).status == "completed"

    threads = [threading.Thread(target=work, args=(n,)) for n in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not set(claimed["a"]) & set(claimed["b"])
    assert len(claimed["a"]) + len(claimed["b"]) == 60
