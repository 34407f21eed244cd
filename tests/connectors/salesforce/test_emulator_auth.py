"""The emulated org's OAuth token endpoint and session handling."""

from __future__ import annotations

import base64
import time

import httpx
import jwt
import pytest

from q2c.connectors.salesforce import SalesforceSandbox
from q2c.connectors.salesforce.oauth import JWT_GRANT
from tests.connectors.salesforce.helpers import OrgApi, V


def token(client: httpx.Client, **form: str) -> httpx.Response:
    return client.post("/services/oauth2/token", data=form)


def assertion(sandbox: SalesforceSandbox, **claims: object) -> str:
    body = {
        "iss": sandbox.client_id,
        "sub": sandbox.username,
        "aud": sandbox.login_url,
        "exp": int(time.time()) + 180,
        **claims,
    }
    return jwt.encode(body, sandbox.jwt_private_key_pem, algorithm="RS256")


def test_client_credentials_issue_a_salesforce_shaped_token(
    sandbox: SalesforceSandbox, client: httpx.Client
) -> None:
    response = token(
        client,
        grant_type="client_credentials",
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == sandbox.login_url
    assert body["access_token"].startswith(sandbox.state.org_id[:15] + "!")
    assert body["id"].endswith(f"/id/{sandbox.state.org_id}/{sandbox.state.user_id}")
    assert body["issued_at"].isdigit() and body["signature"]
    assert sandbox.tokens_issued(sandbox.client_id) == 1


def test_client_credentials_via_basic_auth(
    sandbox: SalesforceSandbox, client: httpx.Client
) -> None:
    basic = base64.b64encode(f"{sandbox.client_id}:{sandbox.client_secret}".encode()).decode()
    response = client.post(
        "/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("form", "error", "description"),
    [
        (
            {"client_id": "q2c-connected-app", "client_secret": "wrong"},
            "invalid_client",
            "invalid client credentials",
        ),
        (
            {"client_id": "nobody", "client_secret": "x"},
            "invalid_client_id",
            "client identifier invalid",
        ),
    ],
)
def test_client_credentials_failures(
    client: httpx.Client, form: dict[str, str], error: str, description: str
) -> None:
    response = token(client, grant_type="client_credentials", **form)
    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}


def test_unsupported_grant(client: httpx.Client) -> None:
    response = token(client, grant_type="password", username="u", password="p")
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_jwt_bearer_success(sandbox: SalesforceSandbox, client: httpx.Client) -> None:
    response = token(client, grant_type=JWT_GRANT, assertion=assertion(sandbox))
    assert response.status_code == 200, response.text
    session = sandbox.oauth.session(response.json()["access_token"])
    assert session is not None and session.username == sandbox.username
    # login.salesforce.com is an accepted audience too, as in production
    ok = token(
        client,
        grant_type=JWT_GRANT,
        assertion=assertion(sandbox, aud="https://login.salesforce.com"),
    )
    assert ok.status_code == 200


def test_jwt_bearer_failures(sandbox: SalesforceSandbox, client: httpx.Client) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    forged = jwt.encode(
        {
            "iss": sandbox.client_id,
            "sub": sandbox.username,
            "aud": sandbox.login_url,
            "exp": int(time.time()) + 60,
        },
        other_key,
        algorithm="RS256",
    )
    cases = {
        forged: ("invalid_grant", "invalid assertion"),
        assertion(sandbox, aud="https://evil.example.com"): (
            "invalid_grant",
            "audience is invalid",
        ),
        assertion(sandbox, exp=int(time.time()) - 10): (
            "invalid_grant",
            "expired authorization code",
        ),
        assertion(sandbox, sub="ghost@q2c.example"): (
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
        assertion(sandbox, iss="unknown-app"): ("invalid_client_id", "client identifier invalid"),
        "not-a-jwt": ("invalid_grant", "invalid assertion"),
    }
    for value, (error, description) in cases.items():
        response = token(client, grant_type=JWT_GRANT, assertion=value)
        assert response.status_code == 400
        assert response.json() == {"error": error, "error_description": description}


def test_rest_needs_a_valid_bearer_token(org: OrgApi, client: httpx.Client) -> None:
    invalid = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    assert org.get("sobjects").status_code == 200
    anonymous = client.get(f"{V}/sobjects")
    assert (anonymous.status_code, anonymous.json()) == (401, invalid)
    forged = client.get(f"{V}/sobjects", headers={"Authorization": "Bearer 00Dxx!forged"})
    assert forged.status_code == 401
    org.sandbox.expire_tokens()
    expired = org.get("sobjects")
    assert (expired.status_code, expired.json()) == (401, invalid)


def test_sessions_time_out_and_can_be_revoked(client: httpx.Client) -> None:
    sandbox = SalesforceSandbox(session_seconds=0.05)
    with sandbox.client() as short:
        org = OrgApi(sandbox, short)
        assert org.get("sobjects").status_code == 200
        time.sleep(0.06)
        assert org.get("sobjects").status_code == 401
        org.token = org.login()
        short.post("/services/oauth2/revoke", data={"token": org.token})
        assert org.get("sobjects").status_code == 401


def test_versions_list_is_public(client: httpx.Client) -> None:
    versions = client.get("/services/data/").json()
    assert versions[-1] == {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"}
    assert {"label": "Summer '24", "url": "/services/data/v61.0", "version": "61.0"} in versions


def test_admin_endpoints(sandbox: SalesforceSandbox, org: OrgApi, client: httpx.Client) -> None:
    seeded = client.post("/__sandbox__/records/Account", json=[{"Name": "A"}, {"Name": "B"}])
    assert seeded.status_code == 201 and len(seeded.json()["ids"]) == 2
    bad = client.post("/__sandbox__/records/Account", json={"Nope": 1})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_FIELD"
    dump = client.get("/__sandbox__/state").json()
    assert [a["Name"] for a in dump["records"]["Account"]] == ["A", "B"]
    assert client.get("/__sandbox__/events").json()[0]["schema"] == "AccountChangeEvent"
    assert client.delete("/__sandbox__/tokens").json() == {"expired": 1}
    assert org.get("sobjects").status_code == 401
    assert client.post("/__sandbox__/reset").status_code == 200
    assert sandbox.state.records("Account") == []
