"""The console in a real browser: Debian's headless Chromium driven by Playwright against the
app served by uvicorn on a loopback port. Sign in, open the dashboard, find the failed
transaction, read its message, fix the mapping (which replays it) and see it complete."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from q2c.api.app import create_app
from q2c.bootstrap import utcnow
from q2c.console.live import CHROMIUM, serving
from tests.console.conftest import OPS_SECRET, build_hub, deal

pytestmark = pytest.mark.integration


@pytest.fixture
def browser_page(sqlite_db) -> Iterator[tuple[Page, str, object]]:
    hub = build_hub(sqlite_db, utcnow)
    deal(hub, "006OK")
    stuck = deal(hub, "006EMEA", department="Consulting-EMEA")
    try:
        with serving(create_app(hub)) as base, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(10_000)
            yield page, base, (hub, stuck)
            browser.close()
    finally:
        hub.close()


def test_operator_fixes_a_missing_mapping_in_the_browser(browser_page):
    page, base, (hub, stuck) = browser_page
    page.goto(f"{base}/console/")
    expect(page.locator("h1")).to_have_text("Sign in to the q2c console")
    page.fill("input[name=name]", "ada@acme.example")
    page.fill("input[name=client_id]", "ops")
    page.fill("input[name=client_secret]", OPS_SECRET)
    page.click("button[type=submit]")

    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator("#last-success")).to_contain_text("opportunity_to_project")
    expect(page.locator(".kpi.bad").first).to_contain_text("1")

    page.click("nav >> text=Transactions")
    page.select_option("select[name=status]", "parked")  # htmx swaps the results in
    expect(page.locator("#transactions tbody tr")).to_have_count(1)
    page.click("#transactions >> text=006EMEA")

    expect(page.locator("h1")).to_have_text("End-to-end timeline")
    message = page.locator(f"#tx-{stuck} .notice.error")
    expect(message).to_contain_text("Department 'Consulting-EMEA' has no NetSuite mapping")
    message.locator("a").click()

    expect(page.locator(".message")).to_contain_text("Consulting-EMEA")
    page.click("text=Fix mapping")
    expect(page.locator("input[name=value]")).to_have_value("Consulting-EMEA")
    expect(page.locator("input[name=legal_entity]")).to_have_value("US01")
    page.fill("input[name=external_id]", "7")
    page.click("button:has-text('Add mapping and replay 1')")

    expect(page.locator("h1")).to_have_text("Mapping added")
    expect(page.locator("#results")).to_contain_text("006EMEA")
    expect(page.locator("#results .badge")).to_have_text("completed")

    page.goto(f"{base}/console/transactions/{stuck}")
    expect(page.locator(f"#tx-{stuck} header .badge").first).to_have_text("completed")
    page.click("nav >> text=Exceptions")
    expect(page.locator("main")).to_contain_text("Nothing here")
    assert hub.maps.get("department", "Consulting-EMEA", "US01", "netsuite") == "7"
