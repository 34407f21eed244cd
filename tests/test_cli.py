"""The `q2c` command as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from q2c.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_demo_json_provisions_every_deal_exactly_once(tmp_path):
    result = runner.invoke(app, ["demo", "--only", "opportunity-to-project", "--json",
                                 "--workdir", str(tmp_path), "--opportunities", "15"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["ok"] is True
    assert summary["flows"]["opportunity_to_project"] == {"completed": 15}
    assert summary["first_pass"]["parked"] == 2
    assert {e["step"] for e in summary["exceptions"]} == {"enrich", "create_sales_order"}
    unmapped = next(e for e in summary["exceptions"] if e["step"] == "enrich")
    assert unmapped["message"] == (
        "Department 'Consulting-EMEA' has no NetSuite mapping for subsidiary UK01")
    assert summary["events"]["duplicate"] == 15
    assert summary["netsuite"]["sales_orders"] == 15
    assert summary["netsuite"]["duplicate_external_ids"] == 0
    assert summary["salesforce"]["opportunities_written_back"] == 15
    assert summary["faults"]["netsuite_429_served"] > 0
    for values in summary["contract_value"].values():
        assert values["proposed"] == values["booked_in_erp"]
    assert summary["outbox"]["project.activated"] == 15


def test_full_demo_json_reconciles_to_zero(tmp_path):
    result = runner.invoke(app, ["demo", "--json", "--workdir", str(tmp_path),
                                 "--time-entries", "600"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["ok"] is True
    assert summary["unexplained_differences"] == "0.00"
    assert summary["flows"]["invoice_to_ledger"] == {"completed": 30}


def test_demo_refuses_an_unknown_part(tmp_path):
    result = runner.invoke(app, ["demo", "--only", "invoices", "--workdir", str(tmp_path)])
    assert result.exit_code != 0
    assert "--only: unknown part 'invoices'" in result.output


def test_contracts_check_accepts_the_committed_contracts():
    result = runner.invoke(app, ["contracts", "check", "--root", str(ROOT / "contracts")])
    assert result.exit_code == 0, result.output


def test_db_upgrade_on_a_fresh_sqlite_file(tmp_path, monkeypatch):
    config = tmp_path / "q2c.yaml"
    example = (ROOT / "q2c.example.yaml").read_text()
    config.write_text(example.replace("sqlite:///.q2c/q2c.db",
                                      f"sqlite:///{tmp_path / 'store.db'}"))
    for name in ("SF_CLIENT_ID", "SF_CLIENT_SECRET", "NS_CLIENT_ID", "NS_CERTIFICATE_ID"):
        monkeypatch.setenv(name, "x")
    key = tmp_path / "secrets" / "netsuite-m2m.pem"
    key.parent.mkdir()
    key.write_text("-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n")
    result = runner.invoke(app, ["db", "upgrade", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "store.db").exists()


def test_bad_config_names_the_key(tmp_path):
    config = tmp_path / "q2c.yaml"
    config.write_text("version: 1\nlegal_entities: []\nsystems: {}\n")
    result = runner.invoke(app, ["replay", "--config", str(config)])
    assert result.exit_code == 2
    assert "legal_entities" in result.output
