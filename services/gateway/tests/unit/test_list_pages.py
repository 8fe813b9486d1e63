"""The list pages' « Previous / Next links: the trail of cursors in the URL."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from gateway.web.list_pages import BACK_KEPT, ListQuery


def params(link: str | None) -> dict[str, str]:
    assert link is not None
    return {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}


def test_next_then_previous_walks_back_to_the_first_page_with_the_filters_kept() -> None:
    first = ListQuery("/console/messages", {"channel": "sms"})
    assert first.previous_link() is None
    assert first.next_link(None) is None
    second = ListQuery("/console/messages", {"channel": "sms"}, **{
        k: v for k, v in params(first.next_link("c2")).items() if k in ("cursor", "back")})
    assert (second.cursor, second.back) == ("c2", "^")
    third = ListQuery("/console/messages", {"channel": "sms"}, **{
        k: v for k, v in params(second.next_link("c3")).items() if k in ("cursor", "back")})
    assert (third.cursor, third.back) == ("c3", "^~c2")
    assert params(third.previous_link()) == {"channel": "sms", "cursor": "c2", "back": "^"}
    assert params(second.previous_link()) == {"channel": "sms"}  # the first page: no cursor at all
    assert third.first_link() == "/console/messages?channel=sms"


def test_the_trail_keeps_only_the_last_pages() -> None:
    long = ListQuery("/console/audit", {}, cursor="c99", back="~".join(f"c{i}" for i in range(40)))
    assert len(params(long.next_link("c100"))["back"].split("~")) == BACK_KEPT
    assert ListQuery("/console/audit", {}).link() == "/console/audit"
