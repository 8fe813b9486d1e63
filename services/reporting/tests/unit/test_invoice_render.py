"""Invoice documents: the PDF read back (text, number, totals), the HTML escaped, the carrier's template."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from pypdf import PdfReader
from reporting.documents.render import InvoiceRenderer
from shared.contracts.invoices import Buyer, Invoice, InvoiceLineOut, Seller


def sample(lines: int = 31, currency: str = "EUR", **changes: object) -> Invoice:
    """An invoice of `lines` days (the last one late usage)."""
    first = date(2030, 1, 1)
    out = [InvoiceLineOut(day=first + timedelta(days=i), kind="late_usage" if i == lines - 1 else "usage",
                          attempts=100 + i, connected=60 + i, billed_duration_s=3600 + 60 * i,
                          billed_minutes=Decimal(60 + i).quantize(Decimal("0.01")),
                          charge=Decimal("12.345") + i, amount=Decimal("12.34") + i) for i in range(lines)]
    subtotal = sum((x.amount for x in out), Decimal(0))
    tax = (subtotal * Decimal("0.19")).quantize(Decimal("0.01"))
    data = dict(
        id=uuid.uuid4(), number=1042, document_number="PB-1042", customer_id=str(uuid.uuid4()),
        currency=currency, minor_units=2, tax_rate=Decimal("19"), lines=out, subtotal=subtotal, tax=tax,
        total=subtotal + tax, amount_paid=Decimal("100.00"), amount_credited=Decimal(0),
        amount_due=subtotal + tax - 100, status="open", issue_date=date(2030, 2, 1), due_date=date(2030, 3, 3),
        period_from=first, period_to=first + timedelta(days=lines - 2),
        seller=Seller(company_name="Patchbay Telecom <GmbH>", company_address="1 Carrier Street\n10115 Berlin",
                      payment_details="IBAN DE00 1234 5678", footer="Thank you for your business"),
        buyer=Buyer(name="Acme Calls Ltd", address="2 Dial Road\nLondon"),
        rounding="Amounts are rounded half-even to the currency's minor units (2 decimals, ISO 4217) on the"
                 " total of each line; tax is rounded once, on the subtotal.",
        created_at=datetime.now(UTC))
    data.update(changes)
    return Invoice(**data)  # type: ignore[arg-type]


def pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_the_pdf_reads_back_with_number_lines_and_totals() -> None:
    invoice = sample()
    content = InvoiceRenderer().pdf(invoice)
    assert content.startswith(b"%PDF-")
    text = pdf_text(content)
    for expected in ("PB-1042", "Patchbay Telecom <GmbH>", "Acme Calls Ltd", "2030-03-03", "IBAN DE00 1234 5678",
                     f"{invoice.subtotal}", f"{invoice.tax}", f"{invoice.total}", f"{invoice.amount_due}",
                     "Late usage", "half-even", "Thank you for your business", "2030-01-31"):
        assert expected in text, expected
    assert text.count("Usage") == 30  # every line is there, the late one apart


def test_long_invoices_go_on_and_void_ones_say_so() -> None:
    content = InvoiceRenderer().pdf(sample(lines=90, status="void", void_reason="wrong rates"))
    assert len(PdfReader(io.BytesIO(content)).pages) >= 2
    text = pdf_text(content)
    assert "VOID: wrong rates" in text and "2030-03-31" in text


def test_jpy_shows_no_decimals_and_foreign_letters_do_not_break_the_pdf() -> None:
    invoice = sample(lines=2, currency="JPY", buyer=Buyer(name="株式会社 Dial", address=""))
    text = pdf_text(InvoiceRenderer().pdf(invoice))
    assert "Amount (JPY)" in text and "Dial" in text


def test_the_html_escapes_and_the_carrier_may_bring_its_own_template(tmp_path: Path) -> None:
    invoice = sample(lines=3)
    html = InvoiceRenderer().html(invoice)
    assert "Patchbay Telecom &lt;GmbH&gt;" in html and "<GmbH>" not in html
    assert "PB-1042" in html and f"{invoice.total}" in html and "Late usage" in html
    (tmp_path / "invoice.html.j2").write_text("<p>{{ invoice.document_number }} {{ money(invoice.total) }}</p>")
    assert InvoiceRenderer(tmp_path).html(invoice) == f"<p>PB-1042 {invoice.total}</p>"
