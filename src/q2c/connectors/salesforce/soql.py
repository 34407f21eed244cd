"""A SOQL subset: tokenizer and recursive-descent parser producing a small AST (no eval).

Supported: ``SELECT`` fields, parent paths (``Account.Name``), ``COUNT()`` and child
sub-queries (``(SELECT Id FROM QuoteLineItems)``); ``FROM``; ``WHERE`` with AND / OR / NOT,
parentheses, = != <> < <= > >= LIKE IN / NOT IN, NULL, TRUE / FALSE, string, number, date,
datetime and relative date literals (TODAY, LAST_N_DAYS:n ...); ``ORDER BY`` (ASC / DESC,
NULLS FIRST / LAST, several keys); ``LIMIT``; ``OFFSET``. Syntax errors raise
``SoqlSyntaxError`` carrying Salesforce's MALFORMED_QUERY text (the query line, a caret and
the unexpected token). Meaning (fields, types) is checked by ``soql_eval`` against the schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from q2c.connectors.salesforce.wire import parse_date, parse_datetime

__all__ = [
    "And",
    "Comparison",
    "Condition",
    "CountAll",
    "FieldPath",
    "Literal",
    "Not",
    "Or",
    "OrderKey",
    "Query",
    "SoqlSyntaxError",
    "SubQuery",
    "parse_soql",
]

KEYWORDS = {
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "LIKE",
    "IN",
    "NULL",
    "TRUE",
    "FALSE",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "LIMIT",
    "OFFSET",
    "COUNT",
}
RELATIVE_DATES = {"TODAY", "YESTERDAY", "TOMORROW"}
RELATIVE_N_DATES = {"LAST_N_DAYS", "NEXT_N_DAYS"}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>[+-]?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),:])
    """,
    re.VERBOSE,
)
_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "b": "\b",
    "f": "\f",
    '"': '"',
    "'": "'",
    "\\": "\\",
    "%": "\\%",
    "_": "\\_",
}


class SoqlSyntaxError(ValueError):
    """A malformed query; ``str()`` is Salesforce's MALFORMED_QUERY message."""

    def __init__(self, query: str, position: int, problem: str) -> None:
        line_start = query.rfind("\n", 0, position) + 1
        line_end = query.find("\n", position)
        line = query[line_start : line_end if line_end >= 0 else len(query)]
        row = query.count("\n", 0, position) + 1
        column = position - line_start
        self.problem = problem
        super().__init__(
            f"\n{line}\n{' ' * column}^\nERROR at Row:{row}:Column:{column + 1}\n{problem}"
        )


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper()

    def is_kw(self, *words: str) -> bool:
        return self.kind == "ident" and self.upper in words


# --- AST ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldPath:
    parts: tuple[str, ...]

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class CountAll:
    """``COUNT()``: the query returns only totalSize."""


@dataclass(frozen=True)
class Literal:
    """kind: string, number, date, datetime, boolean, null, relative."""

    kind: str
    value: Any
    text: str


@dataclass(frozen=True)
class Comparison:
    field: FieldPath
    op: str  # = != < <= > >= LIKE IN NOT IN
    value: Literal | tuple[Literal, ...]


@dataclass(frozen=True)
class And:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Comparison | And | Or | Not


@dataclass(frozen=True)
class OrderKey:
    field: FieldPath
    descending: bool = False
    nulls_last: bool | None = None


@dataclass(frozen=True)
class SubQuery:
    query: Query


@dataclass(frozen=True)
class Query:
    select: tuple[FieldPath | CountAll | SubQuery, ...]
    sobject: str
    where: Condition | None = None
    order_by: tuple[OrderKey, ...] = field(default_factory=tuple)
    limit: int | None = None
    offset: int | None = None


# --- tokenizer ----------------------------------------------------------------------------------


def _tokens(text: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise SoqlSyntaxError(text, pos, f"unexpected token: '{text[pos]}'")
        kind = match.lastgroup or ""
        if kind != "ws":
            out.append(Token(kind, match.group(), pos))
        pos = match.end()
    out.append(Token("eof", "<EOF>", len(text)))
    return out


def _unquote(raw: str) -> str:
    body = raw[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


# --- parser -------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return token

    def fail(self, token: Token | None = None, problem: str | None = None) -> SoqlSyntaxError:
        token = token or self.tok
        return SoqlSyntaxError(self.text, token.pos, problem or f"unexpected token: {token.text}")

    def expect_kw(self, word: str) -> Token:
        if not self.tok.is_kw(word):
            raise self.fail(problem=f"unexpected token: {self.tok.text}, expected {word}")
        return self.advance()

    def expect(self, text: str) -> Token:
        if self.tok.text != text:
            raise self.fail(problem=f"unexpected token: {self.tok.text}, expected '{text}'")
        return self.advance()

    # query := SELECT items FROM name [WHERE cond] [ORDER BY keys] [LIMIT n] [OFFSET n]
    def query(self, nested: bool = False) -> Query:
        self.expect_kw("SELECT")
        items = [self.select_item(nested)]
        while self.tok.text == ",":
            self.advance()
            items.append(self.select_item(nested))
        self.expect_kw("FROM")
        source = self.advance()
        if source.kind != "ident" or source.upper in KEYWORDS or "." in source.text:
            raise self.fail(source)
        where = order = limit = offset = None
        if self.tok.is_kw("WHERE"):
            self.advance()
            where = self.condition()
        if self.tok.is_kw("ORDER"):
            self.advance()
            self.expect_kw("BY")
            order = self.order_keys()
        if self.tok.is_kw("LIMIT"):
            self.advance()
            limit = self.integer("LIMIT")
        if self.tok.is_kw("OFFSET"):
            self.advance()
            offset = self.integer("OFFSET")
        if any(isinstance(i, CountAll) for i in items) and len(items) > 1:
            raise self.fail(self.tokens[1], "COUNT() must be the only element in the SELECT list")
        self.check_duplicates(items)
        return Query(tuple(items), source.text, where, tuple(order or ()), limit, offset)

    def check_duplicates(self, items: list[FieldPath | CountAll | SubQuery]) -> None:
        seen: set[str] = set()
        for item in items:
            if isinstance(item, FieldPath):
                key = item.text.casefold()
                if key in seen:
                    raise self.fail(self.tokens[0], f"duplicate field selected: {item.text}")
                seen.add(key)

    def select_item(self, nested: bool) -> FieldPath | CountAll | SubQuery:
        token = self.tok
        if token.text == "(":
            if nested:
                raise self.fail(problem="nested sub-queries are not supported")
            self.advance()
            sub = self.query(nested=True)
            self.expect(")")
            return SubQuery(sub)
        if token.is_kw("COUNT") and self.tokens[self.i + 1].text == "(":
            self.advance()
            self.advance()
            self.expect(")")
            return CountAll()
        return self.field_path()

    def field_path(self) -> FieldPath:
        token = self.advance()
        if token.kind != "ident" or token.upper in KEYWORDS - {"FIRST", "LAST"}:
            raise self.fail(token)
        return FieldPath(tuple(token.text.split(".")))

    def integer(self, clause: str) -> int:
        token = self.advance()
        if token.kind != "number" or not token.text.isdigit():
            raise self.fail(token, f"{clause} must be a non-negative integer, got {token.text}")
        return int(token.text)

    def order_keys(self) -> list[OrderKey]:
        keys = [self.order_key()]
        while self.tok.text == ",":
            self.advance()
            keys.append(self.order_key())
        return keys

    def order_key(self) -> OrderKey:
        path = self.field_path()
        descending = False
        nulls_last: bool | None = None
        if self.tok.is_kw("ASC", "DESC"):
            descending = self.advance().upper == "DESC"
        if self.tok.is_kw("NULLS"):
            self.advance()
            if not self.tok.is_kw("FIRST", "LAST"):
                raise self.fail()
            nulls_last = self.advance().upper == "LAST"
        return OrderKey(path, descending, nulls_last)

    # cond := term (OR term)* ; term := factor (AND factor)* ; mixing needs parentheses
    def condition(self) -> Condition:
        first = self.conjunction()
        items = [first]
        while self.tok.is_kw("OR"):
            self.advance()
            items.append(self.conjunction())
        return first if len(items) == 1 else Or(tuple(items))

    def conjunction(self) -> Condition:
        first = self.factor()
        items = [first]
        while self.tok.is_kw("AND"):
            self.advance()
            items.append(self.factor())
        if len(items) > 1 and self.tok.is_kw("OR"):
            raise self.fail(problem="unexpected token: OR (use parentheses to mix AND and OR)")
        return first if len(items) == 1 else And(tuple(items))

    def factor(self) -> Condition:
        if self.tok.is_kw("NOT"):
            self.advance()
            return Not(self.factor())
        if self.tok.text == "(":
            self.advance()
            inner = self.condition()
            self.expect(")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        path = self.field_path()
        token = self.advance()
        if token.kind == "op":
            op = "!=" if token.text == "<>" else token.text
            return Comparison(path, op, self.literal())
        if token.is_kw("LIKE"):
            value = self.literal()
            if value.kind != "string":
                raise self.fail(problem="LIKE needs a string literal")
            return Comparison(path, "LIKE", value)
        negated = False
        if token.is_kw("NOT") and self.tok.is_kw("IN"):
            negated = True
            token = self.advance()
        if token.is_kw("IN"):
            self.expect("(")
            values = [self.literal()]
            while self.tok.text == ",":
                self.advance()
                values.append(self.literal())
            self.expect(")")
            return Comparison(path, "NOT IN" if negated else "IN", tuple(values))
        raise self.fail(token)

    def literal(self) -> Literal:
        token = self.advance()
        kind, text = token.kind, token.text
        try:
            if kind == "string":
                return Literal("string", _unquote(text), text)
            if kind == "number":
                return Literal("number", Decimal(text), text)
            if kind == "date":
                value: date | datetime = parse_date(text)
                return Literal("date", value, text)
            if kind == "datetime":
                return Literal("datetime", parse_datetime(text), text)
        except ValueError as exc:
            raise self.fail(token, f"invalid literal {text}: {exc}") from None
        if token.is_kw("NULL"):
            return Literal("null", None, text)
        if token.is_kw("TRUE", "FALSE"):
            return Literal("boolean", token.upper == "TRUE", text)
        if token.is_kw(*RELATIVE_DATES):
            return Literal("relative", (token.upper, 0), text)
        if token.is_kw(*RELATIVE_N_DATES):
            self.expect(":")
            days = self.integer(token.upper)
            return Literal("relative", (token.upper, days), f"{text}:{days}")
        raise self.fail(token)


def parse_soql(text: str) -> Query:
    """Parse one SOQL statement; raises ``SoqlSyntaxError`` with Salesforce's message."""
    parser = _Parser(text)
    query = parser.query()
    if parser.tok.kind != "eof":
        raise parser.fail()
    return query
