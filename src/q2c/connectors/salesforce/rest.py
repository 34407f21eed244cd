"""The REST API of the emulated org under ``/services/data/vXX.X/``.

A plain dispatcher from (method, path, query, body) to (status, JSON body): sObject rows
(create, get, update, delete, upsert and get by external id), describe, updated / deleted
replication, query with server-side cursors (``nextRecordsUrl``), limits, and the composite
family (delegated to ``composite``). It knows nothing about ASGI, which lets composite run its
sub-requests through the very same code.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from q2c.connectors.salesforce.composite import Composite
from q2c.connectors.salesforce.exchange import ApiRequest, ApiResponse, split_path
from q2c.connectors.salesforce.ids import KEY_PREFIXES, IdFactory, normalize_id
from q2c.connectors.salesforce.schema import SCHEMA, SObjectDef, sobject_def
from q2c.connectors.salesforce.soql import SoqlSyntaxError, parse_soql
from q2c.connectors.salesforce.soql_eval import run_query
from q2c.connectors.salesforce.state import SalesforceState
from q2c.connectors.salesforce.values import to_wire
from q2c.connectors.salesforce.wire import ApiError, format_datetime, parse_datetime

__all__ = ["LATEST_VERSION", "RestApi", "version_label"]

LATEST_VERSION = "62.0"
_VERSION = re.compile(r"^v(\d{2})\.(\d)$")
_RECORD_ACTIONS = {"describe", "updated", "deleted", "eventSchema"}
_CURSOR_IDLE_SECONDS = 15 * 60


def version_label(version: float) -> str:
    """Release name of an API version: 62.0 is Winter '25, 61.0 Summer '24, 60.0 Spring '24."""
    offset = 62 - int(version)
    season = ("Winter", "Summer", "Spring")[offset % 3]
    year = 25 - (offset + 2) // 3
    return f"{season} '{year:02d}"


def not_found() -> ApiError:
    return ApiError.one(404, "NOT_FOUND", "The requested resource does not exist")


@dataclass
class _Cursor:
    records: list[dict[str, Any]]
    batch: int
    touched: float


class RestApi:
    """Dispatches REST calls against one ``SalesforceState``."""

    def __init__(
        self,
        state: SalesforceState,
        *,
        page_size: int = 2000,
        min_batch_size: int = 200,
        daily_api_requests: int = 100_000,
    ) -> None:
        self.state = state
        self.daily_api_requests = daily_api_requests
        self.api_requests_used = 0
        self.page_size = page_size
        self.min_batch_size = min(min_batch_size, page_size)
        self.composite = Composite(self)
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._cursor_ids = IdFactory(pod="2x")
        self._lock = threading.Lock()

    # --- entry point ------------------------------------------------------------------------

    def handle(self, request: ApiRequest) -> ApiResponse:
        """Answer one top-level call, counting it against the org's daily API request limit."""
        with self._lock:
            over = self.api_requests_used >= self.daily_api_requests
            if not over:
                self.api_requests_used += 1
            usage = f"api-usage={self.api_requests_used}/{self.daily_api_requests}"
        if over:
            response = ApiResponse(
                403,
                [
                    {
                        "message": "TotalRequests Limit exceeded.",
                        "errorCode": "REQUEST_LIMIT_EXCEEDED",
                    }
                ],
            )
        else:
            response = self.dispatch(request)
        response.headers["Sforce-Limit-Info"] = usage
        return response

    def dispatch(self, request: ApiRequest) -> ApiResponse:
        """Answer one call; Salesforce errors come back as responses, never as exceptions."""
        try:
            return self._route(request)
        except ApiError as error:
            return ApiResponse(error.status, error.errors)

    def limits(self) -> dict[str, Any]:
        with self._lock:
            used = self.api_requests_used
        return {
            "DailyApiRequests": {
                "Max": self.daily_api_requests,
                "Remaining": max(0, self.daily_api_requests - used),
            }
        }

    def _route(self, request: ApiRequest) -> ApiResponse:
        parts = split_path(request.raw_path)
        if parts[:2] != ["services", "data"] or len(parts) < 3 or not _VERSION.match(parts[2]):
            raise not_found()
        version, rest = parts[2], parts[3:]
        method = request.method
        if not rest:
            return self._allow(method, "GET") or ApiResponse(200, self._resources(version))
        head = rest[0]
        if head == "sobjects":
            return self._sobjects(request, version, rest[1:])
        if head in ("query", "queryAll"):
            if len(rest) == 1:
                return self._allow(method, "GET") or self._query(request, version)
            if len(rest) == 2:
                return self._allow(method, "GET") or self._query_more(rest[1], version)
        if head == "composite":
            return self.composite.handle(request, version, rest[1:])
        if head == "limits" and len(rest) == 1:
            return self._allow(method, "GET") or ApiResponse(200, self.limits())
        raise not_found()

    @staticmethod
    def _allow(method: str, *allowed: str) -> ApiResponse | None:
        if method in allowed:
            return None
        return ApiResponse(
            405,
            [
                {
                    "errorCode": "METHOD_NOT_ALLOWED",
                    "message": f"HTTP Method '{method}' not allowed. "
                    f"Allowed are {','.join(allowed)}",
                }
            ],
        )

    def _resources(self, version: str) -> dict[str, str]:
        base = f"/services/data/{version}"
        names = ("sobjects", "query", "queryAll", "composite", "limits")
        return {name: f"{base}/{name}" for name in names}

    # --- sObject resources -------------------------------------------------------------------

    def _sobjects(self, request: ApiRequest, version: str, rest: list[str]) -> ApiResponse:
        method = request.method
        if not rest:
            return self._allow(method, "GET") or ApiResponse(
                200,
                {
                    "encoding": "UTF-8",
                    "maxBatchSize": 200,
                    "sobjects": [o.summary(version) for o in SCHEMA.values()],
                },
            )
        if len(rest) == 2 and rest[1] == "eventSchema" and rest[0].endswith("ChangeEvent"):
            return self._allow(method, "GET") or ApiResponse(200, _event_schema(rest[0]))
        odef = sobject_def(rest[0])
        if odef is None:
            raise ApiError.one(404, "NOT_FOUND", "The requested resource does not exist")
        if len(rest) == 1:
            if method == "POST":
                return self._create(request, odef, version)
            return self._allow(method, "GET", "POST") or ApiResponse(
                200,
                {
                    "objectDescribe": odef.summary(version),
                    "recentItems": [],
                },
            )
        if len(rest) == 2 and rest[1] in _RECORD_ACTIONS:
            return self._allow(method, "GET") or self._object_action(
                request, odef, version, rest[1]
            )
        if len(rest) == 2:
            return self._row(request, odef, version, rest[1])
        if len(rest) == 3:
            return self._by_external_id(request, odef, version, rest[1], rest[2])
        raise not_found()

    def _object_action(
        self, request: ApiRequest, odef: SObjectDef, version: str, action: str
    ) -> ApiResponse:
        if action == "describe":
            return ApiResponse(200, odef.describe(version))
        if action == "eventSchema":
            raise not_found()
        start, end = _replication_window(request)
        if action == "deleted":
            return ApiResponse(
                200,
                {
                    "deletedRecords": self.state.deleted_since(odef.name, start, end),
                    "earliestDateAvailable": format_datetime(start),
                    "latestDateCovered": format_datetime(end),
                },
            )
        with self.state.lock:
            ids = [
                rid
                for rid, r in self.state.table(odef.name).items()
                if start <= r["SystemModstamp"] < end
            ]
            covered = min(end, self.state.now().replace(second=0, microsecond=0))
        return ApiResponse(200, {"ids": ids, "latestDateCovered": format_datetime(covered)})

    def _create(self, request: ApiRequest, odef: SObjectDef, version: str) -> ApiResponse:
        body = _object_body(request.body)
        record_id, _ = self.state.save(odef.name, None, body, user_id=request.user_id)
        return ApiResponse(
            201,
            {"id": record_id, "success": True, "errors": []},
            {"Location": f"/services/data/{version}/sobjects/{odef.name}/{record_id}"},
        )

    def _row(self, request: ApiRequest, odef: SObjectDef, version: str, raw_id: str) -> ApiResponse:
        record_id = normalize_id(raw_id)
        if record_id is None:
            raise ApiError.one(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {raw_id}",
            )
        method = request.method
        if method == "GET":
            return ApiResponse(
                200, self.record_json(odef, record_id, version, request.query.get("fields"))
            )
        if method == "PATCH":
            self.state.save(odef.name, raw_id, _object_body(request.body), user_id=request.user_id)
            return ApiResponse(204)
        if method == "DELETE":
            self.state.delete(odef.name, raw_id)
            return ApiResponse(204)
        return self._allow(method, "GET", "PATCH", "DELETE") or ApiResponse(500)

    def record_json(
        self, odef: SObjectDef, raw_id: str, version: str, fields: str | None = None
    ) -> dict[str, Any]:
        with self.state.lock:
            key = self.state.existing_id(odef, raw_id)  # raises MALFORMED_ID / NOT_FOUND
            record = self.state.table(odef.name)[key]
            names = list(odef.fields)
            if fields:
                names = []
                for raw in fields.split(","):
                    fdef = odef.field(raw.strip())
                    if fdef is None:
                        raise ApiError.one(
                            400,
                            "INVALID_FIELD",
                            f"No such column '{raw.strip()}' on sobject of type {odef.name}",
                        )
                    names.append(fdef.name)
            out: dict[str, Any] = {
                "attributes": {
                    "type": odef.name,
                    "url": f"/services/data/{version}/sobjects/{odef.name}/{key}",
                }
            }
            out.update({n: to_wire(odef.fields[n], record.get(n)) for n in names})
            return out

    def _by_external_id(
        self, request: ApiRequest, odef: SObjectDef, version: str, field: str, value: str
    ) -> ApiResponse:
        fdef = odef.field(field)
        if fdef is None or not (fdef.external_id or fdef.type == "id"):
            raise ApiError.one(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {field}",
            )
        method = request.method
        if fdef.type == "id":
            if method == "POST":
                return self._create(request, odef, version)
            return self._row(request, odef, version, value)
        with self.state.atomic():
            matches = self.state.find(odef.name, fdef.name, value)
            if len(matches) > 1:
                return ApiResponse(
                    300,
                    [f"/services/data/{version}/sobjects/{odef.name}/{m['Id']}" for m in matches],
                )
            if method == "GET":
                if not matches:
                    raise not_found()
                return ApiResponse(
                    200,
                    self.record_json(odef, matches[0]["Id"], version, request.query.get("fields")),
                )
            if method == "DELETE":
                if not matches:
                    raise not_found()
                self.state.delete(odef.name, matches[0]["Id"])
                return ApiResponse(204)
            if method != "PATCH":
                return self._allow(method, "GET", "PATCH", "DELETE") or ApiResponse(500)
            return self._upsert(request, odef, version, fdef.name, value, matches)

    def _upsert(
        self,
        request: ApiRequest,
        odef: SObjectDef,
        version: str,
        field: str,
        value: str,
        matches: list[dict[str, Any]],
    ) -> ApiResponse:
        body = _object_body(request.body)
        for key, given in body.items():
            if key.casefold() == field.casefold() and str(given) != value:
                raise ApiError.one(
                    400,
                    "INVALID_FIELD",
                    f"The external ID field {field} in the body ({given}) does not match the "
                    f"value in the URL ({value})",
                    [field],
                )
        if not matches and request.query.get("updateOnly", "").lower() == "true":
            raise not_found()
        record_id = matches[0]["Id"] if matches else None
        fields = body if record_id else {**body, field: value}
        saved_id, created = self.state.save(odef.name, record_id, fields, user_id=request.user_id)
        result = {"id": saved_id, "success": True, "errors": [], "created": created}
        if created:
            return ApiResponse(
                201,
                result,
                {"Location": f"/services/data/{version}/sobjects/{odef.name}/{saved_id}"},
            )
        if float(version[1:]) < 46.0:
            return ApiResponse(204)
        return ApiResponse(200, result)

    # --- query ---------------------------------------------------------------------------------

    def _query(self, request: ApiRequest, version: str) -> ApiResponse:
        text = request.query.get("q")
        if not text:
            raise ApiError.one(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            parsed = parse_soql(text)
        except SoqlSyntaxError as exc:
            raise ApiError.one(400, "MALFORMED_QUERY", str(exc)) from None
        result = run_query(self.state, parsed, version=version)
        batch = self._batch_size(request.headers.get("sforce-query-options", ""))
        if len(result.records) <= batch:
            return ApiResponse(
                200, {"totalSize": result.total_size, "done": True, "records": result.records}
            )
        locator = self._cursor_ids.new(KEY_PREFIXES["QueryLocator"])
        with self._lock:
            self._cursors[locator] = _Cursor(result.records, batch, time.monotonic())
            while len(self._cursors) > 1000:  # Salesforce caps open cursors per user too
                self._cursors.popitem(last=False)
        return ApiResponse(
            200,
            {
                "totalSize": result.total_size,
                "done": False,
                "nextRecordsUrl": f"/services/data/{version}/query/{locator}-{batch}",
                "records": result.records[:batch],
            },
        )

    def _query_more(self, token: str, version: str) -> ApiResponse:
        locator, _, offset_text = token.rpartition("-")
        now = time.monotonic()
        with self._lock:
            cursor = self._cursors.get(locator)
            if cursor is not None and now - cursor.touched > _CURSOR_IDLE_SECONDS:
                del self._cursors[locator]
                cursor = None
            if cursor is None or not offset_text.isdigit():
                raise ApiError.one(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            cursor.touched = now
        offset = int(offset_text)
        page = cursor.records[offset : offset + cursor.batch]
        done = offset + cursor.batch >= len(cursor.records)
        body: dict[str, Any] = {"totalSize": len(cursor.records), "done": done, "records": page}
        if not done:
            next_offset = offset + cursor.batch
            body["nextRecordsUrl"] = f"/services/data/{version}/query/{locator}-{next_offset}"
        return ApiResponse(200, body)

    def _batch_size(self, options: str) -> int:
        match = re.search(r"batchSize\s*=\s*(\d+)", options)
        if not match:
            return self.page_size
        return max(self.min_batch_size, min(int(match.group(1)), self.page_size))


# --- helpers ---------------------------------------------------------------------------------


def _object_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError.one(
            400,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of SObject from a non-object JSON value",
        )
    return body


def _replication_window(request: ApiRequest) -> tuple[datetime, datetime]:
    values = []
    for name in ("start", "end"):
        raw = request.query.get(name)
        if not raw:
            raise ApiError.one(400, "MISSING_ARGUMENT", f"{name} parameter is missing")
        try:
            # an unencoded '+' in the offset arrives as a space
            parsed = parse_datetime(raw.replace(" ", "+"))
        except ValueError:
            raise ApiError.one(
                400, "INVALID_REPLICATION_DATE", f"{name} is not a valid dateTime: {raw}"
            ) from None
        values.append(parsed.replace(second=0, microsecond=0))  # seconds are ignored
    start, end = values
    if end - start < timedelta(minutes=1):
        raise ApiError.one(
            400,
            "INVALID_REPLICATION_DATE",
            "startDate must chronologically precede endDate by more than one minute",
        )
    return start, end


_AVRO_TYPES = {
    "boolean": "boolean",
    "int": "int",
    "double": "double",
    "currency": "double",
    "percent": "double",
    "date": "int",
    "datetime": "long",
}


def _event_schema(event_name: str) -> dict[str, Any]:
    """The Avro schema of a change event: header first, then the object's fields in order.

    Pub/Sub API bitmaps (``changedFields: ['0x...']``) index into exactly this field list.
    """
    odef = sobject_def(event_name.removesuffix("ChangeEvent"))
    if odef is None:
        raise not_found()
    fields: list[dict[str, Any]] = [
        {"name": "ChangeEventHeader", "type": "com.sforce.eventbus.ChangeEventHeader"}
    ]
    for name, fdef in odef.fields.items():
        if name in ("Id", "IsDeleted", "SystemModstamp"):
            continue
        fields.append(
            {"name": name, "type": ["null", _AVRO_TYPES.get(fdef.type, "string")], "default": None}
        )
    return {
        "name": f"{odef.name}ChangeEvent",
        "namespace": "com.sforce.eventbus",
        "type": "record",
        "fields": fields,
        "uuid": hashlib.sha256(",".join(f["name"] for f in fields).encode()).hexdigest()[:22],
    }
