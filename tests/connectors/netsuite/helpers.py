"""Helpers shared by the NetSuite tests."""

from __future__ import annotations

import httpx


def error_of(response: httpx.Response) -> dict[str, str]:
    """The first ``o:errorDetails`` entry, after checking the problem-document envelope."""
    body = response.json()
    assert body["status"] == response.status_code
    assert body["title"]
    assert body["type"].startswith("https://www.rfc-editor.org/")
    detail: dict[str, str] = body["o:errorDetails"][0]
    return detail
