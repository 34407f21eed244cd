"""Rate cards as immutable, date-effective versions (pure: an in-memory aggregate, no I/O).

Rules (kept simple so an invoice can be recomputed without this code):

- A rate card id has versions 1, 2, 3 ... Each version is a canonical ``RateCard``.
- A version is effective from ``effective_from`` to ``effective_to``, **both inclusive**. An
  open-ended version (``effective_to is None``) ends the day before the next version (by
  ``effective_from``) starts; with no later version it never ends.
- Explicit ranges must not overlap, and two versions may not start on the same day.
- A version used by a billed line (``mark_used``) never changes: re-adding it with different
  content is refused ("create version N instead"), and a new version may not cut its range
  short before a work date that was billed with it.
- Lookup (``rate_for``): among the lines of the version effective on the work date, those for
  the service item (all lines when the event names none); a line for the exact role wins over a
  role-less line (the service item's default rate). Two lines for the same role and service
  item in one version are refused when the version is added.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import pairwise

from q2c.canonical.models import RateCard, RateCardLine
from q2c.errors import BusinessFixError, MappingMissingError, NotFoundError, ValidationError

__all__ = ["EffectiveRange", "RateCardBook", "effective_ranges"]


@dataclass(frozen=True, slots=True)
class EffectiveRange:
    """The days a version applies: ``start`` to ``end`` inclusive; ``end`` None = open."""

    version: int
    start: date
    end: date | None

    def contains(self, on: date) -> bool:
        return self.start <= on and (self.end is None or on <= self.end)

    def __str__(self) -> str:
        return f"v{self.version} {self.start}..{self.end or 'open'}"


def effective_ranges(cards: list[RateCard]) -> list[EffectiveRange]:
    """Effective ranges of the versions of one rate card, ordered by start date.

    An open-ended version is closed the day before the next version starts.
    """
    ordered = sorted(cards, key=lambda c: c.effective_from)
    ranges: list[EffectiveRange] = []
    for i, card in enumerate(ordered):
        end = card.effective_to
        if end is None and i + 1 < len(ordered):
            end = ordered[i + 1].effective_from - timedelta(days=1)
        ranges.append(EffectiveRange(card.version, card.effective_from, end))
    return ranges


def _duplicate_lines(card: RateCard) -> list[tuple[str | None, str]]:
    seen: set[tuple[str | None, str]] = set()
    duplicates = []
    for line in card.lines:
        key = (line.role, line.service_item)
        if key in seen:
            duplicates.append(key)
        seen.add(key)
    return duplicates


@dataclass
class RateCardBook:
    """Every version of every rate card, plus which versions billed lines have used.

    An aggregate in the domain-model sense: ``add_version`` and ``mark_used`` change it in
    place and enforce the immutability rules above; everything else only reads.
    """

    _versions: dict[str, dict[int, RateCard]] = field(default_factory=dict)
    _used: dict[tuple[str, int], set[date]] = field(default_factory=dict)
    # rate lookups answered so far: a month of entries asks a few dozen distinct questions
    _answers: dict[tuple[str, str | None, str | None, date], tuple[RateCardLine, int]] = field(
        default_factory=dict, repr=False, compare=False
    )

    # --- changes -----------------------------------------------------------------------------
    def add_version(self, card: RateCard) -> None:
        """Add one version; re-adding an identical version is a no-op (idempotent replay)."""
        versions = self._versions.setdefault(card.id, {})
        existing = versions.get(card.version)
        if existing == card:
            return
        label = f"Rate card {card.id!r} v{card.version}"
        if existing is not None and self.is_used(card.id, card.version):
            raise BusinessFixError(
                f"Rate card {card.id} v{card.version} has billed lines; "
                f"create version {max(versions) + 1} instead",
                detail=f"{label} is already stamped on billed lines and cannot change",
                suggested_fix="Publish the new rates as a new version with a later start date.",
                context={"rate_card_id": card.id, "version": card.version},
            )
        duplicates = _duplicate_lines(card)
        if duplicates:
            role, item = duplicates[0]
            raise ValidationError(
                f"{label} has two rates for role {role!r} and service item {item!r}",
                field="lines",
                context={"rate_card_id": card.id, "version": card.version},
            )
        candidate = {**versions, card.version: card}
        ranges = effective_ranges(list(candidate.values()))
        self._check_overlaps(card, ranges)
        self._check_used_dates_kept(card.id, ranges)
        versions[card.version] = card
        self._answers.clear()

    def _check_overlaps(self, card: RateCard, ranges: list[EffectiveRange]) -> None:
        for earlier, later in pairwise(ranges):
            if earlier.start == later.start or earlier.end is None or later.start <= earlier.end:
                raise BusinessFixError(
                    f"Rate card {card.id!r} versions overlap: {earlier} and {later}",
                    detail=f"adding v{card.version} of rate card {card.id!r}",
                    suggested_fix="Give each version a date range that does not overlap.",
                    context={"rate_card_id": card.id, "version": card.version},
                )

    def _check_used_dates_kept(self, card_id: str, ranges: list[EffectiveRange]) -> None:
        for rng in ranges:
            for used_on in sorted(self._used.get((card_id, rng.version), set())):
                if not rng.contains(used_on):
                    raise BusinessFixError(
                        f"Rate card {card_id} v{rng.version} has billed lines on {used_on}; "
                        f"a new version must start after that date",
                        context={"rate_card_id": card_id, "version": rng.version},
                    )

    def mark_used(self, rate_card_id: str, version: int, *, on: date | None = None) -> None:
        """Record that a billed line used this version (on the work date, when given).

        With ``on`` the version's range can never be cut short before that date by a later
        version; without it only the version's content is protected.
        """
        self.version(rate_card_id, version)
        used = self._used.setdefault((rate_card_id, version), set())
        if on is not None:
            used.add(on)

    # --- reads -------------------------------------------------------------------------------
    def is_used(self, rate_card_id: str, version: int) -> bool:
        return (rate_card_id, version) in self._used

    def versions(self, rate_card_id: str) -> list[RateCard]:
        """All versions of a rate card, by version number."""
        return [v for _, v in sorted(self._card(rate_card_id).items())]

    def version(self, rate_card_id: str, version: int) -> RateCard:
        try:
            return self._card(rate_card_id)[version]
        except KeyError:
            raise NotFoundError(
                f"Rate card {rate_card_id!r} has no version {version}",
                context={"rate_card_id": rate_card_id, "version": version},
            ) from None

    def effective_on(self, rate_card_id: str, on: date) -> RateCard:
        """The version whose effective range contains ``on``."""
        cards = self._card(rate_card_id)
        for rng in effective_ranges(list(cards.values())):
            if rng.contains(on):
                return cards[rng.version]
        listed = ", ".join(str(r) for r in effective_ranges(list(cards.values())))
        raise NotFoundError(
            f"Rate card {rate_card_id!r} has no version effective on {on}",
            detail=f"versions: {listed}",
            suggested_fix="Publish a rate card version covering that date, then replay.",
            context={"rate_card_id": rate_card_id, "on": on.isoformat()},
        )

    def rate_for(
        self, rate_card_id: str, *, role: str | None, service_item: str | None, on: date
    ) -> tuple[RateCardLine, int]:
        """The rate line for a role / service item on a work date, and the version used."""
        question = (rate_card_id, role, service_item, on)
        answer = self._answers.get(question)
        if answer is None:
            answer = self._answers[question] = self._rate_for(
                rate_card_id, role=role, service_item=service_item, on=on
            )
        return answer

    def _rate_for(
        self, rate_card_id: str, *, role: str | None, service_item: str | None, on: date
    ) -> tuple[RateCardLine, int]:
        card = self.effective_on(rate_card_id, on)
        candidates = [
            line for line in card.lines if service_item is None or line.service_item == service_item
        ]
        exact = [line for line in candidates if role is not None and line.role == role]
        default = [line for line in candidates if line.role is None]
        chosen = exact or default
        if len(chosen) == 1:
            return chosen[0], card.version
        context = {
            "rate_card_id": rate_card_id,
            "version": card.version,
            "role": role,
            "service_item": service_item,
            "on": on.isoformat(),
        }
        if len(chosen) > 1:
            items = ", ".join(sorted(line.service_item for line in chosen))
            raise MappingMissingError(
                f"Rate card {rate_card_id!r} has several rates for role {role!r} on {on} "
                f"({items}); the entry must name its service item",
                context=context,
            )
        what = f"role {role!r}" if role is not None else f"service item {service_item!r}"
        if role is not None and any(line.role == role for line in card.lines):
            what += f" and service item {service_item!r}"
        raise MappingMissingError(
            f"Rate card {rate_card_id!r} has no rate for {what} on {on}",
            detail=f"version {card.version} effective {card.effective_from}",
            suggested_fix="Add the rate in a new rate card version, or correct the role.",
            context=context,
        )

    def _card(self, rate_card_id: str) -> dict[int, RateCard]:
        versions = self._versions.get(rate_card_id)
        if not versions:
            raise NotFoundError(
                f"Rate card {rate_card_id!r} does not exist",
                context={"rate_card_id": rate_card_id},
            )
        return versions
