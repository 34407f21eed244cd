from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from q2c.connectors.http import TokenBucket, parse_retry_after
from q2c.runtime.retry import RetryPolicy


def test_backoff_grows_exponentially_and_is_capped():
    policy = RetryPolicy(attempts=10, initial_seconds=1, multiplier=2, max_seconds=10, jitter=0)
    assert [policy.delay(n) for n in range(1, 6)] == [1, 2, 4, 8, 10]


@given(attempt=st.integers(1, 20), retry_after=st.floats(0, 1000, allow_nan=False))
def test_retry_after_is_a_floor(attempt, retry_after):
    policy = RetryPolicy(attempts=30, initial_seconds=0.5, max_seconds=60, jitter=0.2)
    assert policy.delay(attempt, retry_after=retry_after, rng=random.Random(1)) >= retry_after


@given(attempt=st.integers(1, 20), seed=st.integers(0, 10_000))
def test_jitter_stays_within_its_fraction(attempt, seed):
    policy = RetryPolicy(attempts=30, initial_seconds=1, max_seconds=30, jitter=0.25)
    base = min(30, 2 ** (attempt - 1))
    delay = policy.delay(attempt, rng=random.Random(seed))
    assert base * 0.75 - 1e-9 <= delay <= base * 1.25 + 1e-9


def test_exhaustion_and_bad_policies():
    assert RetryPolicy(attempts=3).exhausted(3)
    assert not RetryPolicy(attempts=3).exhausted(2)
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=1.5)


def test_parse_retry_after_seconds_and_http_date():
    assert parse_retry_after("7") == 7
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", now=now) == pytest.approx(30)
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now=now) == 0


def test_token_bucket_paces_after_the_burst():
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    bucket = TokenBucket(rate=10, capacity=3, clock=lambda: clock[0], sleep=sleep)
    waits = [bucket.acquire() for _ in range(6)]
    assert waits[:3] == [0, 0, 0]
    assert waits[3:] == pytest.approx([0.1, 0.1, 0.1])
    assert sum(slept) == pytest.approx(0.3)
