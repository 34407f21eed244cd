"""PsaPort against a real Tryton: projects and timesheet lines as approved time."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from q2c.canonical.models import Project
from q2c.connectors.tryton.adapter import TrytonErp
from q2c.connectors.tryton.psa import TrytonPsa
from q2c.connectors.tryton.rpc import TrytonRpc
from q2c.connectors.tryton.server import TrytonServer
from q2c.flows.ports import PsaPort
from tests.connectors.tryton.helpers import TODAY, make_customer

pytestmark = pytest.mark.integration


@pytest.fixture
def psa(tryton_server: TrytonServer, http) -> TrytonPsa:
    return tryton_server.psa(http)


def test_time_logged_in_tryton_is_delivered_once_in_exact_hours(
    psa: TrytonPsa, admin: TrytonRpc, erp: TrytonErp, uid: str
) -> None:
    assert isinstance(psa, PsaPort)
    customer = make_customer(uid)
    erp.upsert_customer(customer, external_id=f"q2c-crm-{uid}", subsidiary="")
    project = Project(
        id=f"prj-{uid}", code=f"PRJ-{uid}", name=f"Rollout {uid}", customer_id=customer.id,
        legal_entity="US01", start_date=TODAY,
    )  # fmt: skip
    ref = psa.upsert_project(
        project, external_id=f"q2c-prj-{uid}", customer_name=customer.legal_name
    )
    assert (
        psa.upsert_project(project, external_id=f"q2c-prj-{uid}", customer_name=customer.legal_name)
        == ref
    )
    (work,) = admin.read("project.work", [int(ref.erp_id)], ["party.name"])
    assert work["party."]["name"] == customer.legal_name

    before = psa.approved_delivery_since(None).watermark
    first = psa.log_time(ref.erp_id, hours=Decimal("2.5"), on=TODAY, description="Workshop")
    second = psa.log_time(ref.erp_id, hours=Decimal("1.333333"), on=TODAY - dt.timedelta(days=1))
    page = psa.approved_delivery_since(before)
    mine = [r for r in page.records if r.project_ref == ref.erp_id]
    assert [(r.system_id, r.quantity, r.unit) for r in mine] == [
        (first, Decimal("2.500000"), "hour"),
        (second, Decimal("1.333333"), "hour"),
    ]
    assert mine[0].description == "Workshop" and mine[0].person == "Ada Admin"
    assert mine[1].work_date == TODAY - dt.timedelta(days=1)
    assert psa.approved_delivery_since(page.watermark).records == []

    third = psa.log_time(ref.erp_id, hours=Decimal("0.25"), on=TODAY)
    later = psa.approved_delivery_since(page.watermark)
    assert [(r.system_id, r.quantity) for r in later.records] == [(third, Decimal("0.250000"))]
