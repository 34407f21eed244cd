"""Salesforce connector: the CRM adapter, its OAuth auths, and an emulated org (sandbox).

Flows and the composition root use ``SalesforceCrm`` / ``connect_salesforce``; tests and the
demo use ``SalesforceSandbox`` and ``seed_closed_won_deal``. Nothing connects at import time.
"""

from q2c.connectors.salesforce.adapter import (
    SalesforceCrm,
    UpsertResult,
    connect_salesforce,
    soql_quote,
)
from q2c.connectors.salesforce.auth import ClientCredentialsAuth, JwtBearerAuth
from q2c.connectors.salesforce.cdc import parse_opportunity_change_event
from q2c.connectors.salesforce.emulator import SalesforceSandbox
from q2c.connectors.salesforce.errors import translate_error
from q2c.connectors.salesforce.seed import seed_closed_won_deal
from q2c.connectors.salesforce.state import SalesforceState

__all__ = [
    "ClientCredentialsAuth",
    "JwtBearerAuth",
    "SalesforceCrm",
    "SalesforceSandbox",
    "SalesforceState",
    "UpsertResult",
    "connect_salesforce",
    "parse_opportunity_change_event",
    "seed_closed_won_deal",
    "soql_quote",
    "translate_error",
]
