"""Composite resources: ``composite``, sObject collections and sObject tree.

- ``POST composite``: up to 25 sub-requests run in order through the ordinary REST dispatcher;
  ``@{ref.path}`` references read earlier results (``@{NewAccount.id}``,
  ``@{q.records[0].Id}``). With ``allOrNone`` the first failure rolls everything back and every
  other sub-request reports PROCESSING_HALTED; without it, only sub-requests that reference a
  failed one are halted. The call itself answers 200 either way, as Salesforce does.
- ``composite/sobjects``: create / update / upsert / delete / retrieve up to 200 records; errors
  per record (``statusCode`` shape); ``allOrNone`` rolls back and marks the good records
  ALL_OR_NONE_OPERATION_ROLLED_BACK. A composite ``allOrNone`` overrides the collection's.
- ``composite/tree/{Type}``: nested parent/child creation, all or nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from q2c.connectors.salesforce.exchange import ApiRequest, ApiResponse
from q2c.connectors.salesforce.ids import normalize_id
from q2c.connectors.salesforce.schema import SCHEMA, SObjectDef, sobject_def
from q2c.connectors.salesforce.wire import ApiError

if TYPE_CHECKING:
    from q2c.connectors.salesforce.rest import RestApi

__all__ = ["Composite"]

_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
_REF_ID = re.compile(r"^[A-Za-z0-9_]{1,80}$")
_HALTED = "The transaction was rolled back since another operation in the same transaction failed."
_ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header",
    "fields": [],
}


class _RollbackError(Exception):
    """Raised inside ``state.atomic()`` to undo a batch whose results are already recorded."""


def _bad_request(message: str, code: str = "JSON_PARSER_ERROR") -> ApiError:
    return ApiError.one(400, code, message)


def _halted(message: str = _HALTED) -> list[dict[str, Any]]:
    return [{"errorCode": "PROCESSING_HALTED", "message": message}]


class Composite:
    def __init__(self, api: RestApi) -> None:
        self.api = api

    @property
    def state(self) -> Any:
        return self.api.state

    def handle(self, request: ApiRequest, version: str, rest: list[str]) -> ApiResponse:
        method = request.method
        if not rest:
            if method != "POST":
                raise ApiError.one(
                    405,
                    "METHOD_NOT_ALLOWED",
                    f"HTTP Method '{method}' not allowed. Allowed are POST",
                )
            return self._composite(request, version)
        if rest[0] == "sobjects" and len(rest) <= 3:
            return self._collections(request, version, rest[1:])
        if rest[0] == "tree" and len(rest) == 2 and method == "POST":
            return self._tree(request, rest[1])
        raise ApiError.one(404, "NOT_FOUND", "The requested resource does not exist")

    # --- composite ---------------------------------------------------------------------------

    def _composite(self, request: ApiRequest, version: str) -> ApiResponse:
        body = request.body
        if not isinstance(body, dict) or not isinstance(body.get("compositeRequest"), list):
            raise _bad_request("compositeRequest is required and must be a list of subrequests")
        subs = body["compositeRequest"]
        if not 1 <= len(subs) <= 25:
            raise _bad_request(
                f"a composite request has 1 to 25 subrequests, got {len(subs)}", "LIMIT_EXCEEDED"
            )
        all_or_none = body.get("allOrNone", False)
        if not isinstance(all_or_none, bool):
            raise _bad_request("allOrNone must be a boolean")
        seen: set[str] = set()
        for sub in subs:
            _check_subrequest(sub, seen)
        results: dict[str, Any] = {}
        responses: list[dict[str, Any]] = []
        try:
            with self.state.atomic():
                for sub in subs:
                    response = self._run(sub, results, request, all_or_none)
                    responses.append(_entry(sub["referenceId"], response))
                    if all_or_none and response.status >= 400:
                        raise _RollbackError
        except _RollbackError:
            failed = len(responses) - 1
            responses = [
                entry if i == failed else _entry(entry["referenceId"], ApiResponse(400, _halted()))
                for i, entry in enumerate(responses)
            ]
            responses += [
                _entry(sub["referenceId"], ApiResponse(400, _halted()))
                for sub in subs[failed + 1 :]
            ]
        return ApiResponse(200, {"compositeResponse": responses})

    def _run(
        self, sub: dict[str, Any], results: dict[str, Any], parent: ApiRequest, all_or_none: bool
    ) -> ApiResponse:
        try:
            url = _resolve(sub["url"], results)
            body = _resolve(sub.get("body"), results)
        except LookupError as exc:
            return ApiResponse(400, _halted(str(exc)))
        split = urlsplit(url)
        parts = [p for p in split.path.split("/") if p]
        if parts[:2] != ["services", "data"] or (parts[3:4] == ["composite"] and len(parts) == 4):
            return ApiResponse(
                400,
                [
                    {
                        "errorCode": "INVALID_API_INPUT",
                        "message": f"Invalid composite subrequest URL: {url}",
                    }
                ],
            )
        headers = {k.lower(): str(v) for k, v in (sub.get("httpHeaders") or {}).items()}
        response = self.api.dispatch(
            ApiRequest(
                method=sub["method"],
                raw_path=split.path,
                query=dict(parse_qsl(split.query)),
                headers=headers,
                body=body,
                user_id=parent.user_id,
                force_all_or_none=all_or_none,
            )
        )
        if response.status < 400:
            results[sub["referenceId"]] = response.body
        return response

    # --- sObject collections ------------------------------------------------------------------

    def _collections(self, request: ApiRequest, version: str, rest: list[str]) -> ApiResponse:
        method = request.method
        if method == "DELETE" and not rest:
            ids = [i for i in request.query.get("ids", "").split(",") if i]
            flag = request.query.get("allOrNone", "false").lower() == "true"
            return self._batch(ids, flag or request.force_all_or_none, self._delete_one)
        if method == "GET" and len(rest) == 1:
            return self._retrieve(request, version, rest[0])
        body = request.body
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise _bad_request("records is required and must be a list of sObjects")
        records = body["records"]
        if len(records) > 200:
            raise _bad_request("a collection holds at most 200 records", "LIMIT_EXCEEDED")
        flag = body.get("allOrNone", False)
        if not isinstance(flag, bool):
            raise _bad_request("allOrNone must be a boolean")
        flag = flag or request.force_all_or_none
        user = request.user_id
        if method == "POST" and not rest:
            return self._batch(records, flag, lambda r: self._create_one(r, user))
        if method == "PATCH" and len(rest) <= 1:
            default_type = rest[0] if rest else None
            return self._batch(records, flag, lambda r: self._update_one(r, default_type, user))
        if method == "PATCH" and len(rest) == 2:
            odef = _object(rest[0])
            return self._batch(records, flag, lambda r: self._upsert_one(r, odef, rest[1], user))
        raise ApiError.one(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed here")

    def _batch(
        self, items: list[Any], all_or_none: bool, one: Callable[[Any], dict[str, Any]]
    ) -> ApiResponse:
        results: list[dict[str, Any]] = []
        try:
            with self.state.atomic():
                for item in items:
                    try:
                        with self.state.atomic():
                            results.append(one(item))
                    except ApiError as error:
                        results.append({"success": False, "errors": error.as_save_errors()})
                if all_or_none and not all(r["success"] for r in results):
                    raise _RollbackError
        except _RollbackError:
            results = [
                r if not r["success"] else {"id": None, "success": False, "errors": [_ROLLED_BACK]}
                for r in results
            ]
        return ApiResponse(200, results)

    def _create_one(self, record: Any, user: str | None) -> dict[str, Any]:
        odef, fields = _typed(record, None)
        if any(k.lower() == "id" for k in fields):
            raise ApiError.one(
                400,
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                "cannot specify Id in an insert call",
                ["Id"],
            )
        record_id, _ = self.state.save(odef.name, None, fields, user_id=user)
        return {"id": record_id, "success": True, "errors": []}

    def _update_one(
        self, record: Any, default_type: str | None, user: str | None
    ) -> dict[str, Any]:
        odef, fields = _typed(record, default_type)
        record_id = next((v for k, v in fields.items() if k.lower() == "id"), None)
        if not isinstance(record_id, str):
            raise ApiError.one(
                400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"]
            )
        fields = {k: v for k, v in fields.items() if k.lower() != "id"}
        self.state.save(odef.name, record_id, fields, user_id=user)
        return {"id": self.state.existing_id(odef, record_id), "success": True, "errors": []}

    def _upsert_one(
        self, record: Any, odef: SObjectDef, field: str, user: str | None
    ) -> dict[str, Any]:
        rec_def, fields = _typed(record, odef.name)
        fdef = rec_def.field(field)
        if fdef is None or not fdef.external_id:
            raise ApiError.one(
                400, "INVALID_FIELD", f"Field {field} is not an external id field on {rec_def.name}"
            )
        value = next((v for k, v in fields.items() if k.casefold() == fdef.name.casefold()), None)
        if value is None:
            raise ApiError.one(
                400, "MISSING_ARGUMENT", f"{fdef.name} not specified in an upsert call", [fdef.name]
            )
        matches = self.state.find(rec_def.name, fdef.name, value)
        if len(matches) > 1:
            raise ApiError.one(
                300,
                "DUPLICATE_EXTERNAL_ID",
                f"{fdef.name}: more than one record found for external id "
                f"field: {[m['Id'] for m in matches]}",
                [fdef.name],
            )
        existing = matches[0]["Id"] if matches else None
        saved, created = self.state.save(rec_def.name, existing, fields, user_id=user)
        return {"id": saved, "success": True, "errors": [], "created": created}

    def _delete_one(self, record_id: str) -> dict[str, Any]:
        found = self.state.by_id(record_id)
        if found is None:
            if normalize_id(record_id) is None:
                raise ApiError.one(400, "MALFORMED_ID", f"malformed id {record_id}", ["Id"])
            raise ApiError.one(404, "ENTITY_IS_DELETED", "entity is deleted")
        self.state.delete(found[0], record_id)
        return {"id": found[1]["Id"], "success": True, "errors": []}

    def _retrieve(self, request: ApiRequest, version: str, sobject: str) -> ApiResponse:
        odef = _object(sobject)
        fields = request.query.get("fields")
        if not fields:
            raise ApiError.one(400, "MISSING_ARGUMENT", "fields parameter is missing")
        out: list[Any] = []
        for record_id in (i for i in request.query.get("ids", "").split(",") if i):
            try:
                out.append(self.api.record_json(odef, record_id, version, fields))
            except ApiError as error:
                if error.status != 404:
                    raise
                out.append(None)
        return ApiResponse(200, out)

    # --- sObject tree -------------------------------------------------------------------------

    def _tree(self, request: ApiRequest, sobject: str) -> ApiResponse:
        odef = _object(sobject)
        body = request.body
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise _bad_request("records is required and must be a list of sObject trees")
        created: list[dict[str, str]] = []
        seen: set[str] = set()
        try:
            with self.state.atomic():
                for record in body["records"]:
                    self._tree_node(record, odef, None, created, seen, request.user_id)
                if len(created) > 200:
                    raise _TreeError(
                        "",
                        ApiError.one(
                            400, "LIMIT_EXCEEDED", "a tree request holds at most 200 records"
                        ),
                    )
        except _TreeError as failure:
            return ApiResponse(
                400,
                {
                    "hasErrors": True,
                    "results": [
                        {"referenceId": failure.reference, "errors": failure.error.as_save_errors()}
                    ],
                },
            )
        return ApiResponse(201, {"hasErrors": False, "results": created})

    def _tree_node(
        self,
        record: Any,
        odef: SObjectDef,
        parent: tuple[str, str] | None,
        created: list[dict[str, str]],
        seen: set[str],
        user: str | None,
    ) -> None:
        attributes = record.get("attributes") if isinstance(record, dict) else None
        reference = str((attributes or {}).get("referenceId", ""))
        try:
            valid = isinstance(attributes, dict) and _REF_ID.match(reference)
            if not valid or reference in seen:
                raise ApiError.one(
                    400, "INVALID_INPUT", "each record needs attributes with a unique referenceId"
                )
            seen.add(reference)
            fields: dict[str, Any] = {}
            children: list[tuple[str, list[Any]]] = []
            for key, value in record.items():
                if key == "attributes":
                    continue
                if isinstance(value, dict) and odef.child(key) is not None:
                    children.append((key, value.get("records") or []))
                else:
                    fields[key] = value
            if parent is not None:
                fields[parent[0]] = parent[1]
            record_id, _ = self.state.save(odef.name, None, fields, user_id=user)
        except ApiError as error:
            raise _TreeError(reference, error) from None
        created.append({"referenceId": reference, "id": record_id})
        for name, items in children:
            rel = odef.child(name)
            assert rel is not None
            for child in items:
                self._tree_node(
                    child, SCHEMA[rel.child], (rel.field, record_id), created, seen, user
                )


class _TreeError(Exception):
    def __init__(self, reference: str, error: ApiError) -> None:
        super().__init__(error.errors[0]["message"])
        self.reference = reference
        self.error = error


# --- helpers -------------------------------------------------------------------------------------


def _check_subrequest(sub: Any, seen: set[str]) -> None:
    if not isinstance(sub, dict):
        raise _bad_request("each compositeRequest entry must be an object")
    method, url, ref = sub.get("method"), sub.get("url"), sub.get("referenceId")
    if method not in ("GET", "POST", "PATCH", "PUT", "DELETE"):
        raise _bad_request(f"subrequest method must be GET, POST, PATCH, PUT or DELETE: {method}")
    if not isinstance(url, str) or not url.startswith("/services/data/"):
        raise _bad_request(f"subrequest url must start with /services/data/: {url}")
    if not isinstance(ref, str) or not _REF_ID.match(ref):
        raise _bad_request(f"subrequest referenceId is required (letters, digits, _): {ref}")
    if ref in seen:
        raise _bad_request(f"Duplicate referenceId provided in the request: {ref}")
    seen.add(ref)


def _entry(reference: str, response: ApiResponse) -> dict[str, Any]:
    headers = {k: v for k, v in response.headers.items() if k == "Location"}
    return {
        "body": response.body,
        "httpHeaders": headers,
        "httpStatusCode": response.status,
        "referenceId": reference,
    }


def _lookup(expression: str, reference: str, path: str, results: dict[str, Any]) -> Any:
    if reference not in results:
        raise LookupError(
            f"Invalid reference specified. No value for {expression} found in {reference}. "
            f"Provided referenceId ('{reference}') must match a previous subrequest that "
            "succeeded."
        )
    value = results[reference]
    for name, index in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        try:
            value = value[int(index)] if index else value[name]
        except (KeyError, IndexError, TypeError):
            raise LookupError(
                f"Invalid reference specified. No value for {expression} found in {reference}."
            ) from None
    if value is None:
        raise LookupError(f"Invalid reference specified. {expression} is null in {reference}.")
    return value


def _resolve(value: Any, results: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value)
        if whole:
            return _lookup(value[2:-1], whole.group(1), whole.group(2), results)
        return _REFERENCE.sub(
            lambda m: str(_lookup(m.group()[2:-1], m.group(1), m.group(2), results)), value
        )
    if isinstance(value, list):
        return [_resolve(v, results) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, results) for k, v in value.items()}
    return value


def _object(name: str) -> SObjectDef:
    odef = sobject_def(name)
    if odef is None:
        raise ApiError.one(400, "INVALID_TYPE", f"sObject type '{name}' is not supported.")
    return odef


def _typed(record: Any, default_type: str | None) -> tuple[SObjectDef, dict[str, Any]]:
    if not isinstance(record, dict):
        raise ApiError.one(400, "JSON_PARSER_ERROR", "each record must be a JSON object")
    attributes = record.get("attributes") or {}
    type_name = attributes.get("type") if isinstance(attributes, dict) else None
    type_name = type_name or default_type
    if not type_name:
        raise ApiError.one(400, "INVALID_TYPE", "Must send a concrete entity type.")
    if default_type and type_name.casefold() != default_type.casefold():
        raise ApiError.one(
            400, "INVALID_TYPE", f"record type {type_name} does not match {default_type}"
        )
    fields = {k: v for k, v in record.items() if k != "attributes"}
    return _object(type_name), fields
