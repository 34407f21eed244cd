"""The emulated org's metadata: sObjects, their fields, and what ``describe`` says about them.

Field types, lengths, required-ness, external ids and relationships follow the standard objects
in Salesforce's Object Reference, plus the custom fields a q2c-connected org carries
(``Tax_Id__c``, ``Billing_Model__c`` ...). Everything the emulator validates, and everything
SOQL resolves, comes from this one table, so describe, writes and queries always agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from q2c.canonical.money import MINOR_UNITS
from q2c.connectors.salesforce.countries import COUNTRY_NAMES
from q2c.connectors.salesforce.ids import KEY_PREFIXES

__all__ = ["SCHEMA", "ChildRelationship", "FieldDef", "SObjectDef", "sobject_def"]

STRING_TYPES = {"string", "textarea", "picklist", "phone", "email", "url"}
NUMBER_TYPES = {"currency", "double", "percent", "int"}

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "currency": "xsd:double",
    "double": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
}


@dataclass(frozen=True)
class FieldDef:
    """One field as describe reports it, plus what the emulator needs to enforce it."""

    name: str
    label: str
    type: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    required: bool = False
    createable: bool = True
    updateable: bool = True
    external_id: bool = False
    unique: bool = False
    default: Any = None
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    cascade_delete: bool = False
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    calculated: bool = False

    @property
    def nillable(self) -> bool:
        return not self.required and self.type != "boolean"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "soapType": _SOAP_TYPES.get(self.type, "xsd:string"),
            "length": self.length,
            "precision": self.precision,
            "scale": self.scale,
            "digits": self.precision if self.type == "int" else 0,
            "nillable": self.nillable,
            "createable": self.createable,
            "updateable": self.updateable,
            "externalId": self.external_id,
            "idLookup": self.external_id or self.type == "id",
            "unique": self.unique,
            "calculated": self.calculated,
            "custom": self.name.endswith("__c"),
            "defaultedOnCreate": self.default is not None or self.type == "boolean",
            "defaultValue": self.default if not callable(self.default) else None,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "cascadeDelete": self.cascade_delete,
            "restrictedPicklist": self.restricted,
            "picklistValues": [
                {"active": True, "defaultValue": v == self.default, "label": v, "value": v}
                for v in self.picklist
            ],
            "filterable": True,
            "sortable": self.type != "textarea",
            "groupable": self.type not in NUMBER_TYPES | {"textarea", "datetime"},
        }


@dataclass(frozen=True)
class ChildRelationship:
    name: str
    child: str
    field: str
    cascade_delete: bool


@dataclass
class SObjectDef:
    name: str
    label: str
    label_plural: str
    fields: dict[str, FieldDef]
    children: dict[str, ChildRelationship] = field(default_factory=dict)

    @property
    def key_prefix(self) -> str:
        return KEY_PREFIXES[self.name]

    def field(self, name: str) -> FieldDef | None:
        """Field by name, case-insensitively, as Salesforce resolves JSON keys and SOQL."""
        found = self.fields.get(name)
        if found is not None:
            return found
        return self._folded.get(name.casefold())

    def relationship(self, name: str) -> FieldDef | None:
        """The lookup field behind a parent relationship name (Account -> AccountId)."""
        return self._relationships.get(name.casefold())

    def child(self, name: str) -> ChildRelationship | None:
        for rel_name, rel in self.children.items():
            if rel_name.casefold() == name.casefold():
                return rel
        return None

    def __post_init__(self) -> None:
        self._folded = {n.casefold(): f for n, f in self.fields.items()}
        self._relationships = {
            f.relationship_name.casefold(): f for f in self.fields.values() if f.relationship_name
        }

    def urls(self, version: str) -> dict[str, str]:
        base = f"/services/data/{version}/sobjects/{self.name}"
        return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}

    def describe(self, version: str) -> dict[str, Any]:
        return {
            **self.summary(version),
            "fields": [f.describe() for f in self.fields.values()],
            "childRelationships": [
                {
                    "childSObject": r.child,
                    "field": r.field,
                    "relationshipName": r.name,
                    "cascadeDelete": r.cascade_delete,
                }
                for r in self.children.values()
            ],
            "recordTypeInfos": [],
        }

    def summary(self, version: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "labelPlural": self.label_plural,
            "keyPrefix": self.key_prefix,
            "custom": False,
            "createable": self.name != "User",
            "updateable": True,
            "deletable": self.name != "User",
            "queryable": True,
            "searchable": True,
            "urls": self.urls(version),
        }


# --- field constructors ----------------------------------------------------------------------


def _text(name: str, label: str, length: int = 255, kind: str = "string", **kw: Any) -> FieldDef:
    return FieldDef(name, label, kind, length=length, **kw)


def _num(name: str, label: str, kind: str, precision: int, scale: int, **kw: Any) -> FieldDef:
    return FieldDef(name, label, kind, precision=precision, scale=scale, **kw)


def _ref(name: str, label: str, to: str, rel: str, **kw: Any) -> FieldDef:
    return FieldDef(
        name, label, "reference", length=18, reference_to=(to,), relationship_name=rel, **kw
    )


def _pick(name: str, label: str, values: tuple[str, ...], **kw: Any) -> FieldDef:
    return FieldDef(name, label, "picklist", length=255, picklist=values, **kw)


def _derived(fdef: FieldDef) -> FieldDef:
    return replace(fdef, createable=False, updateable=False, calculated=True)


_CURRENCIES = tuple(sorted(MINOR_UNITS))
_CURRENCY = _pick(
    "CurrencyIsoCode", "Currency ISO Code", _CURRENCIES, restricted=True, default="USD"
)

STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)
STAGE_PROBABILITY = dict(zip(STAGES, (10, 10, 20, 50, 60, 70, 75, 90, 100, 0), strict=True))
QUOTE_STATUSES = (
    "Draft",
    "Needs Review",
    "In Review",
    "Approved",
    "Rejected",
    "Presented",
    "Accepted",
    "Denied",
)


def _system(name: str) -> dict[str, FieldDef]:
    return {
        "Id": FieldDef("Id", f"{name} ID", "id", length=18, createable=False, updateable=False),
        "IsDeleted": _derived(FieldDef("IsDeleted", "Deleted", "boolean", default=False)),
        "CreatedDate": _derived(FieldDef("CreatedDate", "Created Date", "datetime")),
        "CreatedById": _derived(_ref("CreatedById", "Created By ID", "User", "CreatedBy")),
        "LastModifiedDate": _derived(
            FieldDef("LastModifiedDate", "Last Modified Date", "datetime")
        ),
        "LastModifiedById": _derived(
            _ref("LastModifiedById", "Last Modified By ID", "User", "LastModifiedBy")
        ),
        "SystemModstamp": _derived(FieldDef("SystemModstamp", "System Modstamp", "datetime")),
    }


def _object(name: str, label: str, plural: str, *fields: FieldDef) -> SObjectDef:
    return SObjectDef(name, label, plural, {**_system(name), **{f.name: f for f in fields}})


_ERP_IDS = (_text("ERP_Customer_Id__c", "ERP Customer Id", 40, external_id=True),)

SCHEMA: dict[str, SObjectDef] = {
    o.name: o
    for o in (
        _object(
            "User",
            "User",
            "Users",
            _text("Username", "Username", 80, required=True, unique=True),
            _text("Name", "Full Name", 121),
            _text("Email", "Email", 128, "email"),
            FieldDef("IsActive", "Active", "boolean", default=True),
        ),
        _object(
            "Account",
            "Account",
            "Accounts",
            _text("Name", "Account Name", 255, required=True),
            _text("Tax_Id__c", "Tax Id", 40),
            _text("BillingStreet", "Billing Street", 255, "textarea"),
            _text("BillingCity", "Billing City", 40),
            _text("BillingState", "Billing State/Province", 80),
            _text("BillingPostalCode", "Billing Zip/Postal Code", 20),
            _text("BillingCountry", "Billing Country", 80),
            _pick(
                "BillingCountryCode",
                "Billing Country Code",
                tuple(sorted(COUNTRY_NAMES)),
                restricted=True,
            ),
            _CURRENCY,
            _pick(
                "Industry",
                "Industry",
                (
                    "Consulting",
                    "Technology",
                    "Finance",
                    "Healthcare",
                    "Manufacturing",
                    "Retail",
                    "Other",
                ),
            ),
            _text("Phone", "Account Phone", 40, "phone"),
            _text("Legal_Entity__c", "Legal Entity", 40),
            *_ERP_IDS,
            _text("Q2C_External_Id__c", "Q2C External Id", 80, external_id=True, unique=True),
            # receivable status q2c keeps on the account (payment-to-ledger)
            _pick("AR_Status__c", "AR Status", ("Current", "Open Balance", "Credit")),
            _num("Open_Balance__c", "Open Balance", "currency", 18, 2),
            _num("Unapplied_Credit__c", "Unapplied Credit", "currency", 18, 2),
            FieldDef("Last_Payment_Date__c", "Last Payment Date", "date"),
        ),
        _object(
            "Opportunity",
            "Opportunity",
            "Opportunities",
            _text("Name", "Name", 120, required=True),
            _ref("AccountId", "Account ID", "Account", "Account", cascade_delete=True),
            _pick("StageName", "Stage", STAGES, required=True, restricted=True),
            FieldDef("CloseDate", "Close Date", "date", required=True),
            _num("Amount", "Amount", "currency", 18, 2),
            _num("Probability", "Probability (%)", "percent", 3, 0),
            _CURRENCY,
            _derived(FieldDef("IsWon", "Won", "boolean", default=False)),
            _derived(FieldDef("IsClosed", "Closed", "boolean", default=False)),
            _ref("SyncedQuoteId", "Quote ID", "Quote", "SyncedQuote"),
            _text("Department__c", "Department", 80),
            _pick(
                "Billing_Model__c",
                "Billing Model",
                ("Time and Materials", "Fixed Fee", "Milestone", "Retainer", "Usage"),
            ),
            _pick(
                "Revenue_Method__c",
                "Revenue Method",
                ("Straight Line", "Milestone", "Percent Complete", "As Invoiced"),
            ),
            FieldDef("Start_Date__c", "Start Date", "date"),
            FieldDef("End_Date__c", "End Date", "date"),
            _text("Rate_Card__c", "Rate Card", 80),
            _num("Not_To_Exceed__c", "Not To Exceed", "currency", 18, 2),
            # CPQ billing terms as JSON (retainer, usage tiers, expense markup, tax code):
            # the long text area the q2c managed package adds to Opportunity
            _text("Billing_Terms__c", "Billing Terms", 32768, kind="textarea"),
            *_ERP_IDS,
            _text("ERP_Project_Id__c", "ERP Project Id", 40, external_id=True),
            _text("ERP_Sales_Order_Id__c", "ERP Sales Order Id", 40, external_id=True),
            _pick("Q2C_Status__c", "Q2C Status", ("Pending", "Provisioned", "Failed")),
            _text("Q2C_External_Id__c", "Q2C External Id", 80, external_id=True, unique=True),
        ),
        _object(
            "Quote",
            "Quote",
            "Quotes",
            _text("Name", "Quote Name", 255, required=True),
            _ref(
                "OpportunityId",
                "Opportunity ID",
                "Opportunity",
                "Opportunity",
                required=True,
                updateable=False,
                cascade_delete=True,
            ),
            _derived(_ref("AccountId", "Account ID", "Account", "Account")),
            _pick("Status", "Status", QUOTE_STATUSES, restricted=True, default="Draft"),
            _derived(FieldDef("IsSyncing", "Syncing", "boolean", default=False)),
            _num("Q2C_Version__c", "Q2C Version", "double", 18, 0, default=1),
            FieldDef("ExpirationDate", "Expiration Date", "date"),
            replace(_CURRENCY, createable=False, updateable=False),
            _derived(_num("Subtotal", "Subtotal", "currency", 18, 2)),
            _derived(_num("TotalPrice", "Total Price", "currency", 18, 2)),
            _derived(_num("LineItemCount", "Line Items", "int", 8, 0)),
        ),
        _object(
            "QuoteLineItem",
            "Quote Line Item",
            "Quote Line Items",
            _ref(
                "QuoteId",
                "Quote ID",
                "Quote",
                "Quote",
                required=True,
                updateable=False,
                cascade_delete=True,
            ),
            _ref("Product2Id", "Product ID", "Product2", "Product2", required=True),
            _derived(_text("LineNumber", "Line Item Number", 255)),
            _num("Quantity", "Quantity", "double", 12, 2, required=True),
            _num("UnitPrice", "Sales Price", "currency", 16, 2, required=True),
            _derived(_num("TotalPrice", "Total Price", "currency", 16, 2)),
            _text("Description", "Line Item Description", 255, "textarea"),
            _text("Role__c", "Role", 80),
            replace(_CURRENCY, createable=False, updateable=False),
        ),
        _object(
            "Product2",
            "Product",
            "Products",
            _text("Name", "Product Name", 255, required=True),
            _text("ProductCode", "Product Code", 255),
            _text("Description", "Product Description", 4000, "textarea"),
            FieldDef("IsActive", "Active", "boolean", default=True),
            _pick("Family", "Product Family", ("Services", "Licenses", "Expenses")),
        ),
        _object(
            "Lead",
            "Lead",
            "Leads",
            _text("FirstName", "First Name", 40),
            _text("LastName", "Last Name", 80, required=True),
            _text("Company", "Company", 255, required=True),
            _text("Email", "Email", 80, "email"),
            _pick(
                "Status",
                "Lead Status",
                (
                    "Open - Not Contacted",
                    "Working - Contacted",
                    "Closed - Converted",
                    "Closed - Not Converted",
                ),
                restricted=True,
                default="Open - Not Contacted",
            ),
        ),
    )
}

_CHILD_NAMES = {
    ("Opportunity", "AccountId"): "Opportunities",
    ("Quote", "OpportunityId"): "Quotes",
    ("QuoteLineItem", "QuoteId"): "QuoteLineItems",
    ("Quote", "AccountId"): "Quotes",
}
for (_child, _field), _rel in _CHILD_NAMES.items():
    _fdef = SCHEMA[_child].fields[_field]
    SCHEMA[_fdef.reference_to[0]].children[_rel] = ChildRelationship(
        _rel, _child, _field, _fdef.cascade_delete
    )


def sobject_def(name: str) -> SObjectDef | None:
    """Object by API name, case-insensitively (Salesforce accepts ``account`` in URLs)."""
    found = SCHEMA.get(name)
    if found is not None:
        return found
    for key, value in SCHEMA.items():
        if key.casefold() == name.casefold():
            return value
    return None
