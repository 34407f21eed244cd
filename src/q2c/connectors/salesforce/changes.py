"""Change Data Capture events as the emulated org publishes them (CometD JSON form).

One event per committed write: CREATE carries every non-null field, UPDATE the changed fields
(plus LastModifiedDate) with ``changedFields`` naming them, DELETE only the header. Dates are
``YYYY-MM-DD``, datetimes ``...T10:00:00.000Z``, numbers exact, as the Streaming API sends them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from q2c.connectors.salesforce.schema import FieldDef, SObjectDef
from q2c.connectors.salesforce.values import to_wire

__all__ = ["change_event"]

_NOT_PUBLISHED = ("Id", "SystemModstamp", "LastModifiedById")


def change_event(
    odef: SObjectDef,
    record_id: str,
    new: dict[str, Any] | None,
    old: dict[str, Any] | None,
    *,
    actor: str,
    stamp: datetime,
    commit_number: int,
    replay_id: int,
) -> dict[str, Any]:
    changed: list[str] = []
    body: dict[str, Any] = {}
    if new is None:
        change_type = "DELETE"
    elif old is None:
        change_type = "CREATE"
        body = {
            name: _value(fdef, value)
            for name, fdef in odef.fields.items()
            if (value := new.get(name)) is not None and name not in _NOT_PUBLISHED
        }
    else:
        change_type = "UPDATE"
        changed = [
            name
            for name in odef.fields
            if name not in _NOT_PUBLISHED and new.get(name) != old.get(name)
        ]
        body = {name: _value(odef.fields[name], new.get(name)) for name in changed}
    header = {
        "entityName": odef.name,
        "recordIds": [record_id],
        "changeType": change_type,
        "changeOrigin": "com/salesforce/api/rest/62.0",
        "transactionKey": str(uuid.uuid4()),
        "sequenceNumber": 1,
        "commitTimestamp": int(stamp.timestamp() * 1000),
        "commitNumber": commit_number,
        "commitUser": actor,
        "nulledFields": [n for n in changed if new is not None and new.get(n) is None],
        "diffFields": [],
        "changedFields": changed,
    }
    return {
        "schema": f"{odef.name}ChangeEvent",
        "payload": {"ChangeEventHeader": header, **body},
        "event": {"replayId": replay_id},
    }


def _value(fdef: FieldDef, value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return to_wire(fdef, value)
