"""Invoice documents per second: PDF (fpdf2) beside the HTML of the same invoices, in one run.

    .venv/bin/python bench/invoices.py [--count 300] [--lines 31] [--png docs/screenshots/invoice.png]

Target (issue 19): >= 50 PDF documents of 31 lines per second. With --png, page 1 of one PDF is
drawn to a PNG with pypdfium2 (a dev dependency) for the docs.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from reporting.documents.render import InvoiceRenderer
from reporting.domain.invoice import ROUNDING_NOTE
from shared.contracts.invoices import Buyer, Invoice, InvoiceLineOut, Seller


def sample_invoice(lines: int, number: int) -> Invoice:
    """A realistic invoice of `lines` days, the last one late usage."""
    first = date(2030, 1, 1)
    out = [InvoiceLineOut(
        day=first + timedelta(days=i), kind="late_usage" if i == lines - 1 else "usage",
        attempts=1200 + 37 * i, connected=700 + 21 * i, billed_duration_s=95_000 + 1_380 * i,
        billed_minutes=(Decimal(95_000 + 1_380 * i) / 60).quantize(Decimal("0.01")),
        charge=Decimal("143.2175") + i, amount=Decimal("143.22") + i) for i in range(lines)]
    subtotal = sum((x.amount for x in out), Decimal(0))
    tax = (subtotal * Decimal("0.19")).quantize(Decimal("0.01"))
    return Invoice(
        id=uuid.uuid4(), number=number, document_number=f"INV-2030-{number}", customer_id=str(uuid.uuid4()),
        currency="EUR", minor_units=2, tax_rate=Decimal("19"), lines=out, subtotal=subtotal, tax=tax,
        total=subtotal + tax, amount_paid=Decimal("500.00"), amount_credited=Decimal(0),
        amount_due=subtotal + tax - 500, status="open", issue_date=date(2030, 2, 1),
        due_date=date(2030, 3, 3), period_from=first, period_to=first + timedelta(days=lines - 2),
        seller=Seller(company_name="Patchbay Telecom GmbH", company_address="Carrier Street 1\n10115 Berlin\nDE",
                      payment_details="IBAN DE89 3704 0044 0532 0130 00 - BIC COBADEFFXXX\n"
                                      "Please quote the invoice number.",
                      footer="Patchbay Telecom GmbH - VAT DE123456789 - billing@patchbay.example"),
        buyer=Buyer(name="Acme Calls Ltd", address="2 Dial Road\nEC1A 1BB London\nGB"),
        rounding=ROUNDING_NOTE.format(units=2), created_at=datetime.now(UTC))


def rate(name: str, render: Callable[[Invoice], object], invoices: list[Invoice], rounds: int) -> float:
    """Documents per second: the median of `rounds` passes over the invoices."""
    render(invoices[0])  # warm: fonts, templates
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for invoice in invoices:
            render(invoice)
        rates.append(len(invoices) / (time.perf_counter() - start))
    figure = statistics.median(rates)
    print(f"{name:5s} {figure:8.1f} documents/s  (passes: {', '.join(f'{r:.0f}' for r in rates)})")
    return figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="invoices per pass")
    parser.add_argument("--lines", type=int, default=31)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--png", type=Path, help="draw page 1 of one PDF to this PNG")
    args = parser.parse_args()
    renderer = InvoiceRenderer()
    invoices = [sample_invoice(args.lines, 1000 + i) for i in range(args.count)]
    print(f"{args.count} invoices of {args.lines} lines, {args.rounds} passes each")
    html = rate("html", renderer.html, invoices, args.rounds)
    pdf = rate("pdf", renderer.pdf, invoices, args.rounds)
    size = len(renderer.pdf(invoices[0]))
    print(f"pdf/html {pdf / html:.2f}; one PDF is {size / 1024:.1f} KiB; target >= 50 PDF/s:"
          f" {'met' if pdf >= 50 else 'NOT met'}")
    if args.png:
        import pypdfium2  # a dev dependency: only for the docs' picture

        page = pypdfium2.PdfDocument(renderer.pdf(invoices[0]))[0]
        page.render(scale=1.6).to_pil().save(args.png)
        print(f"page 1 drawn to {args.png}")


if __name__ == "__main__":
    main()
