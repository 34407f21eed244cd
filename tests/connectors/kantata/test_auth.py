"""Signing in: bearer token, renewal by refresh token or client credentials, refusals."""

from __future__ import annotations

import pytest

from q2c.connectors.kantata import connect_kantata
from q2c.connectors.kantata.sandbox import KantataSandbox
from q2c.connectors.sandbox import Fault
from q2c.errors import AuthError, RetriableError


def test_static_token_works_without_any_token_traffic(box: KantataSandbox) -> None:
    psa = box.psa(renewable=False)

    assert psa.current_user()["full_name"] == "Q2C Integration"
    assert box.token_requests == 0


def test_refused_token_is_renewed_with_the_refresh_token_once(box: KantataSandbox) -> None:
    psa = box.psa()
    box.expire_tokens()

    psa.current_user()
    psa.current_user()

    assert box.token_requests == 1


def test_without_the_means_to_renew_a_refused_token_is_fatal(box: KantataSandbox) -> None:
    psa = box.psa(renewable=False)
    box.expire_tokens()

    with pytest.raises(AuthError) as info:
        psa.current_user()
    assert "Invalid OAuth 2 Request" in info.value.detail


def test_client_credentials_obtain_a_token_first(box: KantataSandbox) -> None:
    psa = connect_kantata(
        box.client(),
        client_id=box.client_id,
        client_secret=box.client_secret,
        base_url=box.base_url,
    )

    psa.current_user()
    psa.current_user()

    assert box.token_requests == 1


def test_wrong_client_secret_is_an_auth_error(box: KantataSandbox) -> None:
    psa = connect_kantata(
        box.client(), client_id=box.client_id, client_secret="wrong", base_url=box.base_url
    )

    with pytest.raises(AuthError) as info:
        psa.current_user()
    assert "Client authentication failed" in info.value.message


def test_revoked_refresh_token_is_an_auth_error(box: KantataSandbox) -> None:
    psa = connect_kantata(
        box.client(),
        access_token="stale",
        base_url=box.base_url,
        client_id=box.client_id,
        client_secret=box.client_secret,
        refresh_token="revoked",
    )

    with pytest.raises(AuthError) as info:
        psa.current_user()
    assert "invalid" in info.value.message


def test_token_endpoint_outage_is_retriable(box: KantataSandbox) -> None:
    psa = box.psa()
    box.expire_tokens()
    box.faults.inject(Fault("server_error", path="/oauth/token", status=503))

    with pytest.raises(RetriableError):
        psa.current_user()
    psa.current_user()
    assert box.token_requests == 1


def test_without_a_token_or_client_credentials_the_connection_is_refused_up_front() -> None:
    import httpx

    from q2c.errors import ConfigError

    with pytest.raises(ConfigError, match="access token, or a client id and secret"):
        connect_kantata(httpx.Client(), client_id="only-the-id")
