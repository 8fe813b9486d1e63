"""The board's row groups: keys, counts, sums per currency, and pages of the grouped list."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from gateway.web.board_groups import group_cards, grouped_page, keys_of
from gateway.web.board_pages import BoardQuery
from starlette.datastructures import ImmutableMultiDict


def card(name: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": name, "name": name, "status": "active", "currency": "USD", "tags": [],
                            "address": {}, "channels": 0, "cps": "0", "debit_limit": "0",
                            "minimum_payment": "0", "contacts": []}
    return {**base, **fields}


CARDS = [
    card("a", currency="EUR", debit_limit="100.50", channels=10, cps="2.5", tags=["gold", "uk"],
         address={"country": "GB"}, contacts=[{}, {}]),
    card("b", currency="USD", debit_limit="20", channels=5, tags=["gold"], status="inactive"),
    card("c", currency="EUR", debit_limit="0.25", minimum_payment="10", channels=1, tags=["uk"],
         address={"country": "GB"}),
    card("d", currency="USD", debit_limit="3.333", status="penalty"),
]


def test_a_customer_with_several_tags_is_in_each_tags_group_and_untagged_last() -> None:
    groups = group_cards(CARDS, "tag")
    assert [(g.key, [c["name"] for c in g.cards]) for g in groups] == [
        ("gold", ["a", "b"]), ("uk", ["a", "c"]), ("", ["d"])]
    assert groups[-1].label == "(no tag)"
    assert keys_of(card("x", tags=["t", "t"]), "tag") == ["t"]


def test_money_is_summed_per_currency_and_never_across() -> None:
    gold = group_cards(CARDS, "tag")[0]
    assert gold.money_sums("debit_limit") == [("EUR", Decimal("100.50")), ("USD", Decimal("20"))]
    assert gold.sums["channels"] == 15 and gold.sums["cps"] == Decimal("2.5")
    assert gold.sums["contacts"] == 2
    by_country = {g.key: g for g in group_cards(CARDS, "country")}
    assert by_country["GB"].money_sums("debit_limit") == [("EUR", Decimal("100.75"))]
    assert by_country["GB"].money_sums("minimum_payment") == [("EUR", Decimal("10"))]
    assert by_country[""].count == 2 and by_country[""].label == "(no country)"


def test_statuses_come_in_the_products_order_and_read_as_words() -> None:
    groups = group_cards([*CARDS, card("e", status="pending_approval")], "status")
    assert [g.key for g in groups] == ["active", "inactive", "pending_approval", "penalty"]
    assert groups[2].label == "pending approval"
    assert sum(g.count for g in groups) == 5
    with pytest.raises(ValueError):
        group_cards(CARDS, "name")


def test_a_page_of_the_grouped_list_repeats_the_heading_of_a_group_it_starts_inside() -> None:
    groups = group_cards(CARDS, "tag")  # gold: a b | uk: a c | none: d  -> 5 rows
    rows, count = grouped_page(groups, 0, 3)
    assert count == 5
    assert [(r.group.key, r.card["name"] if r.card else None, r.continued) for r in rows] == [
        ("gold", None, False), ("gold", "a", False), ("gold", "b", False), ("uk", None, False),
        ("uk", "a", False)]
    rows, _ = grouped_page(groups, 3, 3)
    assert [(r.group.key, r.card["name"] if r.card else None, r.continued) for r in rows] == [
        ("uk", None, True), ("uk", "c", False), ("", None, False), ("", "d", False)]
    assert grouped_page(groups, 5, 3)[0] == []


def test_the_group_rides_in_the_boards_links_and_pages_by_offset() -> None:
    query = BoardQuery.parse(ImmutableMultiDict([("group", "currency"), ("tag", "t"), ("at", "50")]))
    assert query.group == "currency"
    again = BoardQuery.parse(ImmutableMultiDict(_params(query.link())))
    assert again.group == "currency" and again.tag == "t" and again.at == 50
    assert BoardQuery.parse(ImmutableMultiDict([("group", "name")])).group == ""
    previous = BoardQuery.parse(ImmutableMultiDict(_params(query.grouped_link(0))))
    assert previous.at == 0 and previous.group == "currency" and not previous.cursor


def _params(link: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl, urlsplit

    return parse_qsl(urlsplit(link).query)


def test_board_cells_show_money_in_minor_units_rates_to_two_places_and_times_in_utc() -> None:
    from gateway.web.board_pages import cell

    jpy = card("j", currency="JPY", debit_limit="1500.4", minimum_payment="0", tax="7.125",
               created_at="2026-12-06T01:02:03.456+00:00")
    assert cell(jpy, "debit_limit") == "¥1,500"
    assert cell(card("e", currency="EUR", debit_limit="100.505"), "debit_limit") == "€100.50"  # half-even
    assert cell(jpy, "tax") == "7.12 %"  # two places, half-even
    assert cell(jpy, "created_at") == "2026-12-06 01:02:03 UTC"
    assert cell(card("t", tags=["a", "b"]), "tags") == "a, b"
