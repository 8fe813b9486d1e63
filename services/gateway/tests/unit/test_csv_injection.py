"""No CSV the gateway writes can run a formula in a spreadsheet (issue 14)."""

from __future__ import annotations

import csv
import io

from gateway.bulk_io import read_csv
from gateway.csv_export import COLUMNS, flatten, render, safe_cell
from gateway.entrypoints.reporting_api import _csv
from gateway.web.board_pages import keep_rows

ATTACKS = ["=HYPERLINK(\"http://x\",\"y\")", "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "@SUM(1)",
           "\t=1+1", "\r=1+1"]


def cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]


def assert_inert(text: str) -> None:
    for cell in cells(text):
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")) or cell.lstrip("+-").replace(".", "").isdigit(), cell


def test_every_formula_start_is_neutralised_and_plain_numbers_kept() -> None:
    for attack in ATTACKS:
        assert safe_cell(attack) == "'" + attack
    for number in ("-12.50", "+4930123456", "0", "12"):
        assert safe_cell(number) == number
    assert safe_cell("Acme") == "Acme" and safe_cell("") == ""


def test_the_board_export_is_inert_and_uploads_back_unchanged() -> None:
    card = {"id": "c1", "name": ATTACKS[0], "notes": ATTACKS[1], "tags": [ATTACKS[3], "ok"],
            "currency": "EUR", "debit_limit": "-100.00", "config_toml": ATTACKS[2]}
    text = render([list(COLUMNS), flatten(card)])
    assert_inert(text)
    assert "-100.00" in cells(text)
    [row] = list(read_csv(io.StringIO(text, newline="")))
    assert row.data["name"] == ATTACKS[0] and row.data["notes"] == ATTACKS[1]
    assert row.data["tags"] == [ATTACKS[3], "ok"]


def test_report_and_audit_csv_are_inert() -> None:
    items = [{"reason": attack, "actor": {"name": "@evil-token"}, "type": "x"} for attack in ATTACKS]
    assert_inert(_csv(("type", "reason", "actor.name"), items, header=True))


def test_the_console_selection_export_is_inert() -> None:
    raw = ("id,name\r\nc1,Acme\r\nc2," + '"=1+1"' + "\r\n").encode()
    assert_inert(keep_rows(raw, {"c1", "c2"}).decode())
