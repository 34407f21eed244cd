"""Both NetSuite sign-in flows, from the emulator's side and from the client's side."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest

from q2c.connectors.netsuite.adapter import connect_netsuite_m2m, connect_netsuite_tba
from q2c.connectors.netsuite.auth import NetSuiteM2MAuth, NetSuiteTBAAuth, token_url_for
from q2c.connectors.netsuite.sandbox import NetSuiteSandbox
from q2c.connectors.netsuite.server_auth import (
    parse_oauth_header,
    signature_base_string,
    tba_signature,
)
from q2c.connectors.sandbox import Fault
from q2c.errors import AuthError, RateLimitedError, RetriableError
from tests.connectors.netsuite.helpers import error_of

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def last_reason(sandbox: NetSuiteSandbox) -> str:
    return sandbox.login_audit[-1].reason


# --- OAuth 2.0 client credentials (M2M) -------------------------------------------------------


def assertion(sandbox: NetSuiteSandbox, key: bytes | None = None, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": sandbox.m2m.client_id,
        "scope": "rest_webservices",
        "aud": token_url_for(sandbox.base_url),
        "iat": now,
        "exp": now + 300,
    }
    headers = {"kid": sandbox.m2m.certificate_id, "typ": "JWT"}
    algorithm = overrides.pop("alg", "PS256")
    headers.update(overrides.pop("headers", {}))
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(
        claims, key or sandbox.m2m.private_key_pem, algorithm=algorithm, headers=headers
    )


def ask_token(sandbox: NetSuiteSandbox, **form: str) -> httpx.Response:
    with sandbox.client() as client:
        return client.post("/services/rest/auth/oauth2/v1/token", data=form)


def test_token_endpoint_issues_a_bearer_token(sandbox: NetSuiteSandbox) -> None:
    response = ask_token(
        sandbox,
        grant_type="client_credentials",
        client_assertion_type=JWT_BEARER,
        client_assertion=assertion(sandbox),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert int(body["expires_in"]) == 3600
    with sandbox.client() as client:
        listed = client.get(
            "/services/rest/record/v1/currency",
            headers={"Authorization": f"Bearer {body['access_token']}"},
        )
    assert listed.status_code == 200


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"headers": {"kid": "not-mapped"}}, "no certificate mapped"),
        ({"iss": "someone-else"}, "JWT rejected"),
        ({"aud": "https://example.com/token"}, "JWT rejected"),
        ({"exp": int(time.time()) - 60, "iat": int(time.time()) - 400}, "JWT rejected"),
        ({"exp": int(time.time()) + 7200}, "at most 60 minutes"),
        ({"exp": None}, "JWT rejected"),
        ({"scope": "restlets"}, "does not include"),
    ],
    ids=["unknown-kid", "wrong-iss", "wrong-aud", "expired", "too-long", "no-exp", "scope"],
)
def test_token_endpoint_refuses_bad_assertions(
    sandbox: NetSuiteSandbox, overrides: dict[str, Any], reason: str
) -> None:
    response = ask_token(
        sandbox,
        grant_type="client_credentials",
        client_assertion_type=JWT_BEARER,
        client_assertion=assertion(sandbox, **overrides),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert reason in last_reason(sandbox)
    assert sandbox.token_requests == 0


def test_assertion_signed_by_another_key_is_refused(
    sandbox: NetSuiteSandbox, stranger_key: bytes
) -> None:
    response = ask_token(
        sandbox,
        grant_type="client_credentials",
        client_assertion_type=JWT_BEARER,
        client_assertion=assertion(sandbox, key=stranger_key),
    )
    assert response.json()["error"] == "invalid_grant"
    assert "Signature verification failed" in last_reason(sandbox)


def test_symmetric_algorithms_are_refused(sandbox: NetSuiteSandbox) -> None:
    forged = jwt.encode(
        {"iss": sandbox.m2m.client_id, "aud": token_url_for(sandbox.base_url)},
        "a-shared-secret-of-thirty-two-bytes!",
        algorithm="HS256",
        headers={"kid": sandbox.m2m.certificate_id},
    )
    response = ask_token(
        sandbox,
        grant_type="client_credentials",
        client_assertion_type=JWT_BEARER,
        client_assertion=forged,
    )
    assert response.json()["error"] == "invalid_grant"
    assert "not accepted" in last_reason(sandbox)


def test_token_endpoint_checks_the_grant(sandbox: NetSuiteSandbox) -> None:
    wrong_grant = ask_token(sandbox, grant_type="password", client_assertion="x")
    assert wrong_grant.json()["error"] == "unsupported_grant_type"
    no_assertion = ask_token(sandbox, grant_type="client_credentials")
    assert no_assertion.json()["error"] == "invalid_request"
    garbage = ask_token(
        sandbox,
        grant_type="client_credentials",
        client_assertion_type=JWT_BEARER,
        client_assertion="not.a.jwt",
    )
    assert garbage.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("authorization", [None, "Bearer garbage", "Basic dXNlcjpwYXNz"])
def test_requests_without_valid_credentials_get_invalid_login(
    sandbox: NetSuiteSandbox, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    with sandbox.client() as client:
        response = client.get("/services/rest/record/v1/customer", headers=headers)
    assert response.status_code == 401
    detail = error_of(response)
    assert detail["o:errorCode"] == "INVALID_LOGIN"
    assert "Login Audit Trail" in detail["detail"]


def test_client_builds_netsuite_shaped_assertion(sandbox: NetSuiteSandbox) -> None:
    auth = NetSuiteM2MAuth(
        token_url=token_url_for(sandbox.base_url),
        client_id="client-1",
        certificate_id="cert-1",
        private_key_pem=sandbox.m2m.private_key_pem,
    )
    token = auth.client_assertion()
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "PS256", "kid": "cert-1", "typ": "JWT"}
    claims = jwt.decode(
        token,
        sandbox.m2m.public_key_pem,
        algorithms=["PS256"],
        audience=token_url_for(sandbox.base_url),
    )
    assert claims["iss"] == "client-1"
    assert claims["scope"] == "rest_webservices"
    assert claims["exp"] - claims["iat"] <= 3600


def test_token_is_cached_until_it_expires(sandbox: NetSuiteSandbox) -> None:
    erp = sandbox.erp_m2m()
    for _ in range(3):
        list(erp.query("SELECT id FROM currency"))
    assert sandbox.token_requests == 1


def test_token_expired_at_netsuite_is_replaced_once(sandbox: NetSuiteSandbox) -> None:
    erp = sandbox.erp_m2m()
    list(erp.query("SELECT id FROM currency"))
    sandbox.auth.clock = lambda: time.time() + 7200  # NetSuite's clock: the token is stale
    list(erp.query("SELECT id FROM currency"))
    assert sandbox.token_requests == 2
    assert any(a.reason == "access token expired" for a in sandbox.login_audit)


def test_unknown_certificate_is_an_auth_error(
    sandbox: NetSuiteSandbox, stranger_key: bytes
) -> None:
    erp = connect_netsuite_m2m(
        sandbox.client(),
        account_id=sandbox.account_id,
        client_id=sandbox.m2m.client_id,
        certificate_id="not-mapped",
        private_key_pem=stranger_key,
        base_url=sandbox.base_url,
    )
    with pytest.raises(AuthError) as info:
        list(erp.query("SELECT id FROM currency"))
    assert "invalid_grant" in info.value.detail
    assert "client_assertion" not in info.value.detail  # the signed JWT never lands in logs


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault("rate_limit", retry_after=9), RateLimitedError),
        (Fault("server_error"), RetriableError),
    ],
)
def test_token_endpoint_outage_is_retriable(
    sandbox: NetSuiteSandbox, fault: Fault, error: type[Exception]
) -> None:
    fault.path = "/services/rest/auth/oauth2/v1/token"
    sandbox.faults.inject(fault)
    erp = sandbox.erp_m2m()
    with pytest.raises(error) as info:
        list(erp.query("SELECT id FROM currency"))
    assert not isinstance(info.value, AuthError)
    if isinstance(info.value, RateLimitedError):
        assert info.value.retry_after == 9
    list(erp.query("SELECT id FROM currency"))  # the next attempt signs in
    assert sandbox.token_requests == 1


# --- token-based authentication (OAuth 1.0a, HMAC-SHA256) --------------------------------------


def tba_auth(sandbox: NetSuiteSandbox, **overrides: str) -> NetSuiteTBAAuth:
    values = {
        "account_id": sandbox.account_id,
        "consumer_key": sandbox.tba.consumer_key,
        "consumer_secret": sandbox.tba.consumer_secret,
        "token_id": sandbox.tba.token_id,
        "token_secret": sandbox.tba.token_secret,
        **overrides,
    }
    return NetSuiteTBAAuth(**values)


def test_tba_adapter_reads_with_paged_queries(sandbox: NetSuiteSandbox) -> None:
    sandbox.seed_reference_data(currencies=["USD", "EUR", "GBP"])
    erp = sandbox.erp_tba(page_size=1)
    assert [r["symbol"] for r in erp.query("SELECT symbol FROM currency ORDER BY id")] == [
        "USD",
        "EUR",
        "GBP",
    ]
    assert list(erp.list_record_ids("currency")) == ["1", "2", "3"]  # limit/offset are signed
    assert sandbox.token_requests == 0


def test_tba_header_has_netsuite_realm_and_method(sandbox: NetSuiteSandbox) -> None:
    request = httpx.Request("GET", f"{sandbox.base_url}/services/rest/record/v1/customer?limit=5")
    signed = next(tba_auth(sandbox).auth_flow(request))
    scheme, _, rest = signed.headers["Authorization"].partition(" ")
    params = parse_oauth_header(rest)
    assert scheme == "OAuth"
    assert params["realm"] == "1234567_SB1"
    assert params["oauth_signature_method"] == "HMAC-SHA256"
    assert params["oauth_version"] == "1.0"
    assert params["oauth_token"] == sandbox.tba.token_id
    base = signature_base_string("GET", str(request.url), list(params.items()))
    expected = tba_signature(base, sandbox.tba.consumer_secret, sandbox.tba.token_secret)
    assert params["oauth_signature"] == expected  # authlib and the RFC text agree


def test_bad_tba_signature_is_refused(sandbox: NetSuiteSandbox) -> None:
    erp = connect_netsuite_tba(
        sandbox.client(),
        account_id=sandbox.account_id,
        consumer_key=sandbox.tba.consumer_key,
        consumer_secret="not-the-secret",
        token_id=sandbox.tba.token_id,
        token_secret=sandbox.tba.token_secret,
    )
    with pytest.raises(AuthError):
        list(erp.query("SELECT id FROM currency"))
    assert last_reason(sandbox) == "signature does not match"


def test_replayed_nonce_is_refused(sandbox: NetSuiteSandbox) -> None:
    url = f"{sandbox.base_url}/services/rest/record/v1/currency"
    signed = next(tba_auth(sandbox).auth_flow(httpx.Request("GET", url)))
    header = {"Authorization": signed.headers["Authorization"]}
    with sandbox.client() as client:
        assert client.get(url, headers=header).status_code == 200
        replay = client.get(url, headers=header)
    assert replay.status_code == 401
    assert error_of(replay)["o:errorCode"] == "INVALID_LOGIN"
    assert last_reason(sandbox) == "nonce already used (replay)"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"account_id": "7654321"}, "is not this account"),
        ({"token_id": "revoked"}, "unknown consumer key or token"),
    ],
)
def test_tba_refuses_wrong_account_or_token(
    sandbox: NetSuiteSandbox, overrides: dict[str, str], reason: str
) -> None:
    url = f"{sandbox.base_url}/services/rest/record/v1/currency"
    with sandbox.client() as client:
        response = client.get(url, auth=tba_auth(sandbox, **overrides))
    assert response.status_code == 401
    assert reason in last_reason(sandbox)


def test_tba_refuses_stale_timestamp_and_sha1(sandbox: NetSuiteSandbox) -> None:
    url = f"{sandbox.base_url}/services/rest/record/v1/currency"
    signed = next(tba_auth(sandbox).auth_flow(httpx.Request("GET", url)))
    header = signed.headers["Authorization"]
    with sandbox.client() as client:
        sandbox.auth.clock = lambda: time.time() + 3600
        late = client.get(url, headers={"Authorization": header})
        sandbox.auth.clock = time.time
        sha1 = client.get(
            url, headers={"Authorization": header.replace("HMAC-SHA256", "HMAC-SHA1")}
        )
    assert late.status_code == sha1.status_code == 401
    reasons = [a.reason for a in sandbox.login_audit]
    assert "timestamp outside the allowed window" in reasons
    assert "signature method must be HMAC-SHA256" in reasons


def test_base_string_matches_rfc5849_example() -> None:
    """RFC 5849 section 3.4.1.1, the specification's own worked example."""
    oauth = [
        ("oauth_consumer_key", "9djdj82h48djs9d2"),
        ("oauth_token", "kkk9d7dh3k39sjv7"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "137131201"),
        ("oauth_nonce", "7d8f3e4a"),
        ("oauth_signature", "ignored"),
        ("realm", "Example"),
    ]
    body = [("c2", ""), ("a3", "2 q")]
    base = signature_base_string(
        "POST", "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b", [*oauth, *body]
    )
    assert base == (
        "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q"
        "%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_"
        "key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_m"
        "ethod%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk"
        "9d7dh3k39sjv7"
    )
