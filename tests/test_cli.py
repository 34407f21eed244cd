"""The `q2c` command as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
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


def test_demo_refuses_an_erp_it_has_no_demo_for(tmp_path):
    result = runner.invoke(app, ["demo", "--erp", "sap", "--workdir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--erp: no demo for 'sap'" in result.output
    both = runner.invoke(app, ["demo", "--erp", "tryton", "--only", "opportunity-to-project",
                               "--workdir", str(tmp_path)])
    assert both.exit_code == 2
    assert "with --only opportunity-to-project" in both.output


def test_sandbox_refuses_an_unknown_sandbox(tmp_path):
    result = runner.invoke(app, ["sandbox", "sap", "--credentials-out", str(tmp_path / "c.json")])
    assert result.exit_code == 2
    assert "unknown sandbox 'sap'" in result.output


@pytest.mark.integration
def test_sandbox_tryton_serves_a_tryton_that_answers_a_json_rpc_login(tmp_path):
    credentials = tmp_path / "tryton.json"
    log = (tmp_path / "sandbox.log").open("wb")
    command = [sys.executable, "-m", "q2c.cli", "sandbox", "tryton",
               "--credentials-out", str(credentials)]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    trytond_pid = None
    try:
        deadline = time.monotonic() + 180  # the first run on a machine builds the cache
        while not credentials.exists():
            assert process.poll() is None, (tmp_path / "sandbox.log").read_text()
            assert time.monotonic() < deadline, "q2c sandbox tryton did not come up"
            time.sleep(0.2)
        served = json.loads(credentials.read_text())
        trytond_pid = served["pid"]
        assert served["base_url"].startswith("http://127.0.0.1:")
        assert credentials.stat().st_mode & 0o077 == 0  # the password is for the owner only
        login = httpx.post(
            served["rpc_url"],
            json={"id": 1, "method": "common.db.login",
                  "params": [served["username"], {"password": served["password"]}, "en"]},
            timeout=30,
        )
        assert login.status_code == 200, login.text
        user_id, session_key = login.json()["result"][:2]
        assert isinstance(user_id, int) and session_key
        wrong = httpx.post(
            served["rpc_url"],
            json={"id": 2, "method": "common.db.login",
                  "params": [served["username"], {"password": "not-it"}, "en"]},
            timeout=30,
        )
        assert wrong.status_code == 401  # it really checks the password
        printed = (tmp_path / "sandbox.log").read_text()
        assert served["base_url"] in printed and served["database"] in printed
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    assert process.returncode == 0
    with pytest.raises(ProcessLookupError):  # trytond was stopped with the command
        os.kill(trytond_pid, 0)


def test_reconcile_without_a_migration_is_a_clear_config_error(tmp_path):
    config = tmp_path / "q2c.yaml"
    config.write_text(
        "version: 1\n"
        f"store: {{url: 'sqlite:///{tmp_path / 'hub.db'}'}}\n"
        "legal_entities: [{code: US01, name: US, country: US, base_currency: USD}]\n"
        "systems:\n"
        "  netsuite: {vendor: netsuite, roles: [erp], sandbox: true}\n"
    )
    result = runner.invoke(app, ["reconcile", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert "erp_migration" in result.output


def test_reconcile_prints_each_difference_and_exits_1(monkeypatch):
    from q2c.canonical.money import Money
    from q2c.flows import erp_reconciliation
    from q2c.flows.ports import ArCustomerStatement, ArInvoiceSummary
    from q2c.reconciliation.erp_ar import Side, compare_receivables

    usd = Money.of("2000.00", "USD")
    legacy = [ArCustomerStatement("10", "Acme", "k-1", usd,
                                  [ArInvoiceSummary("1", "q2c-inv-a", "N-1", usd, usd)])]
    target = [ArCustomerStatement("7", "Acme", "k-1", Money.of("0.00", "USD"), [])]
    report = compare_receivables("US01", Side("netsuite", "NetSuite", "legacy"),
                                 Side("tryton", "Tryton", "target"), legacy, target, {"10": "7"})
    monkeypatch.setattr("q2c.bootstrap.bootstrap", lambda config: _NoHub())
    monkeypatch.setattr(erp_reconciliation, "reconcile_erp_migration",
                        lambda hub, legal_entities=None: [report])
    monkeypatch.setattr("q2c.cli._config", lambda path: None)
    result = runner.invoke(app, ["reconcile"])
    assert result.exit_code == 1
    assert "Acme" in result.output and "2,000.00" in result.output
    as_json = runner.invoke(app, ["reconcile", "--json"])
    assert json.loads(as_json.output)[0]["matched"] is False


class _NoHub:
    def close(self) -> None:
        pass


def test_mappings_list_shows_operator_mappings_with_who_why_and_what_to_copy(tmp_path, clock):
    from q2c.config import DEMO_CONFIG_YAML
    from q2c.mapping.value_maps import MappingEntry
    from q2c.runtime.operator_mappings import OperatorMappings
    from q2c.store.db import create_store_engine, upgrade

    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    config = tmp_path / "q2c.yaml"
    config.write_text(DEMO_CONFIG_YAML.replace("sqlite:///.q2c/q2c.db", store_url))
    engine = create_store_engine(store_url)
    upgrade(engine)
    store = OperatorMappings(engine, now=clock)
    emea = MappingEntry("department", "Consulting-EMEA", "UK01", "netsuite", "7")
    store.add(emea._replace(external_id="6"), by="ada", reason="first guess")
    store.add(emea, by="ada", reason="EMEA consulting books to 7")
    store.add(MappingEntry("department", "Consulting-US", "US01", "netsuite", "3"), by="bob",
              reason="same as q2c.yaml", config_external_id="3")
    store.add(MappingEntry("item", "CONSULT-SR", "*", "netsuite", "99"), by="cy",
              reason="temporary item", config_external_id="20")  # q2c.yaml now says 21
    engine.dispose()

    listed = runner.invoke(app, ["mappings", "list", "--config", str(config), "--json",
                                 "--history"])
    assert listed.exit_code == 0, listed.output
    document = json.loads(listed.output)
    by_value = {m["value"]: m for m in document["mappings"]}
    assert {v: (m["standing"], m["added_by"], m["reason"]) for v, m in by_value.items()} == {
        "Consulting-EMEA": ("not_in_q2c_yaml", "ada", "EMEA consulting books to 7"),
        "Consulting-US": ("in_q2c_yaml", "bob", "same as q2c.yaml"),
        "CONSULT-SR": ("overridden_by_q2c_yaml", "cy", "temporary item"),
    }
    assert [(c["old_external_id"], c["new_external_id"]) for c in document["history"]
            if c["value"] == "Consulting-EMEA"] == [(None, "6"), ("6", "7")]

    shown = runner.invoke(app, ["mappings", "list", "--config", str(config)])
    assert shown.exit_code == 0, shown.output
    copy_lines = [line.strip() for line in shown.output.splitlines()
                  if line.startswith("  mappings.")]
    assert copy_lines == ['mappings.department."Consulting-EMEA".UK01.netsuite: "7"']
