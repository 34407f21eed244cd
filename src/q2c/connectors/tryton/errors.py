"""Tryton's errors translated into q2c errors, at the edge.

A JSON-RPC call answers HTTP 200 with ``{"error": E}`` for everything the model layer raises
(``trytond/protocols/jsonrpc.py`` puts the exception's ``args`` there); the transport and the
dispatcher answer with HTTP statuses. Tryton's own message is kept word for word: it is
written for the person using Tryton and names the record and field.

    ["UserError", [msg, description, domain]]        -> ValidationError (field named if any)
      ... "You are not allowed to ..." (AccessError)  -> AuthError
      ... "... records ... that don't exist"          -> NotFoundError
    ["UserWarning", [name, msg, description]]        -> ValidationError (warning to confirm)
    ["ConcurrencyException", msg]                    -> RetriableError (record changed meanwhile)
    ["LoginException", [name, msg, type]]            -> AuthError (another login factor asked)
    [str(exception), traceback] (server bug)         -> FatalError, except
      "database is locked" (SQLite's single writer)  -> RetriableError
    HTTP 401 (stale session, after one re-login)     -> AuthError      (RestClient)
    HTTP 403 (method not exposed over RPC)           -> FatalError
    HTTP 404 (no such database)                      -> ConfigError
    HTTP 429 (login rate limit), 5xx, 503 locked     -> RetriableError (RestClient)

Tryton's ``AccessError`` is a ``UserError`` on the wire, so it is recognised by its message
(``ir/message.xml``: "You are not allowed to ..."), and a read of a missing record by its
message too ("... that don't exist"); those are the only heuristics here.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from q2c.errors import (
    AuthError,
    ConfigError,
    FatalError,
    NotFoundError,
    Q2CError,
    RetriableError,
    ValidationError,
)

__all__ = ["subject_of", "translate_http_error", "translate_rpc_error"]

SYSTEM = "tryton"

_SUBJECTS = {
    "party.party": "customer (party)",
    "party.address": "customer address",
    "party.identifier": "customer identifier",
    "account.invoice": "invoice",
    "account.invoice.line": "invoice line",
    "account.invoice.pay": "invoice payment",
    "account.move": "journal entry",
    "account.move.line": "journal entry line",
    "project.work": "project",
    "timesheet.line": "timesheet line",
    "timesheet.work": "timesheet work",
    "sale.sale": "sales order",
    "currency.currency": "currency",
    "currency.currency.rate": "exchange rate",
    "account.tax": "tax",
    "product.product": "product",
    "res.user": "user",
}
_ACCESS_PREFIXES = ("You are not allowed to", "Calling button")
_FIELD = re.compile(r'field "([^"]+)"')
_LOCKED = ("database is locked", "could not obtain lock", "deadlock detected")


def subject_of(method: str) -> str:
    """What a call was about, in words: ``model.account.invoice.post`` -> "invoice"."""
    parts = method.split(".")
    if len(parts) < 3 or parts[0] not in ("model", "wizard"):
        return "request"
    name = ".".join(parts[1:-1])
    return _SUBJECTS.get(name, name)


def _text(*parts: object) -> str:
    return " ".join(str(p).strip() for p in parts if p and str(p).strip())


def translate_rpc_error(method: str, error: Any, *, detail: str) -> Q2CError:
    """Map the ``error`` member of a JSON-RPC reply to the q2c error the runtime handles."""
    subject = subject_of(method)
    common: dict[str, Any] = {"detail": detail, "system": SYSTEM}
    kind = error[0] if isinstance(error, list) and error else None
    args = error[1] if isinstance(error, list) and len(error) > 1 else None
    if kind == "UserError" and isinstance(args, list) and args:
        message = _text(args[0], args[1] if len(args) > 1 else "")
        context = {"tryton_error": "UserError", "subject": subject, "method": method}
        if str(args[0]).startswith(_ACCESS_PREFIXES):
            return AuthError(
                f"Tryton's user for q2c may not do this on the {subject}: {message}",
                suggested_fix="Give q2c's Tryton user the access group Tryton names, then replay.",
                context=context,
                **common,
            )
        if "that don't exist" in str(args[0]):
            return NotFoundError(
                f"Tryton has no such {subject}: {message}", context=context, **common
            )
        match = _FIELD.search(str(args[0]))
        return ValidationError(
            f"Tryton refused the {subject}: {message}",
            field=match.group(1) if match else None,
            context=context,
            **common,
        )
    if kind == "UserWarning" and isinstance(args, list) and len(args) > 1:
        name, message = str(args[0]), _text(*args[1:])
        return ValidationError(
            f"Tryton asks to confirm a warning on the {subject}: {message}",
            suggested_fix=(
                "Check the warning in Tryton; if it is expected, confirm it there "
                "(Administration > Users > Warnings), then replay."
            ),
            context={"tryton_error": "UserWarning", "warning": name, "subject": subject},
            **common,
        )
    if kind == "ConcurrencyException":
        return RetriableError(
            f"Someone changed the {subject} in Tryton at the same time; q2c will retry",
            context={"tryton_error": "ConcurrencyException", "subject": subject},
            **common,
        )
    if kind == "LoginException":
        return AuthError(
            "Tryton asks for another login factor that q2c cannot give",
            suggested_fix="Use a Tryton user that signs in with a password only.",
            **common,
        )
    text = str(error[0]) if isinstance(error, list) and error else str(error)
    if any(marker in text.lower() for marker in _LOCKED):
        return RetriableError(
            f"Tryton's database was busy writing the {subject}; q2c will retry",
            context={"tryton_error": "locked", "subject": subject},
            **common,
        )
    return FatalError(
        f"Tryton failed on the {subject} with an internal error: {text[:300]}",
        context={"tryton_error": "server", "subject": subject, "method": method},
        **common,
    )


def translate_http_error(response: httpx.Response) -> Q2CError:
    """4xx statuses RestClient hands over (401, 429 and 5xx it classifies itself)."""
    status = response.status_code
    where = f"{response.request.method} {response.request.url} -> {status}"
    detail = f"{where}: {response.text[:2000]}"
    if status == 403:
        return FatalError(
            "Tryton does not expose this method over RPC (q2c made a wrong call)",
            detail=detail,
            system=SYSTEM,
        )
    if status == 404:
        return ConfigError(
            "The Tryton database q2c is configured for does not exist on that server",
            detail=detail,
            system=SYSTEM,
            suggested_fix="Correct the Tryton database name (account_id) in q2c.yaml.",
        )
    if status in (409, 423):  # bare-protocol UserWarning / ConcurrencyException
        return RetriableError("Tryton reported a conflict; q2c will retry", detail=detail)
    return FatalError(f"Tryton refused q2c's request ({status})", detail=detail, system=SYSTEM)
