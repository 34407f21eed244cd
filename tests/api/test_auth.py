"""Auth: POST /v1/token, bearer checks (401), scopes (403), rate limits (429), external JWKS."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
import structlog
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from fastapi.testclient import TestClient

from q2c.api.app import create_app
from q2c.api.auth import ApiAuth, InvalidTokenError, expand_scopes
from q2c.bootstrap import bootstrap
from q2c.config import DEMO_CONFIG_YAML
from q2c.connectors.memory import InMemoryCrm, InMemoryErp
from q2c.connectors.registry import Connections
from q2c.errors import ConfigError
from tests.api.conftest import SECRETS, api_config, api_section, bearer

FORM = {"content-type": "application/x-www-form-urlencoded"}


def _hub(db, clock, config):
    connections = Connections()
    connections.add("salesforce", ["crm"], InMemoryCrm(system="salesforce"))
    connections.add("netsuite", ["erp"], InMemoryErp(system="netsuite"))
    return bootstrap(config, db=db, clock=clock, connections=connections, worker_id="auth-test")


@pytest.fixture
def hub(sqlite_db, clock):  # auth does not depend on the store: one backend is enough
    hub = _hub(sqlite_db, clock, api_config())
    yield hub
    hub.close()


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}", **FORM}


# --- POST /v1/token ------------------------------------------------------------------------


def test_basic_client_credentials_issue_a_working_token(anonymous):
    response = anonymous.post("/v1/token", content="grant_type=client_credentials",
                              headers=basic("reader", SECRETS["Q2C_TEST_READER_SECRET"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "read"
    assert body["expires_in"] == 300
    assert response.headers["cache-control"] == "no-store"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "reader" and claims["exp"] - claims["iat"] == 300
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert anonymous.get("/v1/transactions", headers=headers).status_code == 200


def test_form_credentials_and_a_narrowed_scope(anonymous):
    form = {"grant_type": "client_credentials", "client_id": "admin",
            "client_secret": SECRETS["Q2C_TEST_ADMIN_SECRET"], "scope": "read"}
    response = anonymous.post("/v1/token", data=form)
    assert response.status_code == 200 and response.json()["scope"] == "read"
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    # admin asked for read only: the token cannot replay
    replay = anonymous.post("/v1/exceptions/1/replay", json={}, headers=headers)
    assert replay.status_code == 403


@pytest.mark.parametrize(
    ("body", "headers", "status", "error"),
    [
        ("grant_type=client_credentials", basic("reader", "wrong"), 401, "invalid_client"),
        ("grant_type=client_credentials", basic("nobody", "x"), 401, "invalid_client"),
        ("grant_type=client_credentials", FORM, 401, "invalid_client"),
        ("grant_type=password", basic("reader", SECRETS["Q2C_TEST_READER_SECRET"]), 400,
         "unsupported_grant_type"),
        ("scope=read", basic("reader", SECRETS["Q2C_TEST_READER_SECRET"]), 400,
         "invalid_request"),
        ("grant_type=client_credentials&scope=operate",
         basic("reader", SECRETS["Q2C_TEST_READER_SECRET"]), 400, "invalid_scope"),
        ("grant_type=client_credentials&scope=superuser",
         basic("reader", SECRETS["Q2C_TEST_READER_SECRET"]), 400, "invalid_scope"),
        ("grant_type=client_credentials&client_id=reader&client_secret=x",
         basic("reader", SECRETS["Q2C_TEST_READER_SECRET"]), 400, "invalid_request"),
        ("grant_type=client_credentials&grant_type=client_credentials",
         basic("reader", SECRETS["Q2C_TEST_READER_SECRET"]), 400, "invalid_request"),
        ("grant_type=client_credentials", {"Authorization": "Basic !!!", **FORM}, 401,
         "invalid_client"),
    ],
)
def test_token_request_errors_follow_rfc_6749(anonymous, body, headers, status, error):
    response = anonymous.post("/v1/token", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["error"] == error
    assert "access_token" not in response.json()
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic")


def test_token_request_must_be_form_encoded_and_small(anonymous):
    as_json = anonymous.post("/v1/token", json={"grant_type": "client_credentials"})
    assert as_json.status_code == 415
    huge = "grant_type=client_credentials&pad=" + "x" * 10_000
    assert anonymous.post("/v1/token", content=huge, headers=FORM).status_code == 413


def test_secrets_and_tokens_never_reach_the_log(anonymous):
    with structlog.testing.capture_logs() as logs:
        ok = anonymous.post("/v1/token", content="grant_type=client_credentials",
                            headers=basic("ops", SECRETS["Q2C_TEST_OPS_SECRET"]))
        anonymous.post("/v1/token", content="grant_type=client_credentials",
                       headers=basic("ops", "guessed-secret"))
    text = json.dumps(logs, default=str)
    assert "api.token_issued" in text and "api.token_refused" in text
    for secret in (SECRETS["Q2C_TEST_OPS_SECRET"], "guessed-secret",
                   ok.json()["access_token"]):
        assert secret not in text


# --- bearer checks -------------------------------------------------------------------------


def test_missing_token_is_401_with_a_bearer_challenge(anonymous):
    response = anonymous.get("/v1/transactions")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="q2c"'
    assert response.headers["content-type"] == "application/problem+json"
    assert "POST /v1/token" in response.json()["detail"]


@pytest.mark.parametrize(
    ("authorization", "words"),
    [
        ("Basic abc", "must be 'Bearer <token>'"),
        ("Bearer ", "must be 'Bearer <token>'"),
        ("Bearer not.a.jwt", "not a JWT"),
        ("Bearer " + jwt.encode({"iss": "q2c", "sub": "admin"}, "other-key-" + "x" * 32),
         "signature"),
        ("Bearer " + jwt.encode({"iss": "evil", "sub": "admin"}, "k" * 32),
         "issuer q2c does not trust"),
    ],
)
def test_bad_tokens_are_401_invalid_token(anonymous, authorization, words):
    response = anonymous.get("/v1/exceptions", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert words in response.json()["detail"]
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_expired_token_is_401(hub):
    issued_an_hour_ago = ApiAuth(hub.config.api, now=lambda: time.time() - 3600)
    token = issued_an_hour_ago.issue("admin").access_token
    client = TestClient(create_app(hub))
    response = client.get("/v1/xref", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_token_for_another_audience_or_a_removed_client_is_401(hub, clock, sqlite_db):
    app = create_app(hub)
    client = TestClient(app)
    now = int(time.time())
    foreign = jwt.encode(
        {"iss": "q2c", "aud": "someone-else", "sub": "admin", "iat": now, "exp": now + 60},
        SECRETS["Q2C_TEST_SIGNING_KEY"],
    )
    response = client.get("/v1/xref", headers={"Authorization": f"Bearer {foreign}"})
    assert response.status_code == 401 and "audience" in response.json()["detail"]
    headers = bearer(app, "ops")
    section = api_section()
    section["clients"] = [c for c in section["clients"] if c["id"] != "ops"]
    later = _hub(sqlite_db, clock, api_config(section))
    try:
        after_removal = TestClient(create_app(later)).get("/v1/xref", headers=headers)
    finally:
        later.close()
    assert after_removal.status_code == 401
    assert "no longer configured" in after_removal.json()["detail"]


# --- scopes --------------------------------------------------------------------------------

ROUTES = [
    ("GET", "/v1/transactions", None, "read"),
    ("GET", "/v1/transactions/t-1", None, "read"),
    ("GET", "/v1/exceptions", None, "read"),
    ("GET", "/v1/exceptions/1", None, "read"),
    ("GET", "/v1/xref", None, "read"),
    ("GET", "/v1/payloads/1", None, "read"),
    ("POST", "/v1/exceptions/1/replay", {}, "operate"),
    ("POST", "/v1/exceptions/replay", {"dry_run": True}, "operate"),
    ("POST", "/v1/exceptions/1/edit-and-replay", {"merge_patch": {}, "reason": "r"}, "operate"),
    ("POST", "/v1/exceptions/1/dismiss", {"reason": "duplicate"}, "operate"),
    ("POST", "/v1/events", [], "ingest"),
]
HOLDERS = {"read": {"admin", "ops", "reader"}, "operate": {"admin", "ops"},
           "ingest": {"admin", "sender"}}


@pytest.mark.parametrize(("method", "path", "body", "scope"), ROUTES)
def test_every_route_needs_its_scope(app, anonymous, method, path, body, scope):
    assert anonymous.request(method, path, json=body).status_code == 401
    for client_id in ("admin", "ops", "reader", "sender"):
        response = anonymous.request(method, path, json=body, headers=bearer(app, client_id))
        if client_id in HOLDERS[scope]:
            assert response.status_code not in (401, 403), (client_id, response.text)
        else:
            assert response.status_code == 403, (client_id, response.text)
            assert f"lacks the '{scope}' scope" in response.json()["detail"]
            assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_scopes_nest():
    assert expand_scopes(["admin"]) == {"admin", "operate", "read", "ingest"}
    assert expand_scopes(["operate"]) == {"operate", "read"}
    assert expand_scopes(["ingest"]) == {"ingest"}
    assert expand_scopes(["nonsense"]) == frozenset()


def test_open_endpoints_need_no_token(anonymous):
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/metrics").status_code == 200
    assert anonymous.get("/openapi.json").json()["components"]["securitySchemes"]["q2c"][
        "flows"]["clientCredentials"]["tokenUrl"] == "/v1/token"
    ready = anonymous.get("/readyz").json()
    assert ready == {"status": "ok", "checks": {"database": "ok", "transport": "ok"}}


# --- rate limits ---------------------------------------------------------------------------


def test_rate_limit_is_429_with_retry_after_per_client(app, anonymous):
    slow = bearer(app, "slow")
    assert [anonymous.get("/v1/xref", headers=slow).status_code for _ in range(2)] == [200, 200]
    limited = anonymous.get("/v1/xref", headers=slow)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert "rate limit" in limited.json()["detail"]
    # another client's budget is its own
    assert anonymous.get("/v1/xref", headers=bearer(app, "reader")).status_code == 200


def test_rate_limiter_refills_over_time(hub):
    now = [0.0]
    auth = ApiAuth(hub.config.api, monotonic=lambda: now[0])
    client = TestClient(create_app(hub, auth=auth))
    slow = bearer(client.app, "slow")
    codes = [client.get("/v1/xref", headers=slow).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    now[0] += 61  # one request a minute
    assert client.get("/v1/xref", headers=slow).status_code == 200
    assert client.get("/v1/xref", headers=slow).status_code == 429


# --- configuration -------------------------------------------------------------------------


def test_auth_is_on_by_default_and_disabled_only_explicitly(sqlite_db, clock):
    from q2c.config import default_demo_config

    assert default_demo_config().api.auth == "enabled"
    demo = _hub(sqlite_db, clock, default_demo_config())
    try:
        assert TestClient(create_app(demo)).get("/v1/xref").status_code == 401
    finally:
        demo.close()
    local = _hub(sqlite_db, clock, api_config({"auth": "disabled"}))
    try:
        client = TestClient(create_app(local))
        assert client.get("/v1/xref").status_code == 200
        token = client.post("/v1/token", content="grant_type=client_credentials", headers=FORM)
        assert token.status_code == 400
    finally:
        local.close()


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ({"clients": [{"id": "a", "secret_env": "NOT_SET_ANYWHERE", "scopes": ["read"]}]},
         "api.clients[0].secret_env: environment variable NOT_SET_ANYWHERE is not set"),
        ({"clients": [{"id": "a", "secret_env": "Q2C_TEST_OPS_SECRET", "scopes": ["root"]}]},
         "api.clients[0].scopes[0]"),
        ({"clients": [{"id": "a", "secret_env": "hunter2", "scopes": ["read"]}]},
         "must name an environment variable"),
        ({"token": {"algorithm": "RS256"}}, "api.token.private_key_file: required for RS256"),
        ({"webhooks": {"x": {"kind": "hmac"}}}, "api.webhooks.x.secret_env: required"),
        ({"webhooks": {"pay": {"kind": "stripe"}}}, "api.webhooks.pay.system: names no stripe"),
    ],
)
def test_api_config_mistakes_name_the_key(section, words):
    with pytest.raises(ConfigError) as raised:
        api_config(section)
    assert words in raised.value.message
    assert "hunter2" not in raised.value.message + raised.value.detail


@pytest.mark.parametrize("algorithm", ["RS256", "EdDSA"])
def test_asymmetric_signing_keys(sqlite_db, clock, tmp_path, algorithm):
    key = (rsa.generate_private_key(public_exponent=65537, key_size=2048)
           if algorithm == "RS256" else ed25519.Ed25519PrivateKey.generate())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    (tmp_path / "api.pem").write_bytes(pem)
    section = api_section(token={"algorithm": algorithm,
                                 "private_key_file": str(tmp_path / "api.pem")})
    hub = _hub(sqlite_db, clock, api_config(section))
    try:
        client = TestClient(create_app(hub))
        issued = client.post("/v1/token", content="grant_type=client_credentials",
                             headers=basic("reader", SECRETS["Q2C_TEST_READER_SECRET"]))
        token = issued.json()["access_token"]
        assert jwt.get_unverified_header(token)["alg"] == algorithm
        jwt.decode(token, key.public_key(), algorithms=[algorithm], audience="q2c-api")
        ok = client.get("/v1/xref", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
    finally:
        hub.close()


# --- external issuer (JWKS) ----------------------------------------------------------------


@pytest.fixture
def idp() -> Iterator[tuple[str, rsa.RSAPrivateKey]]:
    """An identity provider's JWKS endpoint on the loopback interface."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "idp-1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/jwks.json", key
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_external_issuer_tokens_are_verified_against_its_jwks(sqlite_db, clock, idp):
    jwks_url, key = idp
    section = api_section(external_issuer={
        "issuer": "https://idp.example", "jwks_url": jwks_url, "audience": "q2c",
        "rate_limit": {"requests_per_minute": 1000, "burst": 100}})
    hub = _hub(sqlite_db, clock, api_config(section))
    now = int(time.time())
    claims = {"iss": "https://idp.example", "aud": "q2c", "azp": "finance-portal",
              "scope": "openid operate", "iat": now, "exp": now + 60}
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "idp-1"})
    try:
        app = create_app(hub)
        principal = app.state.auth.verify(token)
        assert principal.client_id == "finance-portal"
        assert principal.scopes == {"operate", "read"}
        client = TestClient(app)
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/v1/exceptions", headers=headers).status_code == 200
        assert client.post("/v1/events", json=[], headers=headers).status_code == 403
        forged_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = jwt.encode(claims, forged_key, algorithm="RS256", headers={"kid": "idp-1"})
        with pytest.raises(InvalidTokenError, match="signature"):
            app.state.auth.verify(forged)
        wrong_audience = jwt.encode({**claims, "aud": "other"}, key, algorithm="RS256",
                                    headers={"kid": "idp-1"})
        assert client.get("/v1/xref", headers={
            "Authorization": f"Bearer {wrong_audience}"}).status_code == 401
    finally:
        hub.close()


# --- readiness and q2c serve ---------------------------------------------------------------


@pytest.mark.parametrize(("url", "ready"), [("nats://127.0.0.1:4222", True),
                                            ("nats://127.0.0.1:1", False)])
def test_readyz_checks_the_event_transport(sqlite_db, clock, url, ready):
    from q2c.config import NatsTransport
    from q2c.runtime.outbox import LocalPublisher

    config = api_config().model_copy(update={"transport": NatsTransport(kind="nats", url=url)})
    hub = bootstrap(config, db=sqlite_db, clock=clock, publisher=LocalPublisher(),
                    connections=Connections(), worker_id="ready")
    try:
        response = TestClient(create_app(hub)).get("/readyz")
    finally:
        hub.close()
    assert response.status_code == (200 if ready else 503)
    assert response.json()["checks"]["database"] == "ok"
    assert (response.json()["checks"]["transport"] == "ok") is ready


def test_serve_refuses_a_network_interface_without_auth(tmp_path):
    from typer.testing import CliRunner

    from q2c.cli import app as cli

    data = yaml.safe_load(DEMO_CONFIG_YAML)
    data["api"] = {"auth": "disabled"}
    data["store"] = {"url": f"sqlite:///{tmp_path / 'q2c.db'}"}
    path = tmp_path / "q2c.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(cli, ["serve", "--config", str(path), "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "serves 127.0.0.1 only" in result.output
