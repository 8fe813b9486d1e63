"""Screenshots of the console's and the portal's main pages, for docs/console.md.

    uv run --no-sync python services/gateway/tests/browser/screenshots.py [docs/screenshots]

Starts the stack on a fresh data dir, fills it with demo customers (and 30 days of simulated
calls), and drives Debian's chromium through each page at 1280 px (whole page), then the main pages
at a phone's 390 px (`*-390.png`, the first screen). PNGs are reduced to 256 colours to stay small.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import Page, expect, sync_playwright

from shared import bus

sys.path.insert(0, str(Path(__file__).parent))
from stack_runner import Stack, run_stack

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DEMO = [
    ("Acme Voice Ltd", "GBP", "GB", ["gold", "uk"], 120, "12.5"),
    ("Blue Fjord Telecom", "NOK", "NO", ["gold", "nordic"], 60, "5"),
    ("Carrier Uno", "USD", "US", ["silver"], 30, "3"),
    ("Dial Tone GmbH", "EUR", "DE", ["bronze"], 10, "1"),
    ("Echo Trunking", "USD", "CA", ["silver", "na"], 45, "4"),
    ("Fox Wholesale", "USD", "US", ["gold"], 200, "20"),
    ("Globex Telecom", "EUR", "FR", ["bronze", "eu"], 20, "2"),
    ("Harbor Networks", "USD", "US", ["silver"], 15, "1.5"),
]
TOML = '[routing]\nprefix = "44"\nstrip_digits = 0\n\n[limits]\nmax_duration_s = 7200\n'


def seed(stack: Stack) -> dict[str, Any]:
    """Demo customers, a contact, a change with a reason, a pending customer."""
    cards = {}
    for name, currency, country, tags, channels, cps in DEMO:
        cards[name] = stack.create_customer(
            name=name, currency=currency, tags=tags, channels=channels, cps=cps, debit_limit="250",
            address={"line1": "1 Exchange Street", "city": "Springfield", "country": country},
            website=f"https://{name.split()[0].lower()}.example", config_toml=TOML if name.startswith("Acme") else "",
        )
    acme = cards["Acme Voice Ltd"]
    with stack.api() as api:
        api.post(f"/v1/customers/{acme['id']}/contacts", json={
            "name": "Jane Ops", "email": "jane@acme.example", "mobile": "+447700900123",
            "password": "correct horse battery staple", "auto_generate_password": False,
            "public_notes": "Your account manager is Sam: +44 20 7946 0000."}).raise_for_status()
        api.post(f"/v1/customers/{acme['id']}/contacts", json={
            "name": "Billing Desk", "email": "billing@acme.example", "password": "another long secret 1",
            "auto_generate_password": False, "contact_type": "billing"}).raise_for_status()
        api.patch(f"/v1/customers/{acme['id']}", json={"tax": "20", "channels": 150},
                  headers={"X-Audit-Reason": "contract renewal 2026"}).raise_for_status()
        api.post(f"/v1/customers/{cards['Harbor Networks']['id']}/status",
                 json={"status": "pending_approval"}).raise_for_status()
    return cards


def simulate_calls(stack: Stack, customer_id: str) -> None:
    """30 days of call records through the reporting simulator."""
    subprocess.run([sys.executable, "-m", "reporting.simulator", "--customers", customer_id, "--backlog", "600",
                    "--days", "20", "--seed", "7", "--nats-url", stack.nats_url], check=True)


def fake_switch(stack: Stack) -> threading.Event:
    """Answer test-call requests in the background (the portal's CLI screenshot) until the event is set."""
    import asyncio

    done = threading.Event()

    async def run() -> None:
        nc = await bus.connect(stack.nats_url, "provisioner")

        async def on_request(msg: Any) -> None:
            await msg.respond(b"{}")

        await nc.subscribe("switch.testcall.request", cb=on_request)
        while not done.is_set():
            await asyncio.sleep(0.2)
        await nc.close()

    threading.Thread(target=lambda: asyncio.run(run()), daemon=True).start()
    return done


PHONE_PAGES = [  # (file name, path; {acme} is the demo customer's id): the main pages at 390 px
    ("01-sign-in", "/console/login"), ("02-board", "/console/"), ("07-card-main", "/console/customers/{acme}"),
    ("08-card-edit", "/console/customers/{acme}/edit"), ("09-card-audit", "/console/customers/{acme}/audit"),
    ("11-settings", "/console/settings"), ("13-alerts", "/console/alerts"), ("14-messages", "/console/messages"),
    ("15-audit-log", "/console/audit"), ("16-invoices", "/console/invoices"), ("17-payments", "/console/payments"),
]


def shoot(page: Page, out: Path, name: str, *, full: bool = True) -> None:
    """One PNG, in 256 colours."""
    page.wait_for_load_state("networkidle")
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=full)
    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    print("wrote", path, path.stat().st_size // 1024, "KiB")


def take(stack: Stack, cards: dict[str, Any], out: Path) -> None:
    """Every main page."""
    acme = cards["Acme Voice Ltd"]
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1280, "height": 860})
        page = context.new_page()
        base = stack.http
        page.goto(f"{base}/console/login")
        shoot(page, out, "01-sign-in", full=False)
        page.fill("#f-token", stack.token)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/console/")
        shoot(page, out, "02-board")
        page.check("input[name=status][value=active]")
        page.fill("#f-tag", "gold")
        page.click("#apply-filters")
        page.wait_for_url("**tag=gold**")
        page.wait_for_load_state("networkidle")
        page.click("#columns-chooser summary")
        page.check(".col-toggle[data-col=website]")
        page.check("#select-all")
        shoot(page, out, "03-board-filtered-columns-selection", full=False)
        page.click("#columns-chooser summary")
        page.click("#bulk-edit")
        shoot(page, out, "04-bulk-edit")
        page.goto(f"{base}/console/?tag=gold")
        page.check("#select-all")
        page.click("#send-email")
        page.fill("#f-subject", "Maintenance window for {{customer.name}}")
        page.fill("#f-body", "Dear {{contact.name}},\n\nthe Frankfurt switch restarts on Sunday at 02:00 UTC.")
        shoot(page, out, "05-send-email")
        page.goto(f"{base}/console/bulk/upload")
        shoot(page, out, "06-bulk-upload")

        page.goto(f"{base}/console/customers/{acme['id']}")
        expect(page.locator("#summary tbody tr").first).to_be_visible()
        for _ in range(30):  # reporting is a projection: wait until the calls are in
            if page.locator("#summary tbody tr.empty").count() == 0:
                break
            time.sleep(0.5)
            page.reload()
        cells = page.locator("#summary tbody td[data-col=charge]")
        for i in range(min(3, cells.count())):
            cells.nth(i).click()
        shoot(page, out, "07-card-main")
        page.click("#tab-edit")
        expect(page.locator("#f-config_toml")).to_be_visible()
        page.fill("#f-config_toml", TOML.replace("strip_digits = 0", "strip_digits = = 0"))
        page.click("#save")
        expect(page.locator("#toml-bad-line")).to_be_visible()
        shoot(page, out, "08-card-edit-toml-error")
        page.click("#tab-audit")
        expect(page.locator(".audit-entry").first).to_be_visible()
        page.locator(".audit-entry[data-type=CustomerUpdated] summary").first.click()
        shoot(page, out, "09-card-audit-difference")
        page.locator(".audit-entry[data-type=CustomerCreated] a", has_text="card as of then").click()
        expect(page.locator("#asof-card")).to_be_visible()
        shoot(page, out, "10-card-as-of")
        page.goto(f"{base}/console/settings")
        shoot(page, out, "11-settings")
        for name, path in (("13-alerts", "/console/alerts"), ("14-messages", "/console/messages"),
                           ("15-audit-log", "/console/audit"), ("16-invoices", "/console/invoices"),
                           ("17-payments", "/console/payments")):
            page.goto(base + path)
            shoot(page, out, name)
        page.set_viewport_size({"width": 390, "height": 844})
        for name, path in PHONE_PAGES:
            if name == "01-sign-in":
                continue  # signed in: shot below, after signing out
            page.goto(base + path.format(acme=acme["id"]))
            shoot(page, out, f"{name}-390", full=False)
        page.click("text=Sign out")
        shoot(page, out, "01-sign-in-390", full=False)
        page.set_viewport_size({"width": 1280, "height": 860})

        page.goto(f"{base}/portal/login")
        page.fill("#f-email", "jane@acme.example")
        page.fill("#f-password", "correct horse battery staple")
        page.click("#portal-login")
        page.fill("#f-number", "+14155550123")
        page.click("#start-cli")
        expect(page.locator("#cli-pending")).to_be_visible()
        shoot(page, out, "12-portal")
        page.goto(f"{base}/portal/account")
        shoot(page, out, "18-portal-account")
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{base}/portal/home")
        shoot(page, out, "12-portal-390", full=False)
        context.close()


def main() -> None:
    """Start, seed, shoot, stop."""
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots").resolve()
    out.mkdir(parents=True, exist_ok=True)
    # the stack, the call simulator and the stand-in switch share one set of NATS identities' seeds
    credentials = tempfile.TemporaryDirectory(prefix="patchbay-shots-credentials-")
    os.environ["PATCHBAY_NATS_CREDENTIALS_DIR"] = credentials.name
    with credentials, run_stack() as stack:
        cards = seed(stack)
        simulate_calls(stack, cards["Acme Voice Ltd"]["id"])
        done = fake_switch(stack)
        try:
            take(stack, cards, out)
        finally:
            done.set()
            time.sleep(0.5)


if __name__ == "__main__":
    main()
