"""SOQL subset: the parser's AST and syntax errors, and evaluation against the emulated org."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from q2c.connectors.salesforce.soql import (
    And,
    Comparison,
    CountAll,
    FieldPath,
    Not,
    Or,
    SoqlSyntaxError,
    SubQuery,
    parse_soql,
)
from q2c.connectors.salesforce.soql_eval import run_query
from q2c.connectors.salesforce.state import SalesforceState
from q2c.connectors.salesforce.wire import ApiError

# --- parser ----------------------------------------------------------------------------------


def test_parses_fields_paths_where_order_limit_offset() -> None:
    query = parse_soql(
        "select Id, Account.Name FROM Opportunity WHERE (StageName = 'Closed Won' OR "
        "Amount >= 1000.50) AND NOT IsClosed = false ORDER BY CloseDate DESC NULLS LAST, Name "
        "LIMIT 10 OFFSET 5"
    )
    assert query.sobject == "Opportunity"
    assert query.select == (FieldPath(("Id",)), FieldPath(("Account", "Name")))
    assert isinstance(query.where, And)
    first, second = query.where.items
    assert isinstance(first, Or) and isinstance(second, Not)
    amount = first.items[1]
    assert isinstance(amount, Comparison)
    assert amount.op == ">=" and amount.value.value == Decimal("1000.50")
    assert [(k.field.text, k.descending, k.nulls_last) for k in query.order_by] == [
        ("CloseDate", True, True),
        ("Name", False, None),
    ]
    assert (query.limit, query.offset) == (10, 5)


@pytest.mark.parametrize(
    ("literal", "kind", "value"),
    [
        ("'O\\'Brien'", "string", "O'Brien"),
        ("-12.5", "number", Decimal("-12.5")),
        ("2026-11-26", "date", date(2026, 11, 26)),
        ("2026-11-26T10:00:00Z", "datetime", datetime(2026, 11, 26, 10, tzinfo=UTC)),
        (
            "2026-11-26T12:00:00.250+02:00",
            "datetime",
            datetime(2026, 11, 26, 10, 0, 0, 250000, tzinfo=UTC),
        ),
        ("null", "null", None),
        ("TRUE", "boolean", True),
        ("LAST_N_DAYS:30", "relative", ("LAST_N_DAYS", 30)),
    ],
)
def test_literals(literal: str, kind: str, value: object) -> None:
    where = parse_soql(f"SELECT Id FROM Account WHERE Name = {literal}").where
    assert isinstance(where, Comparison)
    assert (where.value.kind, where.value.value) == (kind, value)


def test_in_not_in_like_count_and_subquery() -> None:
    query = parse_soql(
        "SELECT Id, (SELECT Id FROM QuoteLineItems) FROM Quote WHERE Status IN ('Approved', "
        "'Draft') AND Name NOT IN ('x') AND Name LIKE 'Q-%'"
    )
    assert isinstance(query.select[1], SubQuery)
    assert query.select[1].query.sobject == "QuoteLineItems"
    ops = [c.op for c in query.where.items]  # type: ignore[union-attr]
    assert ops == ["IN", "NOT IN", "LIKE"]
    assert parse_soql("SELECT COUNT() FROM Account").select == (CountAll(),)


@pytest.mark.parametrize(
    ("soql", "problem"),
    [
        ("SELECT Id FROM Account WHERE", "unexpected token: <EOF>"),
        ("SELECT FROM Account", "unexpected token: FROM"),
        ("SELECT Id Account", "expected FROM"),
        ("SELECT Id FROM Account WHERE Name = 'x' AND Id = 'y' OR Id = 'z'", "parentheses"),
        ("SELECT Id FROM Account LIMIT -1", "LIMIT must be a non-negative integer"),
        ("SELECT Id, COUNT() FROM Account", "COUNT() must be the only element"),
        ("SELECT Id, id FROM Account", "duplicate field selected: id"),
        ("SELECT Id FROM Account WHERE Name = 'unterminated", "unexpected token: '''"),
        ("SELECT Id FROM Account WHERE Name ~ 'x'", "unexpected token: '~'"),
        ("SELECT Id FROM Account extra", "unexpected token: extra"),
    ],
)
def test_syntax_errors_name_the_problem(soql: str, problem: str) -> None:
    with pytest.raises(SoqlSyntaxError) as info:
        parse_soql(soql)
    assert problem in str(info.value)
    assert "ERROR at Row:1:Column:" in str(info.value)


# --- evaluation ------------------------------------------------------------------------------


@pytest.fixture
def state() -> SalesforceState:
    org = SalesforceState()
    acme = org.insert("Account", {"Name": "Acme", "BillingCountry": "US", "Tax_Id__c": "US-1"})
    beta = org.insert("Account", {"Name": "beta Corp"})
    org.insert("Account", {"Name": "O'Brien & Sons"})
    for name, stage, amount, account, close in [
        ("Big deal", "Closed Won", "150000.00", acme, "2026-10-01"),
        ("Small deal", "Prospecting", "999.99", beta, "2026-11-01"),
        ("No amount", "Closed Lost", None, None, "2026-09-15"),
    ]:
        org.insert(
            "Opportunity",
            {
                "Name": name,
                "StageName": stage,
                "Amount": amount,
                "AccountId": account,
                "CloseDate": close,
            },
        )
    return org


def run(state: SalesforceState, soql: str) -> list[dict]:
    return run_query(state, parse_soql(soql), version="v62.0").records


def test_case_insensitive_names_and_text_and_canonical_output(state: SalesforceState) -> None:
    rows = run(state, "select name, account.name from opportunity where account.name = 'ACME'")
    assert rows == [
        {
            "attributes": rows[0]["attributes"],
            "Name": "Big deal",
            "Account": {"attributes": rows[0]["Account"]["attributes"], "Name": "Acme"},
        }
    ]
    assert rows[0]["attributes"]["type"] == "Opportunity"


def test_null_parent_is_null_and_null_semantics(state: SalesforceState) -> None:
    rows = run(state, "SELECT Name, Account.Name FROM Opportunity WHERE AccountId = null")
    assert rows[0]["Account"] is None
    # != includes nulls, ordering operators exclude them (SOQL semantics)
    names = {r["Name"] for r in run(state, "SELECT Name FROM Opportunity WHERE Amount != 999.99")}
    assert names == {"Big deal", "No amount"}
    assert len(run(state, "SELECT Id FROM Opportunity WHERE Amount < 1000000")) == 2
    assert len(run(state, "SELECT Id FROM Opportunity WHERE Amount NOT IN (999.99)")) == 2


def test_and_or_not_in_like_dates_and_booleans(state: SalesforceState) -> None:
    def names(where: str) -> set[str]:
        return {r["Name"] for r in run(state, f"SELECT Name FROM Opportunity WHERE {where}")}

    assert names("IsWon = true") == {"Big deal"}
    assert names("NOT (IsClosed = true)") == {"Small deal"}
    assert names("StageName IN ('Closed Won', 'Closed Lost') AND Amount = null") == {"No amount"}
    assert names("Name LIKE '%DEAL'") == {"Big deal", "Small deal"}
    assert names("Name LIKE 'S_all%'") == {"Small deal"}
    assert names("CloseDate > 2026-09-30 AND CloseDate <= 2026-11-01") == {"Big deal", "Small deal"}
    assert names("CreatedDate > 2000-01-01T00:00:00Z") == {"Big deal", "Small deal", "No amount"}
    assert names("CreatedDate = LAST_N_DAYS:1") == {"Big deal", "Small deal", "No amount"}
    accounts = {
        r["Name"] for r in run(state, "SELECT Name FROM Account WHERE Name = 'O\\'Brien & Sons'")
    }
    assert accounts == {"O'Brien & Sons"}


def test_order_limit_offset_and_count(state: SalesforceState) -> None:
    rows = run(state, "SELECT Name, Amount FROM Opportunity ORDER BY Amount DESC")
    assert [r["Name"] for r in rows] == ["Big deal", "Small deal", "No amount"]  # nulls last
    rows = run(state, "SELECT Name FROM Opportunity ORDER BY Amount ASC")
    assert rows[0]["Name"] == "No amount"  # nulls first
    rows = run(state, "SELECT Name FROM Opportunity ORDER BY Name LIMIT 1 OFFSET 1")
    assert [r["Name"] for r in rows] == ["No amount"]
    result = run_query(
        state, parse_soql("SELECT COUNT() FROM Opportunity WHERE IsClosed = true"), version="v62.0"
    )
    assert (result.total_size, result.records) == (2, [])
    assert rows and isinstance(run(state, "SELECT Amount FROM Opportunity")[0]["Amount"], Decimal)


def test_child_subquery(state: SalesforceState) -> None:
    rows = run(
        state,
        "SELECT Name, (SELECT Name FROM Opportunities ORDER BY Name) FROM Account ORDER BY Name",
    )
    by_name = {r["Name"]: r["Opportunities"] for r in rows}
    assert by_name["Acme"]["totalSize"] == 1
    assert by_name["Acme"]["records"][0]["Name"] == "Big deal"
    assert by_name["O'Brien & Sons"] is None


@pytest.mark.parametrize(
    ("soql", "code", "text"),
    [
        ("SELECT Foo FROM Account", "INVALID_FIELD", "No such column 'Foo' on entity 'Account'"),
        (
            "SELECT Owner.Name FROM Account",
            "INVALID_FIELD",
            "Didn't understand relationship 'Owner'",
        ),
        ("SELECT Id FROM Widget__c", "INVALID_TYPE", "sObject type 'Widget__c' is not supported"),
        (
            "SELECT Id FROM Opportunity WHERE CloseDate = '2026-01-01'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "must be of type date and should not be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Opportunity WHERE CreatedDate > 2026-01-01",
            "INVALID_QUERY_FILTER_OPERATOR",
            "must be of type dateTime",
        ),
        (
            "SELECT Id FROM Opportunity WHERE Amount = '5'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "currency",
        ),
        (
            "SELECT Id FROM Opportunity WHERE Id = 'nope'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "invalid ID field: nope",
        ),
        (
            "SELECT Id FROM Opportunity WHERE IsWon > true",
            "INVALID_QUERY_FILTER_OPERATOR",
            "boolean",
        ),
        ("SELECT Id, (SELECT Id FROM Widgets) FROM Account", "INVALID_TYPE", "Widgets"),
    ],
)
def test_semantic_errors(state: SalesforceState, soql: str, code: str, text: str) -> None:
    with pytest.raises(ApiError) as info:
        run(state, soql)
    assert info.value.code == code
    assert text in info.value.errors[0]["message"]
