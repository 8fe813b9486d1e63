"""The demo's simulated switch: `python -m patchbay_cli.demo_switch` (`PATCHBAY_DEMO=1 make run`).

On its first start it seeds the carrier (demo_seed: the gateway's API, call history). It
connects to NATS as the `switch` identity (its own seed, docs/security.md "NATS"), asks dial
permission before every call, publishes the call's start and, when the (time-scaled) call ends,
its record on the CALLS stream; and it answers test calls (`switch.testcall.request`) by logging
the code it would speak (`test_call_spoken`), keeping the latest in the data dir and answering them
on `switch.demo.spoken` (the console's Test calls page, admins only: docs/verification.md "Demo").
It also catches the demo's e-mails and SMS (demo_mail: a local SMTP server and SMS API the settings point at).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from reporting.simulator import make_call
from shared.contracts.contacts import ContactSubjects
from shared.contracts.verification import VerificationStreams
from shared.logging import configure_logging

from patchbay_cli.demo_mail import MailCatcher, point_settings_at
from patchbay_cli.demo_seed import seed
from shared import bus

log = configure_logging("demo-switch", fmt=os.environ.get("PATCHBAY_LOG_FORMAT", "auto"))

RATE = float(os.environ.get("PATCHBAY_DEMO_CALL_RATE", "2"))  # calls asked per second
TIME_SCALE = float(os.environ.get("PATCHBAY_DEMO_TIME_SCALE", "0.02"))  # real s per call s
TEST_CALLS_KEPT = 20


def demo_dir() -> Path:
    """Where the seed left its customers and the switch keeps the latest test calls."""
    return Path(os.environ.get("PATCHBAY_DATA_DIR", ".patchbay-demo")) / "demo"


def load_customers() -> list[dict[str, Any]]:
    """The seeded customers (id, name, currency, weight)."""
    return list(json.loads((demo_dir() / "customers.json").read_text())["customers"])


class Switch:
    """Dials, records calls, answers test calls."""

    def __init__(self, nc: NatsClient, customers: list[dict[str, Any]], seed: int | None = None) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.customers = customers
        self.rng = random.Random(seed)
        self.refused: dict[str, tuple[str, ...]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.test_calls: list[dict[str, Any]] = []

    async def answer_test_call(self, msg: Msg) -> None:
        """Speak the code (here: log it, and keep it for the console's demo page)."""
        try:
            body = json.loads(msg.data)
            entry = {"customer_id": str(body["customer_id"]), "number": str(body["number"]),
                     "spoken_code": str(body["code"]), "at": datetime.now(UTC).isoformat()}
        except (ValueError, KeyError, TypeError):
            log.warning("test_call_malformed")
            return
        log.info("test_call_spoken", **entry)
        self.test_calls = [entry, *self.test_calls][:TEST_CALLS_KEPT]
        target = demo_dir() / "test_calls.json"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps({"test_calls": self.test_calls}))
        tmp.replace(target)
        if msg.reply:
            await msg.respond(b'{"ok":true}')

    async def tell_spoken(self, msg: Msg) -> None:
        """Answer the latest test calls and their codes (SpokenTestCalls), newest first."""
        if msg.reply:
            await msg.respond(json.dumps({"items": self.test_calls}).encode())

    async def dial_once(self) -> None:
        """Pick a customer, ask permission, and place the call when allowed."""
        weights = [float(c.get("weight", 1)) for c in self.customers]
        customer = self.rng.choices(self.customers, weights)[0]
        cid = str(customer["id"])
        query = json.dumps({"customer_id": cid}).encode()
        try:
            answer = await self.nc.request(ContactSubjects.DIAL_PERMISSION, query, timeout=2)
            reply = json.loads(answer.data)
        except (TimeoutError, ValueError) as exc:
            log.warning("dial_permission_unanswered", customer_id=cid, error=type(exc).__name__)
            return
        if not reply.get("allowed"):
            reasons = tuple(reply.get("reasons") or ())
            if self.refused.get(cid) != reasons:  # each change of verdict once, not every attempt
                log.info("dial_refused", customer_id=cid, customer=customer.get("name"),
                         reasons=list(reasons), credit=reply.get("credit"))
            self.refused[cid] = reasons
            return
        if self.refused.pop(cid, None) is not None:
            log.info("dial_allowed_again", customer_id=cid, customer=customer.get("name"))
        start, record = make_call(self.rng, cid, datetime.now(UTC))
        await self.js.publish(f"calls.started.{cid}", json.dumps(start).encode())
        length = datetime.fromisoformat(record["ended_at"]) - datetime.fromisoformat(start["started_at"])
        task = asyncio.create_task(self._finish(record, length.total_seconds() * TIME_SCALE))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _finish(self, record: dict[str, Any], after: float) -> None:
        await asyncio.sleep(after)
        await self.js.publish(f"calls.cdr.{record['customer_id']}", json.dumps(record).encode())

    async def run(self, stop: asyncio.Event) -> None:
        """Dial at RATE per second until stop."""
        while not stop.is_set():
            try:
                await self.dial_once()
            except Exception:  # the demo keeps running through a hiccup
                log.exception("dial_failed")
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1 / RATE)
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=5)


async def main() -> int:
    """Run the switch until SIGTERM / SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    url = os.environ["PATCHBAY_NATS_URL"]
    nc = await bus.connect(url, "switch", seed=bus.seed_for("switch", bus.BusSettings()))
    switch = Switch(nc, [])
    kept = demo_dir() / "test_calls.json"
    if kept.is_file():  # a restarted switch still tells the page what it spoke before
        with suppress(ValueError, KeyError):
            switch.test_calls = list(json.loads(kept.read_text())["test_calls"])[:TEST_CALLS_KEPT]
    await nc.subscribe(VerificationStreams.TEST_CALL, cb=switch.answer_test_call)  # answers at once
    await nc.subscribe(VerificationStreams.DEMO_SPOKEN, cb=switch.tell_spoken)
    # e-mails and SMS sent in the demo land here (logged). The settings are pointed at them beside
    # the seed, for as long as the notifier takes to answer: until then the seeded contacts'
    # password e-mails wait queued in the notifier (it claims nothing without settings)
    demo_dir().mkdir(parents=True, exist_ok=True)
    catcher = MailCatcher(demo_dir() / "mail.json")
    mail_server, sms_server = await catcher.start(), await catcher.start_sms()
    pointing = asyncio.create_task(
        point_settings_at(os.environ["PATCHBAY_DEMO_HTTP"], os.environ["PATCHBAY_ADMIN_TOKEN"], catcher))
    await seed(os.environ["PATCHBAY_DEMO_HTTP"], os.environ["PATCHBAY_ADMIN_TOKEN"], demo_dir().parent,
               switch.js)
    switch.customers = load_customers()
    log.info("demo_switch_started", customers=len(switch.customers), calls_per_s=RATE)
    try:
        await switch.run(stop)
    finally:
        pointing.cancel()
        mail_server.close()
        sms_server.close()
        await nc.drain()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
