"""The worker loop: claim due transactions, run them, relay the outbox, sleep when idle.

The only place q2c waits on purpose: between polls, and until the next retry is due.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.exc import OperationalError

if TYPE_CHECKING:
    from q2c.bootstrap import Hub

__all__ = ["run_until_idle", "run_worker"]

log = structlog.get_logger("q2c.worker")


def run_until_idle(
    hub: Hub,
    *,
    batch: int = 50,
    max_wait_seconds: float = 30.0,
    on_progress: Callable[[int], None] | None = None,
    progress_statuses: tuple[str, ...] = ("completed", "parked"),
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Work until nothing is due or waiting (retries included); returns transactions run.

    ``on_progress`` hears how many transactions reached one of ``progress_statuses``.
    """
    ran = 0
    while True:
        outcomes = hub.engine.run_due(batch)
        hub.payloads.flush()
        hub.relay.publish_pending()
        ran += len(outcomes)
        finished = sum(o.status in progress_statuses for o in outcomes)
        if on_progress and finished:
            on_progress(finished)
        if outcomes:
            continue
        due = hub.engine.next_due_at()
        if due is None:
            return ran
        wait = (due - hub.clock()).total_seconds()
        if wait > max_wait_seconds:
            return ran
        sleep(max(0.01, min(wait, 1.0)))


def run_worker(
    hub: Hub, *, once: bool = False, poll_seconds: float = 0.5, poll_crm: bool = True
) -> None:
    """Loop until SIGTERM/SIGINT (or, with ``once``, until idle)."""
    from q2c.errors import Q2CError

    stopping = False
    feeds = hub.feeds(poll_crm=poll_crm)

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    released = hub.engine.release_own_claims()
    log.info("worker started", worker_id=hub.engine.worker_id, reclaimed=released)
    while not stopping:
        for feed in feeds:
            try:
                feed.poll()
            except Q2CError as error:
                log.warning(
                    "feed failed",
                    feed=type(feed).__name__,
                    error=error.message,
                    detail=error.detail,
                )
        try:
            ran = run_until_idle(hub, max_wait_seconds=poll_seconds)
        except OperationalError as exc:
            # The store is briefly unavailable (locked, failing over): keep the worker alive;
            # leases make sure nothing it held is lost or run twice.
            log.error("store unavailable; backing off", detail=str(exc)[-500:])
            time.sleep(min(5.0, poll_seconds * 4))
            continue
        if once and hub.engine.next_due_at() is None:
            break
        if not ran:
            time.sleep(poll_seconds)
    log.info("worker stopped")
