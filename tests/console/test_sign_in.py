"""Console sign-in: same clients and scopes as the API, a signed HttpOnly SameSite=Strict
session cookie, CSRF on every POST, and read-only users kept from operating."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from markupsafe import escape

from q2c.console.session import SESSION_COOKIE
from q2c.store.schema import exceptions
from tests.console.conftest import OPS_SECRET, csrf_of, deal, parked

PAGES = ["/console/", "/console/transactions", "/console/exceptions", "/console/xref",
         "/console/exceptions/1", "/console/timeline/x", "/console/payloads/1"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_sign_in(anonymous, path):
    response = anonymous.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login?next=")


def test_htmx_requests_without_session_are_told_to_sign_in(anonymous):
    response = anonymous.get("/console/transactions", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/console/login")


def test_wrong_secret_is_refused_and_sets_no_session(anonymous):
    page = anonymous.get("/console/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
    response = anonymous.post("/console/login", data={
        "login_token": token, "client_id": "ops", "client_secret": "guess"})
    assert response.status_code == 401
    assert "Unknown client or wrong secret" in response.text
    assert SESSION_COOKIE not in anonymous.cookies


def test_sign_in_sets_a_strict_http_only_cookie_and_returns_to_the_page(anonymous):
    page = anonymous.get("/console/login?next=/console/xref")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
    response = anonymous.post("/console/login", data={
        "login_token": token, "client_id": "ops", "client_secret": OPS_SECRET,
        "name": "ada", "next": "/console/xref"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/console/xref"
    cookie = next(h for h in response.headers.get_list("set-cookie")
                  if h.startswith(f"{SESSION_COOKIE}="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert anonymous.get("/console/xref").status_code == 200


def test_sign_in_form_needs_its_own_token(anonymous):
    response = anonymous.post("/console/login", data={
        "login_token": "forged", "client_id": "ops", "client_secret": OPS_SECRET})
    assert response.status_code == 403
    assert SESSION_COOKIE not in anonymous.cookies


def test_sign_in_never_redirects_off_the_console(anonymous):
    page = anonymous.get("/console/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
    response = anonymous.post("/console/login", data={
        "login_token": token, "client_id": "ops", "client_secret": OPS_SECRET,
        "next": "//evil.example/"}, follow_redirects=False)
    assert response.headers["location"] == "/console/"


def test_a_tampered_session_cookie_is_no_session(operator):
    value = operator.cookies[SESSION_COOKIE]
    payload, _, signature = value.rpartition(".")
    operator.cookies.set(SESSION_COOKIE, payload + "x." + signature, path="/console")
    response = operator.get("/console/", follow_redirects=False)
    assert response.status_code == 303


def test_session_ends_when_the_client_is_removed_from_the_config(app, operator):
    assert operator.get("/console/", follow_redirects=False).status_code == 200
    del app.state.auth.clients["ops"]
    assert operator.get("/console/", follow_redirects=False).status_code == 303


def test_read_only_users_see_no_operate_buttons(hub, reader):
    item = parked(hub, deal(hub, "006R", department="Consulting-EMEA"))
    page = reader.get("/console/exceptions")
    assert str(escape(item.message)) in page.text
    assert "read only" in page.text
    for button in ("Replay</button>", "Fix mapping", "Preview replay", "Bulk replay"):
        assert button not in page.text
    detail = reader.get(f"/console/exceptions/{item.id}")
    assert "Dismiss without replaying" not in detail.text and "edit-and-replay" not in detail.text


@pytest.mark.parametrize("action", ["replay", "dismiss", "fix-mapping", "preview",
                                    "edit-and-replay"])
def test_operate_actions_need_the_operate_scope_server_side(hub, reader, action):
    item = parked(hub, deal(hub, "006S", department="Consulting-EMEA"))
    form = {"csrf_token": csrf_of(reader), "reason": "because", "data": "{}",
            "dimension": "department", "value": "Consulting-EMEA", "legal_entity": "US01",
            "system": "netsuite", "external_id": "9"}
    response = reader.post(f"/console/exceptions/{item.id}/{action}", data=form)
    assert response.status_code == 403
    assert "operate scope" in response.text
    assert parked(hub, item.transaction_id).status == "open"
    assert hub.maps.get("department", "Consulting-EMEA", "US01", "netsuite") is None


def test_posts_without_the_csrf_token_are_refused(hub, operator):
    item = parked(hub, deal(hub, "006T", department="Consulting-EMEA"))
    for form in ({"reason": "no token"}, {"reason": "wrong", "csrf_token": "forged"}):
        response = operator.post(f"/console/exceptions/{item.id}/dismiss", data=form)
        assert response.status_code == 403
    cross_site = operator.post(
        f"/console/exceptions/{item.id}/dismiss",
        data={"reason": "x", "csrf_token": csrf_of(operator)},
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403
    with hub.db.connect() as c:
        assert c.execute(sa.select(exceptions.c.status)).scalar_one() == "open"


def test_sign_out_needs_csrf_and_ends_the_session(operator):
    assert operator.post("/console/logout", data={}).status_code == 403
    response = operator.post("/console/logout", data={"csrf_token": csrf_of(operator)},
                             follow_redirects=False)
    assert response.status_code == 303
    assert operator.get("/console/", follow_redirects=False).status_code == 303


def test_pages_carry_a_strict_content_security_policy(operator):
    response = operator.get("/console/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert '<script src="/console/static/htmx.min.js"' in response.text
    assert operator.get("/console/static/htmx.min.js").status_code == 200
