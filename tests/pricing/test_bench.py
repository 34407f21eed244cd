from __future__ import annotations

from q2c.pricing.bench import bench_rating


def test_bench_rating_reports_count_and_seconds() -> None:
    count, seconds = bench_rating(50)
    assert count == 50
    assert seconds >= 0
