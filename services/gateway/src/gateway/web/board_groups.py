"""Row groups of the board: customers grouped by a column, with counts and sums per group.

Pure functions over the API's cards (no I/O), so the grouping is unit-tested on its own.
Money is summed per currency (never across currencies), with Decimal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

GROUPABLE: dict[str, str] = {"status": "Status", "currency": "Currency", "country": "Country",
                             "tag": "Tag"}
STATUS_ORDER = ("active", "inactive", "pending_approval", "penalty")
NONE_LABEL = {"country": "(no country)", "tag": "(no tag)", "currency": "(none)", "status": "(none)"}
COUNTED = ("channels", "cps", "contacts")  # plain numbers, summed across the group
MONEY = ("debit_limit", "minimum_payment")  # money, summed per currency


def _number(value: Any) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)
    return number if number.is_finite() else Decimal(0)


def keys_of(card: dict[str, Any], by: str) -> list[str]:
    """The group keys a card falls under: one, or one per tag ("" when it has none)."""
    if by == "tag":
        tags = [t for t in card.get("tags") or [] if t]
        return list(dict.fromkeys(tags)) or [""]
    if by == "country":
        return [(card.get("address") or {}).get("country") or ""]
    return [str(card.get(by) or "")]


@dataclass
class Group:
    """One group: its key, its cards (in the API's order) and their totals."""

    by: str
    key: str
    cards: list[dict[str, Any]] = field(default_factory=list)
    sums: dict[str, Decimal] = field(default_factory=dict)
    money: dict[str, dict[str, Decimal]] = field(default_factory=dict)  # column -> currency -> sum

    @property
    def label(self) -> str:
        """What the group's heading says."""
        if not self.key:
            return NONE_LABEL[self.by]
        return self.key.replace("_", " ") if self.by == "status" else self.key

    @property
    def count(self) -> int:
        """Customers in the group."""
        return len(self.cards)

    def add(self, card: dict[str, Any]) -> None:
        """Count a card in."""
        self.cards.append(card)
        for column in COUNTED:
            value = len(card.get("contacts") or []) if column == "contacts" else card.get(column)
            self.sums[column] = self.sums.get(column, Decimal(0)) + _number(value)
        currency = str(card.get("currency") or "")
        for column in MONEY:
            per = self.money.setdefault(column, {})
            per[currency] = per.get(currency, Decimal(0)) + _number(card.get(column))

    def number(self, column: str) -> str:
        """A plain column's sum for reading: grouped thousands, no needless zeros."""
        value = self.sums.get(column, Decimal(0))
        text = f"{value:,f}"
        return text.rstrip("0").rstrip(".") if "." in text else text

    def money_sums(self, column: str) -> list[tuple[str, Decimal]]:
        """A money column's sums, one per currency, currencies in alphabetical order."""
        return sorted((self.money.get(column) or {}).items())


def _order(by: str, key: str) -> tuple[int, int, str]:
    """Groups in a stable order: statuses as the product lists them, others by name, none last."""
    if not key:
        return (1, 0, "")
    if by == "status" and key in STATUS_ORDER:
        return (0, STATUS_ORDER.index(key), key)
    return (0, len(STATUS_ORDER), key.casefold())


def group_cards(cards: Iterable[dict[str, Any]], by: str) -> list[Group]:
    """Cards grouped by `by` (one of GROUPABLE); a card with several tags is in each tag's group."""
    if by not in GROUPABLE:
        raise ValueError(f"cannot group by {by!r}")
    groups: dict[str, Group] = {}
    for card in cards:
        for key in keys_of(card, by):
            groups.setdefault(key, Group(by, key)).add(card)
    return sorted(groups.values(), key=lambda g: _order(by, g.key))


@dataclass(frozen=True)
class GroupedRow:
    """One line of a grouped page: a group's heading (card None) or one of its cards."""

    group: Group
    card: dict[str, Any] | None = None
    continued: bool = False  # a heading repeated at the top of a page that starts mid-group


def grouped_page(groups: Sequence[Group], at: int, limit: int) -> tuple[list[GroupedRow], int]:
    """The headings and cards of the rows `at`..`at+limit` of the grouped list, and the row count.

    Only cards count as rows (a tag-grouped customer counts once per tag); each group's heading
    is shown before its first card on the page, marked `continued` if the group began earlier.
    """
    out: list[GroupedRow] = []
    start = 0
    for group in groups:
        end = start + group.count
        if end > at and start < at + limit:
            first = max(at, start)
            out.append(GroupedRow(group, None, continued=first > start))
            out.extend(GroupedRow(group, card) for card in group.cards[first - start:at + limit - start])
        start = end
    return out, start
