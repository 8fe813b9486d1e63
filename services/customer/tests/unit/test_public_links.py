"""Links in e-mails follow the configured public address, or the port HTTP really runs on."""

from __future__ import annotations

import pytest
from customer.bootstrap import CustomerSettings


@pytest.fixture(autouse=True)
def _no_link_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PATCHBAY_PUBLIC_URL", "PATCHBAY_PORTAL_URL", "PATCHBAY_HTTP_PORT"):
        monkeypatch.delenv(name, raising=False)


def test_the_portal_link_is_the_portal_page_on_the_stacks_port(monkeypatch: pytest.MonkeyPatch) -> None:
    assert CustomerSettings().portal_page == "http://127.0.0.1:8000/portal/"
    monkeypatch.setenv("PATCHBAY_HTTP_PORT", "18080")
    assert CustomerSettings().portal_page == "http://127.0.0.1:18080/portal/"
    assert CustomerSettings().public_base == "http://127.0.0.1:18080"


def test_public_and_portal_urls_are_taken_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHBAY_PUBLIC_URL", "https://patchbay.example.com/")
    assert CustomerSettings().portal_page == "https://patchbay.example.com/portal/"
    assert CustomerSettings().public_base == "https://patchbay.example.com"
    monkeypatch.setenv("PATCHBAY_PORTAL_URL", "https://portal.example.com/")
    assert CustomerSettings().portal_page == "https://portal.example.com/"
