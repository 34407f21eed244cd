"""Screenshots of the console for the README: ``python -m q2c.console.screenshots``.

Runs the whole quote-to-cash demo (``q2c demo``, about two minutes; ``--reuse`` keeps a
previous run's store), serves the console over its store, signs in with Debian's headless
Chromium through Playwright, and saves the dashboard, an end-to-end timeline (a deal from the
CRM through the ERP, PSA and billing to the payment posted in the ERP) and the exception queue
to ``docs/``.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from q2c.api.app import create_app
from q2c.bootstrap import Hub, bootstrap
from q2c.config import DEMO_CONFIG_YAML, parse_config
from q2c.console.live import CHROMIUM, serving
from q2c.runtime.jsonutil import loads
from q2c.store.schema import steps, transactions

__all__ = ["main", "take_screenshots"]

_VIEWPORT = {"width": 1360, "height": 900}


def _hub_over(database: Path, secret: str) -> Hub:
    data = yaml.safe_load(DEMO_CONFIG_YAML)
    data["store"]["url"] = f"sqlite:///{database}"
    data["api"] = {
        "token": {"key_env": "Q2C_SCREENSHOT_KEY"},
        "clients": [
            {"id": "ops-console", "secret_env": "Q2C_SCREENSHOT_SECRET", "scopes": ["operate"]}
        ],
    }
    config = parse_config(
        data,
        env={"Q2C_SCREENSHOT_KEY": secrets.token_hex(32), "Q2C_SCREENSHOT_SECRET": secret},
        source="screenshot config",
    )
    return bootstrap(config, migrate=False)


def paid_deal(hub: Hub) -> str | None:
    """A deal whose invoice was paid: its timeline runs CRM → ERP → PSA → billing → ERP."""
    with hub.db.connect() as connection:
        for payment in connection.execute(
            select(transactions.c.input).where(
                transactions.c.flow == "payment_to_ledger", transactions.c.status == "completed"
            )
        ):
            for application in loads(payment.input)["data"].get("applications") or []:
                invoice = connection.execute(
                    select(transactions.c.input).where(
                        transactions.c.flow == "invoice_to_ledger",
                        transactions.c.business_key == application["invoice_id"],
                    )
                ).first()
                contract = invoice and loads(invoice.input)["data"].get("contract_id")
                if not contract:
                    continue
                deal = connection.execute(
                    select(transactions.c.correlation_id)
                    .join(steps, steps.c.transaction_id == transactions.c.id)
                    .where(
                        transactions.c.flow == "opportunity_to_project",
                        steps.c.step == "create_sales_order",
                        steps.c.output.contains(f'"{contract}"'),
                    )
                ).first()
                if deal is not None:
                    return str(deal.correlation_id)
    return None


def take_screenshots(hub: Hub, secret: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    correlation = paid_deal(hub)
    with serving(create_app(hub)) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport=_VIEWPORT)  # type: ignore[arg-type]
        page.goto(f"{base}/console/")
        page.fill("input[name=name]", "ada@acme.example")
        page.fill("input[name=client_id]", "ops-console")
        page.fill("input[name=client_secret]", secret)
        page.click("button[type=submit]")
        page.wait_for_selector("#last-success")

        def shot(name: str, **options: Any) -> None:
            path = out / name
            page.screenshot(path=str(path), **options)
            saved.append(path)

        shot("console-dashboard.png", full_page=True)
        if correlation is not None:
            page.goto(f"{base}/console/timeline/{correlation}")
            page.wait_for_selector("article.tx")
            shot("console-timeline.png", full_page=False)
        page.goto(f"{base}/console/exceptions")
        page.wait_for_selector("h1")
        shot("console-exceptions.png", full_page=False)
        browser.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--workdir", type=Path, default=Path(".q2c/screenshots"))
    parser.add_argument("--reuse", action="store_true", help="keep the previous demo's store")
    args = parser.parse_args(argv)
    from q2c.observability import configure_logging

    configure_logging("ERROR")
    database = args.workdir / "demo.db"
    if not (args.reuse and database.exists()):
        from q2c.demo import run_demo

        print("running the quote-to-cash demo (about two minutes)…", file=sys.stderr)
        summary = run_demo(workdir=args.workdir)
        if not summary["ok"]:
            print("the demo did not finish cleanly; screenshots not taken", file=sys.stderr)
            return 1
    secret = secrets.token_urlsafe(24)
    hub = _hub_over(database, secret)
    try:
        for path in take_screenshots(hub, secret, args.out):
            print(path)
    finally:
        hub.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
