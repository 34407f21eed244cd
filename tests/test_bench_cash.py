"""``q2c bench --cash`` measures work that really happened, and says so in its figures."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from q2c.bench_cash import CashBenchSizes, _cash_hub, bench_cash, make_entries
from q2c.cli import app
from tests.test_cli import runner


def test_bench_cash_reports_every_stage_with_its_baseline(tmp_path):
    result = runner.invoke(app, ["bench", "--cash", "--json", "--entries", "1200",
                                 "--contracts", "6", "--month-end-contracts", "8"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    intake = rows["intake: batches checked + recorded once"]
    assert intake["count"] == 1200 and intake["ratio_to_baseline"] > 0
    assert rows["billing runs: rate, invoice in Stripe, record inclusion"]["count"] == 6
    assert rows["end to end: rated + routed to invoices"]["count"] == 1200
    assert rows["month-end invoice run: 8 contracts"]["count"] == 8
    assert rows["rating: time & materials, pure"]["ratio_to_baseline"] > 0


def test_the_bench_refuses_to_report_when_stripe_and_the_hub_disagree(tmp_path):
    with _cash_hub(tmp_path, 2) as bench:
        bench.intake(make_entries(40, 2))
        bench.month_end()
        bench.check(40)  # agrees: 40 entries billed on 2 finalized invoices
        [invoice, _] = bench.stripe.state.all_of("invoice")
        invoice["total"] += 1  # one cent more in Stripe than the hub billed
        with pytest.raises(RuntimeError, match="Stripe invoiced"):
            bench.check(40)


def test_entries_split_evenly_and_price_on_both_rate_card_versions(tmp_path):
    entries = make_entries(300, 3)
    assert {e.project_id for e in entries} == {"prj-0", "prj-1", "prj-2"}
    dates = {e.work_date.day for e in entries}
    assert min(dates) < 16 <= max(dates)  # both sides of the mid-month rate change
    assert all(e.quantity > Decimal(0) for e in entries)
    results = bench_cash(tmp_path, CashBenchSizes(entries=300, contracts=3,
                                                  month_end_contracts=2, rating_entries=100))
    assert [r.count for r in results][-1] == 2
