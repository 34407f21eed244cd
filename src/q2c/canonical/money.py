"""Money: a Decimal amount in an ISO-4217 currency, with explicit rounding.

Floats never enter: a float amount is refused at the boundary, because 0.1 + 0.2 is not
0.3 and finance will find the cent. Amounts may carry more precision than the currency's
minor unit while being computed (a rate times hours); ``rounded()`` brings them to the
minor unit with a named rounding mode, and documents are rounded explicitly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

__all__ = [
    "MINOR_UNITS",
    "Money",
    "RoundingMode",
    "minor_units",
    "parse_decimal",
]

RoundingMode = Literal["half_up", "half_even"]
_ROUNDING = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN}

# ISO 4217 active codes and their minor units (List One, amendment 177). Data, not logic,
# kept as text because a table of codes reads best that way (hence the SIM905 waivers).
MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(
        "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP "  # noqa: SIM905
        "BYN BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP "
        "GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT "
        "LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN "
        "NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP "
        "SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES "
        "WST XCD XCG YER ZAR ZMW ZWG".split(),
        2,
    ),
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(),  # noqa: SIM905
        0,
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),  # noqa: SIM905
    "CLF": 4,
    "UYW": 4,
}


def minor_units(currency: str) -> int:
    """Decimal places of the currency's minor unit (USD 2, JPY 0, KWD 3)."""
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise ValueError(f"unknown currency {currency!r}: not an active ISO-4217 code") from None


def parse_decimal(value: object, *, field: str = "amount") -> Decimal:
    """Turn a JSON/str/int/Decimal value into a finite Decimal; refuse floats and junk."""
    if isinstance(value, bool):
        raise ValueError(f'{field} must be a decimal string such as "1250.00", got a boolean')
    if isinstance(value, float):
        raise ValueError(
            f'{field} must be a decimal string such as "1250.00", got the floating-point '
            f"number {value!r}; floats cannot represent every cent exactly"
        )
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise ValueError(f"{field} {value!r} is not a decimal number") from None
    else:
        raise ValueError(f"{field} must be a decimal string, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{field} {value!r} is not a finite number")
    return result


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of one currency. Arithmetic across currencies is refused."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            object.__setattr__(self, "amount", parse_decimal(self.amount))
        elif not self.amount.is_finite():
            raise ValueError(f"amount {self.amount!r} is not a finite number")
        minor_units(self.currency)

    # construction -------------------------------------------------------------------
    @classmethod
    def of(cls, amount: object, currency: str) -> Money:
        return cls(parse_decimal(amount), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        return cls(Decimal(minor).scaleb(-minor_units(currency)), currency)

    @classmethod
    def total(cls, items: Iterable[Money], currency: str) -> Money:
        result = cls.zero(currency)
        for item in items:
            result = result + item
        return result

    # rounding -------------------------------------------------------------------------
    @property
    def exponent(self) -> Decimal:
        return Decimal(1).scaleb(-minor_units(self.currency))

    def rounded(self, mode: RoundingMode = "half_up") -> Money:
        return Money(self.amount.quantize(self.exponent, rounding=_ROUNDING[mode]), self.currency)

    def to_minor(self, mode: RoundingMode = "half_up") -> int:
        """Amount in minor units (cents), rounding first: Stripe and friends speak this."""
        return int(self.rounded(mode).amount.scaleb(minor_units(self.currency)))

    def is_rounded(self) -> bool:
        return self.amount == self.amount.quantize(self.exponent)

    # arithmetic -------------------------------------------------------------------------
    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        if isinstance(factor, float):
            raise TypeError("multiply Money by a Decimal or int, never a float")
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def is_zero(self) -> bool:
        return self.amount == 0

    def allocate(self, weights: list[Decimal | int], mode: RoundingMode = "half_up") -> list[Money]:
        """Split into rounded parts proportional to ``weights`` that sum exactly to self.

        Largest-remainder: each part is rounded down to the minor unit, then the leftover
        minor units go to the parts with the largest remainders (earliest first on ties).
        """
        if any(isinstance(w, float) for w in weights):
            raise TypeError("allocation weights must be Decimal or int, never float")
        total_weight = sum(Decimal(w) for w in weights)
        if not weights or total_weight <= 0 or any(Decimal(w) < 0 for w in weights):
            raise ValueError("allocation needs non-negative weights with a positive sum")
        whole = self.to_minor(mode)
        sign = -1 if whole < 0 else 1
        exact = [Decimal(abs(whole)) * Decimal(w) / total_weight for w in weights]
        floors = [int(e) for e in exact]
        leftover = abs(whole) - sum(floors)
        order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
        for i in order[:leftover]:
            floors[i] += 1
        return [Money.from_minor(sign * f, self.currency) for f in floors]

    # presentation -----------------------------------------------------------------------
    def __str__(self) -> str:
        return f"{self.amount:,f} {self.currency}"

    def as_json(self) -> dict[str, str]:
        # fixed-point, never exponent notation ("1E+2"), which the published schema refuses
        return {"amount": format(self.amount, "f"), "currency": self.currency}

    @classmethod
    def from_json(cls, value: Mapping[str, str]) -> Money:
        """The inverse of ``as_json`` (amount as decimal text, never a float)."""
        return cls(Decimal(value["amount"]), value["currency"])

    # pydantic integration ----------------------------------------------------------------
    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def validate(value: Any) -> Money:
            if isinstance(value, Money):
                return value
            if not isinstance(value, dict):
                raise PydanticCustomError(
                    "money_type",
                    'money must be an object like {"amount": "1250.00", "currency": "USD"}',
                )
            unknown = set(value) - {"amount", "currency"}
            if unknown:
                raise PydanticCustomError(
                    "money_extra", "money has unexpected keys: {keys}", {"keys": sorted(unknown)}
                )
            if "amount" not in value or "currency" not in value:
                raise PydanticCustomError("money_missing", "money needs both amount and currency")
            currency = value["currency"]
            if not isinstance(currency, str) or currency not in MINOR_UNITS:
                raise PydanticCustomError(
                    "currency_unknown",
                    "unknown currency {currency}: use an active ISO-4217 code such as USD or EUR",
                    {"currency": repr(currency)},
                )
            try:
                amount = parse_decimal(value["amount"])
            except ValueError as exc:
                raise PydanticCustomError("money_amount", str(exc)) from None
            return Money(amount, currency)

        return core_schema.no_info_plain_validator_function(
            validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda m: m.as_json(), when_used="always"
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "object",
            "title": "Money",
            "description": "Decimal amount as a string (never a JSON number) and ISO-4217 code.",
            "properties": {
                "amount": {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            },
            "required": ["amount", "currency"],
            "additionalProperties": False,
        }
