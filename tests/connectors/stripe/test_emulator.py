"""The emulated Stripe API on the wire: auth, idempotency, transitions, validation, lists."""

from __future__ import annotations

import base64

import pytest

from q2c.connectors.sandbox import Fault
from q2c.connectors.stripe.sandbox import StripeSandbox
from tests.connectors.stripe.helpers import Clock, Wire, error_of


def _customer(wire: Wire, **params: object) -> dict[str, object]:
    return wire.ok(wire.post("/v1/customers", {"name": "Wire Ltd", **params}))


def _open_invoice(wire: Wire, amounts: tuple[int, ...] = (1000,)) -> tuple[str, str]:
    customer_id = str(_customer(wire)["id"])
    for amount in amounts:
        wire.ok(
            wire.post(
                "/v1/invoiceitems", {"customer": customer_id, "amount": amount, "currency": "usd"}
            )
        )
    invoice = wire.ok(
        wire.post(
            "/v1/invoices",
            {
                "customer": customer_id,
                "pending_invoice_items_behavior": "include",
                "collection_method": "send_invoice",
                "days_until_due": 30,
            },
        )
    )
    wire.ok(wire.post(f"/v1/invoices/{invoice['id']}/finalize"))
    return customer_id, str(invoice["id"])


# --- authentication --------------------------------------------------------------------------


def test_missing_wrong_and_expired_keys_are_401(wire: Wire, sandbox: StripeSandbox) -> None:
    missing = wire.http.get("/v1/customers")
    assert missing.status_code == 401
    assert error_of(missing)["message"].startswith("You did not provide an API key")
    assert missing.headers["www-authenticate"] == 'Bearer realm="Stripe"'
    wrong = Wire(wire.http, "sk_test_1234567890abcdef").get("/v1/customers")
    assert wrong.status_code == 401
    assert error_of(wrong)["message"] == "Invalid API Key provided: sk_test_************cdef"
    old = sandbox.api_key
    sandbox.roll_api_key()
    expired = Wire(wire.http, old).get("/v1/customers")
    assert expired.status_code == 401
    assert error_of(expired)["code"] == "api_key_expired"
    assert Wire(wire.http, sandbox.api_key).get("/v1/customers").status_code == 200


def test_basic_auth_with_the_key_as_user_name(wire: Wire, sandbox: StripeSandbox) -> None:
    token = base64.b64encode(f"{sandbox.api_key}:".encode()).decode()
    response = wire.http.get("/v1/customers", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 200
    assert response.headers["request-id"].startswith("req_")
    assert response.headers["stripe-version"]


def test_malformed_stripe_version_is_refused(wire: Wire) -> None:
    response = Wire(wire.http, wire.api_key, {"Stripe-Version": "latest"}).get("/v1/customers")
    assert response.status_code == 400
    assert error_of(response)["code"] == "api_version_invalid"


# --- idempotency -----------------------------------------------------------------------------


def test_same_key_same_params_replays(wire: Wire, sandbox: StripeSandbox) -> None:
    first = wire.post("/v1/customers", {"name": "Once"}, key="k-1")
    second = wire.post("/v1/customers", {"name": "Once"}, key="k-1")
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["original-request"] == first.headers["request-id"]
    assert "idempotent-replayed" not in first.headers
    assert sandbox.count("customer") == 1
    assert len(sandbox.events("customer.created")) == 1


def test_same_key_other_params_or_endpoint_is_an_idempotency_error(wire: Wire) -> None:
    wire.ok(wire.post("/v1/customers", {"name": "Once"}, key="k-2"))
    other = wire.post("/v1/customers", {"name": "Twice"}, key="k-2")
    assert other.status_code == 400
    error = error_of(other)
    assert error["type"] == "idempotency_error"
    assert "same parameters" in error["message"] and "'k-2'" in error["message"]
    elsewhere = wire.post("/v1/products", {"name": "Once"}, key="k-2")
    assert error_of(elsewhere)["type"] == "idempotency_error"
    assert "same endpoint" in error_of(elsewhere)["message"]


def test_refused_request_is_not_remembered(wire: Wire, sandbox: StripeSandbox) -> None:
    refused = wire.post("/v1/invoiceitems", {"customer": "cus_x", "amount": "ten"}, key="k-3")
    assert error_of(refused)["code"] == "parameter_invalid_integer"
    customer_id = _customer(wire)["id"]
    fixed = wire.post(
        "/v1/invoiceitems", {"customer": customer_id, "amount": 10, "currency": "usd"}, key="k-3"
    )
    assert fixed.status_code == 200
    assert "idempotent-replayed" not in fixed.headers


def test_declined_payment_is_replayed_not_retried(wire: Wire, sandbox: StripeSandbox) -> None:
    _, invoice_id = _open_invoice(wire)
    params = {"payment_method": "pm_card_chargeDeclined"}
    first = wire.post(f"/v1/invoices/{invoice_id}/pay", params, key="k-4")
    second = wire.post(f"/v1/invoices/{invoice_id}/pay", params, key="k-4")
    assert first.status_code == second.status_code == 402
    assert error_of(first)["decline_code"] == "generic_decline"
    assert second.headers["idempotent-replayed"] == "true"
    assert len(sandbox.state.all_of("payment_intent")) == 1


def test_keys_expire_after_24_hours(wire: Wire, sandbox: StripeSandbox, clock: Clock) -> None:
    wire.ok(wire.post("/v1/customers", {"name": "Day one"}, key="k-5"))
    clock.advance(24 * 3600 + 1)
    again = wire.post("/v1/customers", {"name": "Day one"}, key="k-5")
    assert "idempotent-replayed" not in again.headers
    assert sandbox.count("customer") == 2


def test_timeout_applies_the_write_and_the_retry_replays(sandbox: StripeSandbox) -> None:
    slow = Wire(sandbox.client(timeout=0.3), sandbox.api_key)
    sandbox.faults.inject(Fault("timeout", path="/v1/customers", method="POST", delay=2.0))
    with pytest.raises(Exception, match="no answer"):
        slow.post("/v1/customers", {"name": "Late"}, key="k-6")
    retry = slow.post("/v1/customers", {"name": "Late"}, key="k-6")
    assert retry.headers["idempotent-replayed"] == "true"
    assert sandbox.count("customer") == 1


# --- state transitions -----------------------------------------------------------------------


def test_finalized_invoice_refuses_items_and_edits(wire: Wire) -> None:
    customer_id, invoice_id = _open_invoice(wire)
    item = wire.post(
        "/v1/invoiceitems",
        {"customer": customer_id, "amount": 5, "currency": "usd", "invoice": invoice_id},
    )
    assert error_of(item)["code"] == "invoice_not_editable"
    edit = wire.post(f"/v1/invoices/{invoice_id}", {"description": "late change"})
    assert error_of(edit)["code"] == "invoice_not_editable"
    assert error_of(edit)["param"] == "description"
    again = wire.post(f"/v1/invoices/{invoice_id}/finalize")
    assert again.status_code == 400
    assert "already finalized" in error_of(again)["message"]
    metadata = wire.ok(wire.post(f"/v1/invoices/{invoice_id}", {"metadata": {"erp": "INV-1"}}))
    assert metadata["metadata"] == {"erp": "INV-1"}
    line_item = wire.ok(wire.get(f"/v1/invoices/{invoice_id}/lines"))["data"][0]
    ii = line_item["parent"]["invoice_item_details"]["invoice_item"]
    assert error_of(wire.delete(f"/v1/invoiceitems/{ii}"))["code"] == "invoice_not_editable"


def test_an_invoice_takes_at_most_250_items(wire: Wire, sandbox: StripeSandbox) -> None:
    customer_id = str(_customer(wire)["id"])
    draft = wire.ok(wire.post("/v1/invoices", {"customer": customer_id, "currency": "usd"}))
    item = {"customer": customer_id, "amount": 1, "currency": "usd", "invoice": draft["id"]}
    for _ in range(250):
        wire.ok(wire.post("/v1/invoiceitems", item))
    refused = wire.post("/v1/invoiceitems", item)
    assert refused.status_code == 400
    assert "more than 250 invoice items" in error_of(refused)["message"]
    assert error_of(refused)["param"] == "invoice"
    assert len(sandbox.state.all_of("invoiceitem")) == 250  # the refused item was not kept
    assert wire.ok(wire.get(f"/v1/invoices/{draft['id']}"))["total"] == 250


def test_invoice_status_moves_forward_only(wire: Wire) -> None:
    _, invoice_id = _open_invoice(wire)
    paid = wire.ok(wire.post(f"/v1/invoices/{invoice_id}/pay", {"paid_out_of_band": True}))
    assert paid["status"] == "paid" and paid["amount_remaining"] == 0
    assert paid["amount_paid"] == paid["total"] == 1000
    assert error_of(wire.post(f"/v1/invoices/{invoice_id}/void_invoice"))["message"]
    assert error_of(wire.post(f"/v1/invoices/{invoice_id}/pay", {"paid_out_of_band": True}))
    _, other = _open_invoice(wire)
    voided = wire.ok(wire.post(f"/v1/invoices/{other}/void_invoice"))
    assert voided["status"] == "void"
    assert voided["status_transitions"]["voided_at"] is not None
    assert wire.post(f"/v1/invoices/{other}/pay", {"paid_out_of_band": True}).status_code == 400


def test_numbers_follow_the_customers_prefix_and_sequence(wire: Wire) -> None:
    customer_id = str(_customer(wire, invoice_prefix="ACME")["id"])
    numbers = []
    for _ in range(2):
        wire.ok(
            wire.post(
                "/v1/invoiceitems", {"customer": customer_id, "amount": 100, "currency": "usd"}
            )
        )
        draft = wire.ok(
            wire.post(
                "/v1/invoices",
                {"customer": customer_id, "pending_invoice_items_behavior": "include"},
            )
        )
        assert draft["number"] is None
        numbers.append(wire.ok(wire.post(f"/v1/invoices/{draft['id']}/finalize"))["number"])
    assert numbers == ["ACME-0001", "ACME-0002"]
    assert wire.ok(wire.get(f"/v1/customers/{customer_id}"))["next_invoice_sequence"] == 3


def test_nothing_due_finalizes_as_paid(wire: Wire, sandbox: StripeSandbox) -> None:
    customer_id = _customer(wire)["id"]
    draft = wire.ok(wire.post("/v1/invoices", {"customer": customer_id}))
    final = wire.ok(wire.post(f"/v1/invoices/{draft['id']}/finalize"))
    assert (final["status"], final["total"]) == ("paid", 0)
    assert [e["type"] for e in sandbox.events()][-2:] == ["invoice.finalized", "invoice.paid"]


def test_inclusive_and_exempt_taxes(wire: Wire) -> None:
    inclusive = wire.ok(
        wire.post("/v1/tax_rates", {"display_name": "VAT", "percentage": "20", "inclusive": True})
    )
    customer_id = _customer(wire)["id"]
    wire.ok(
        wire.post(
            "/v1/invoiceitems",
            {
                "customer": customer_id,
                "amount": 1001,
                "currency": "gbp",
                "tax_rates": [inclusive["id"]],
            },
        )
    )
    invoice = wire.ok(
        wire.post(
            "/v1/invoices",
            {
                "customer": customer_id,
                "currency": "gbp",
                "pending_invoice_items_behavior": "include",
            },
        )
    )
    # 1001 * 20 / 120 = 166.83 -> 167 inside the price; the total stays 1001
    assert invoice["lines"]["data"][0]["taxes"][0]["amount"] == 167
    assert (invoice["total"], invoice["total_excluding_tax"]) == (1001, 834)
    exempt = _customer(wire, tax_exempt="exempt")["id"]
    wire.ok(
        wire.post(
            "/v1/invoiceitems",
            {"customer": exempt, "amount": 1000, "currency": "gbp", "tax_rates": [inclusive["id"]]},
        )
    )
    free = wire.ok(
        wire.post(
            "/v1/invoices",
            {"customer": exempt, "currency": "gbp", "pending_invoice_items_behavior": "include"},
        )
    )
    assert free["lines"]["data"][0]["taxes"][0]["taxability_reason"] == "customer_exempt"
    assert free["total_taxes"][0]["amount"] == 0


def test_send_invoice_needs_a_due_date(wire: Wire) -> None:
    customer_id = _customer(wire)["id"]
    response = wire.post(
        "/v1/invoices", {"customer": customer_id, "collection_method": "send_invoice"}
    )
    assert error_of(response)["param"] == "days_until_due"
    both = wire.post(
        "/v1/invoices",
        {
            "customer": customer_id,
            "collection_method": "send_invoice",
            "days_until_due": 3,
            "due_date": 1,
        },
    )
    assert "only specify one" in error_of(both)["message"]


# --- validation ------------------------------------------------------------------------------


def test_parameters_are_checked_like_stripe(wire: Wire) -> None:
    unknown = error_of(wire.post("/v1/customers", {"nmae": "typo"}))
    assert (unknown["code"], unknown["param"]) == ("parameter_unknown", "nmae")
    missing = error_of(wire.post("/v1/invoiceitems", {"amount": 1}))
    assert (missing["code"], missing["param"]) == ("parameter_missing", "customer")
    assert missing["message"] == "Missing required param: customer."
    assert missing["request_log_url"].startswith("https://dashboard.stripe.com/test/logs/req_")
    customer_id = _customer(wire)["id"]
    currency = error_of(
        wire.post("/v1/invoiceitems", {"customer": customer_id, "amount": 1, "currency": "USD"})
    )
    assert currency["param"] == "currency"
    absent = wire.get("/v1/invoices/in_nothing")
    assert absent.status_code == 404
    assert error_of(absent)["code"] == "resource_missing"
    assert error_of(absent)["message"] == "No such invoice: 'in_nothing'"
    route = wire.get("/v1/nothing")
    assert route.status_code == 404 and "Unrecognized request URL" in error_of(route)["message"]


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({f"k{n}": "v" for n in range(51)}, "Metadata can have up to 50 keys"),
        ({"k" * 41: "v"}, "Invalid key"),
        ({"k": "v" * 501}, "Invalid val"),
    ],
)
def test_metadata_limits_are_enforced(wire: Wire, metadata: dict[str, str], message: str) -> None:
    error = error_of(wire.post("/v1/customers", {"name": "M", "metadata": metadata}))
    assert error["param"] == "metadata"
    assert error["message"].startswith(message)


def test_metadata_keys_are_merged_and_unset(wire: Wire) -> None:
    customer_id = _customer(wire, metadata={"a": "1", "b": "2"})["id"]
    updated = wire.ok(wire.post(f"/v1/customers/{customer_id}", {"metadata": {"b": "", "c": "3"}}))
    assert updated["metadata"] == {"a": "1", "c": "3"}
    cleared = wire.ok(wire.post(f"/v1/customers/{customer_id}", {"metadata": {}}))
    assert cleared["metadata"] == {}


# --- lists, search, events, expansion --------------------------------------------------------


def test_cursor_pagination_both_ways(wire: Wire) -> None:
    ids = [_customer(wire, email=f"p{n}@x.io")["id"] for n in range(5)]
    newest_first = list(reversed(ids))
    page = wire.ok(wire.get("/v1/customers", {"limit": 2}))
    assert [c["id"] for c in page["data"]] == newest_first[:2] and page["has_more"]
    page = wire.ok(wire.get("/v1/customers", {"limit": 2, "starting_after": newest_first[1]}))
    assert [c["id"] for c in page["data"]] == newest_first[2:4]
    back = wire.ok(wire.get("/v1/customers", {"limit": 2, "ending_before": newest_first[3]}))
    assert [c["id"] for c in back["data"]] == newest_first[1:3]
    assert error_of(wire.get("/v1/customers", {"limit": 101}))["param"] == "limit"
    assert error_of(wire.get("/v1/customers", {"starting_after": "cus_gone"}))["param"] == (
        "starting_after"
    )


def test_events_filter_by_type_and_created(wire: Wire, clock: Clock) -> None:
    _customer(wire)
    clock.advance(10)
    boundary = int(clock.now)
    _open_invoice(wire)
    later = wire.ok(wire.get("/v1/events", {"created": {"gte": boundary}, "limit": 100}))
    assert "customer.created" in {e["type"] for e in later["data"]}  # the second customer
    assert all(e["created"] >= boundary for e in later["data"])
    invoices = wire.ok(wire.get("/v1/events", {"type": "invoice.*", "limit": 100}))
    assert {e["type"] for e in invoices["data"]} == {"invoice.created", "invoice.finalized"}
    both = wire.ok(wire.get("/v1/events", {"types": ["invoice.finalized", "customer.created"]}))
    assert len(both["data"]) == 3
    assert wire.ok(wire.get("/v1/events", {"created": {"gt": boundary + 1}}))["data"] == []


def test_search_query_language(wire: Wire) -> None:
    a = _customer(wire, email="ap@alpha.io", metadata={"q2c_id": "q2c-A"})["id"]
    b = _customer(wire, email="ap@beta.io", metadata={"q2c_id": "q2c-B"})["id"]

    def ids(query: str) -> list[str]:
        found = wire.ok(wire.get("/v1/customers/search", {"query": query}))
        assert found["object"] == "search_result" and found["url"] == "/v1/customers/search"
        return [c["id"] for c in found["data"]]

    assert ids("metadata['q2c_id']:'q2c-A'") == [a]
    assert ids('metadata["q2c_id"]:"q2c-B"') == [b]
    assert ids("email~'alpha' OR email~'beta'") == [b, a]
    assert ids("email~'alpha' AND -metadata['q2c_id']:'q2c-A'") == []
    refused = error_of(wire.get("/v1/customers/search", {"query": "nickname:'x'"}))
    assert "unsupported search field" in refused["message"]
    mixed = error_of(
        wire.get("/v1/customers/search", {"query": "name:'a' AND email:'b' OR phone:'c'"})
    )
    assert mixed["param"] == "query"


def test_search_pages_with_next_page(wire: Wire) -> None:
    made = [_customer(wire, metadata={"batch": "s"})["id"] for _ in range(5)]
    first = wire.ok(
        wire.get("/v1/customers/search", {"query": "metadata['batch']:'s'", "limit": 3})
    )
    second = wire.ok(
        wire.get(
            "/v1/customers/search",
            {"query": "metadata['batch']:'s'", "limit": 3, "page": first["next_page"]},
        )
    )
    assert [c["id"] for c in first["data"] + second["data"]] == list(reversed(made))
    assert second["has_more"] is False and second["next_page"] is None


def test_expand_replaces_ids_with_objects(wire: Wire) -> None:
    customer_id, invoice_id = _open_invoice(wire)
    expanded = wire.ok(wire.get(f"/v1/invoices/{invoice_id}", {"expand": ["customer"]}))
    assert expanded["customer"]["id"] == customer_id
    listed = wire.ok(wire.get("/v1/invoices", {"expand": ["data.customer"]}))
    assert listed["data"][0]["customer"]["object"] == "customer"
    refused = wire.get(f"/v1/invoices/{invoice_id}", {"expand": ["nonsense"]})
    assert "cannot be expanded" in error_of(refused)["message"]


def test_injected_faults_carry_stripes_bodies(wire: Wire, sandbox: StripeSandbox) -> None:
    sandbox.faults.inject(Fault("rate_limit", retry_after=4))
    limited = wire.get("/v1/customers")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "4"
    assert error_of(limited)["code"] == "rate_limit"
    sandbox.faults.inject(Fault("server_error", status=500))
    broken = wire.get("/v1/customers")
    assert broken.status_code == 500 and error_of(broken)["type"] == "api_error"


def test_pending_items_past_the_limit_are_refused_and_250_invoice_with_paged_lines(
    wire: Wire, sandbox: StripeSandbox
) -> None:
    crowded = sandbox.seed_customer("Crowded Client")
    sandbox.seed_pending_items(crowded, [100 + n % 900 for n in range(3000)])
    refused = wire.post(
        "/v1/invoices", {"customer": crowded, "pending_invoice_items_behavior": "include"}
    )
    assert refused.status_code == 400
    assert "(the customer has 3000 pending)" in error_of(refused)["message"]
    assert sandbox.state.all_of("invoice") == []  # nothing half-created

    customer_id = sandbox.seed_customer("Big Client")
    sandbox.seed_pending_items(customer_id, [100 + n % 900 for n in range(250)])
    invoice = wire.ok(
        wire.post(
            "/v1/invoices", {"customer": customer_id, "pending_invoice_items_behavior": "include"}
        )
    )
    final = wire.ok(wire.post(f"/v1/invoices/{invoice['id']}/finalize"))
    assert final["subtotal"] == sum(100 + n % 900 for n in range(250))
    assert final["lines"]["has_more"] is True and len(final["lines"]["data"]) == 10


def test_paying_needs_a_payment_method(wire: Wire) -> None:
    customer_id, invoice_id = _open_invoice(wire)
    refused = error_of(wire.post(f"/v1/invoices/{invoice_id}/pay"))
    assert refused["param"] == "payment_method"
    wire.ok(
        wire.post(
            f"/v1/customers/{customer_id}",
            {"invoice_settings": {"default_payment_method": "pm_card_mastercard"}},
        )
    )
    paid = wire.ok(wire.post(f"/v1/invoices/{invoice_id}/pay"))
    assert paid["status"] == "paid"


def test_editing_an_item_on_a_draft_recomputes_it(wire: Wire) -> None:
    rate = wire.ok(
        wire.post("/v1/tax_rates", {"display_name": "GST", "percentage": "10", "inclusive": False})
    )
    customer_id = _customer(wire)["id"]
    item = wire.ok(
        wire.post(
            "/v1/invoiceitems",
            {"customer": customer_id, "amount": 1000, "currency": "aud", "tax_rates": [rate["id"]]},
        )
    )
    draft = wire.ok(
        wire.post(
            "/v1/invoices",
            {
                "customer": customer_id,
                "currency": "aud",
                "pending_invoice_items_behavior": "include",
            },
        )
    )
    assert draft["total"] == 1100
    wire.ok(wire.post(f"/v1/invoiceitems/{item['id']}", {"amount": 2005}))
    updated = wire.ok(wire.get(f"/v1/invoices/{draft['id']}"))
    assert (updated["subtotal"], updated["total"]) == (2005, 2206)  # 200.5 -> 201
    assert wire.ok(wire.delete(f"/v1/invoiceitems/{item['id']}"))["deleted"] is True
    assert wire.ok(wire.get(f"/v1/invoices/{draft['id']}"))["total"] == 0
