"""Every boundary of the bus on a real nats-server: who may connect, publish, subscribe, touch JetStream.

A refused action shows on the client's error callback ("permissions violation ..."), never as an
exception; each test waits (bounded) for that report, then checks as the provisioner (the admin)
that nothing changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import nats as nats_py
import pytest
import pytest_asyncio
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import ConsumerConfig
from shared.bus_credentials import new_seed

from shared import bus

pytestmark = pytest.mark.servers


@dataclass
class Watched:
    """A connection as one identity, with the errors the server reported to it."""

    nc: NatsClient
    errors: list[str] = field(default_factory=list)

    async def refused(self, subject: str, what: str = "publish to") -> None:
        """Wait until the server reported refusing `what` on subject."""
        expected = f'permissions violation for {what} "{subject.lower()}"'
        await wait_for(lambda: any(expected in e.lower() for e in self.errors), timeout=5,
                       message=f"no refusal of {what} {subject}; errors: {self.errors}")


@pytest_asyncio.fixture(loop_scope="session")
async def connect_as(nats_url: str) -> AsyncIterator[Callable[[str], Awaitable[Watched]]]:
    """Factory: a connection as an identity, closed at teardown."""
    opened: list[NatsClient] = []

    async def make(name: str) -> Watched:
        watched = Watched(nc=None)  # type: ignore[arg-type]

        async def on_error(exc: Exception) -> None:
            watched.errors.append(str(exc))

        watched.nc = await bus.connect(nats_url, name, error_cb=on_error, max_reconnect_attempts=1)
        opened.append(watched.nc)
        return watched

    yield make
    for nc in opened:
        with contextlib.suppress(Exception):
            await nc.close()


async def test_anonymous_connection_is_refused(nats_url: str) -> None:
    with pytest.raises(NatsError, match="Authorization Violation"):
        await nats_py.connect(nats_url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0)


async def test_a_key_not_in_the_table_is_refused(nats_url: str) -> None:
    with pytest.raises(NatsError, match="Authorization Violation"):
        await nats_py.connect(nats_url, nkeys_seed_str=new_seed(), connect_timeout=2, allow_reconnect=False,
                           max_reconnect_attempts=0)


async def test_the_exploit_set_password_without_the_gateway_reaches_no_one(
    nats_url: str, nats: NatsClient, connect_as: Callable[[str], Awaitable[Watched]],
) -> None:
    """Issue 13: a request on customer.cmd.contact.set-password with a made-up actor changed a password."""
    subject = "customer.cmd.contact.set-password"
    heard: list[Msg] = []

    async def spy_cb(msg: Msg) -> None:
        heard.append(msg)

    spy = await nats.subscribe(subject, cb=spy_cb)
    await nats.flush()
    body = b'{"meta": {"actor": {"kind": "operator", "name": "alice"}}, "customer_id": "x", "contact_id": "y"}'
    with pytest.raises(NatsError, match="Authorization Violation"):  # no credentials: no door
        await nats_py.connect(nats_url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0)
    for name in ("switch", "billing", "verification", "notifier", "reporting"):
        other = await connect_as(name)
        with pytest.raises(NatsTimeoutError):
            await other.nc.request(subject, body, timeout=0.5)
        await other.refused(subject)
    await nats.flush()
    assert heard == [], "a refused request reached a subscriber"
    await spy.unsubscribe()


# identity -> subjects it must not publish (a sample per boundary: others' streams, others'
# commands, the test-call codes, mass mail, payments, call records, stream deletion)
FORBIDDEN_PUBLISH = {
    "switch": ["events.verification.c1.CliVerified", "billing.payments.c1", "customer.cmd.cli.approve",
               "notifier.cmd.send", "events.customer.c1.CustomerCreated", "$JS.API.STREAM.DELETE.CALLS"],
    "billing": ["calls.cdr.c1", "events.billing.c1.InvoiceGenerated", "reporting.cmd.generate-invoice",
                "customer.query.dial-permission", "$JS.API.STREAM.PURGE.BILLING_EVENTS"],
    "gateway": ["events.customer.c1.CustomerCreated", "calls.cdr.c1", "billing.payments.c1",
                "switch.testcall.request", "notify.email.contact_password.c1", "$JS.API.STREAM.CREATE.X"],
    "customer": ["events.verification.c1.CliVerified", "calls.cdr.c1", "notify.sms.mobile_code.c1",
                 "notifier.cmd.send", "_INBOX_gateway.abc", "$JS.API.STREAM.UPDATE.CUSTOMER_EVENTS"],
    "verification": ["events.customer.c1.CustomerCreated", "customer.cmd.cli.approve",
                     "notify.email.contact_password.c1", "$JS.API.STREAM.MSG.GET.NOTIFY"],
    "notifier": ["events.customer.c1.CustomerCreated", "notify.email.contact_password.c1",
                 "customer.cmd.contact.set-password", "dlq.customer-verification-results"],
    "reporting": ["billing.payments.c1", "calls.cdr.c1", "customer.cmd.delete",
                  "$JS.API.CONSUMER.DELETE.NOTIFY.notifier-p0"],
}


@pytest.mark.parametrize("name", sorted(FORBIDDEN_PUBLISH))
async def test_forbidden_publishes_are_refused_and_change_nothing(
    name: str, nats: NatsClient, connect_as: Callable[[str], Awaitable[Watched]],
) -> None:
    js = nats.jetstream()
    before = {s.config.name: s.state.messages for s in await js.streams_info()}
    heard: list[str] = []

    async def spy_cb(msg: Msg) -> None:
        heard.append(msg.subject)

    spies = [await nats.subscribe(s, cb=spy_cb) for s in FORBIDDEN_PUBLISH[name] if not s.startswith("$")]
    await nats.flush()
    who = await connect_as(name)
    for subject in FORBIDDEN_PUBLISH[name]:
        await who.nc.publish(subject, b"{}")
    await who.nc.flush()
    for subject in FORBIDDEN_PUBLISH[name]:
        await who.refused(subject)
    await nats.flush()
    assert heard == []
    after = {s.config.name: s.state.messages for s in await js.streams_info()}
    assert after == before, "a stream changed"
    for spy in spies:
        await spy.unsubscribe()


FORBIDDEN_SUBSCRIBE = {
    "switch": ["_INBOX.>", "_INBOX_gateway.>", "customer.cmd.>", "events.>"],
    "billing": ["switch.testcall.request", "_INBOX_reporting.>", "billing.payments.>"],
    "gateway": [">", "events.customer.>", "customer.cmd.contact.set-password"],
    "customer": ["switch.testcall.request", "_INBOX.>", "verification.cmd.>"],
    "verification": ["switch.testcall.request", "customer.query.>", "_INBOX_switch.>"],
    "notifier": ["notify.>", "events.>", "_INBOX_customer.>"],
    "reporting": ["calls.>", "customer.cmd.>", "$JS.API.>"],
}


@pytest.mark.parametrize("name", sorted(FORBIDDEN_SUBSCRIBE))
async def test_forbidden_subscriptions_are_refused(
    name: str, connect_as: Callable[[str], Awaitable[Watched]],
) -> None:
    who = await connect_as(name)
    for subject in FORBIDDEN_SUBSCRIBE[name]:
        await who.nc.subscribe(subject)
    await who.nc.flush()
    for subject in FORBIDDEN_SUBSCRIBE[name]:
        await who.refused(subject, "subscription to")


@pytest.mark.parametrize("name", ["customer", "verification", "notifier", "reporting", "gateway", "switch", "billing"])
async def test_only_the_provisioner_makes_streams_and_others_consumers(
    name: str, nats: NatsClient, connect_as: Callable[[str], Awaitable[Watched]],
) -> None:
    admin = nats.jetstream()
    streams = sorted(s.config.name for s in await admin.streams_info())
    consumers = {s: sorted(c.name for c in await admin.consumers_info(s)) for s in streams}
    who = await connect_as(name)
    js = who.nc.jetstream(timeout=0.5)
    attempts = [
        ("$JS.API.STREAM.CREATE.STOLEN", js.add_stream(name="STOLEN", subjects=["stolen.>"])),
        ("$JS.API.STREAM.DELETE.CALLS", js.delete_stream("CALLS")),
        ("$JS.API.STREAM.PURGE.CUSTOMER_EVENTS", js.purge_stream("CUSTOMER_EVENTS")),
        # an unfiltered reader of someone's stream, under a name of its own
        ("$JS.API.CONSUMER.CREATE.CUSTOMER_EVENTS.peek",
         js.add_consumer("CUSTOMER_EVENTS", ConsumerConfig(name="peek"))),
        ("$JS.API.CONSUMER.DURABLE.CREATE.CALLS.peek",
         js.add_consumer("CALLS", ConsumerConfig(durable_name="peek"))),
        ("$JS.API.STREAM.MSG.GET.VERIFICATION_EVENTS", js.get_msg("VERIFICATION_EVENTS", 1)),
    ]
    for subject, call in attempts:
        with pytest.raises((NatsTimeoutError, TimeoutError)):
            await call
        await who.refused(subject)
    assert sorted(s.config.name for s in await admin.streams_info()) == streams
    # none added (an earlier test's ephemeral consumer may expire meanwhile: fewer is fine)
    after = {s: sorted(c.name for c in await admin.consumers_info(s)) for s in streams}
    assert {s: sorted(set(after[s]) - set(consumers[s])) for s in streams} == {s: [] for s in streams}


async def test_a_service_reads_only_its_own_durables(
    nats: NatsClient, connect_as: Callable[[str], Awaitable[Watched]],
) -> None:
    """The notifier's work queue is not the reporting's to read, nor the switch's."""
    from shared.consumer import ConsumerSpec, ensure_consumer

    notifier = await connect_as("notifier")
    spec = ConsumerSpec("NOTIFY", "notifier-p5", ["notify.*.*.*.5"])
    await ensure_consumer(notifier.nc.jetstream(), spec)  # its own: allowed
    for name in ("reporting", "switch", "customer"):
        other = await connect_as(name)
        sub = await other.nc.jetstream().pull_subscribe_bind(spec.durable, stream=spec.stream)
        with pytest.raises((NatsTimeoutError, TimeoutError)):
            await sub.fetch(1, timeout=0.5)
        await other.refused(f"$JS.API.CONSUMER.MSG.NEXT.NOTIFY.{spec.durable}")
    assert (await nats.jetstream().consumer_info("NOTIFY", spec.durable)).num_ack_pending == 0


async def test_each_identity_does_its_job(connect_as: Callable[[str], Awaitable[Watched]]) -> None:
    """The allowed paths work: the gateway asks the customer, the switch asks dial permission and
    answers a test call, billing asks for invoices; replies reach only the asker's inbox."""
    customer, reporting = await connect_as("customer"), await connect_as("reporting")
    switch, verification = await connect_as("switch"), await connect_as("verification")

    async def pong(msg: Msg) -> None:
        await msg.respond(b"pong")

    await customer.nc.subscribe("customer.query.get", queue="customer", cb=pong)
    await customer.nc.subscribe("customer.query.dial-permission", queue="customer", cb=pong)
    await reporting.nc.subscribe("reporting.query.invoices", queue="reporting", cb=pong)
    await switch.nc.subscribe("switch.testcall.request", queue="switch", cb=pong)
    for nc in (customer.nc, reporting.nc, switch.nc):
        await nc.flush()
    gateway, billing = await connect_as("gateway"), await connect_as("billing")
    assert (await gateway.nc.request("customer.query.get", b"{}", timeout=2)).data == b"pong"
    assert (await switch.nc.request("customer.query.dial-permission", b"{}", timeout=2)).data == b"pong"
    assert (await billing.nc.request("reporting.query.invoices", b"{}", timeout=2)).data == b"pong"
    assert (await verification.nc.request("switch.testcall.request", b"{}", timeout=2)).data == b"pong"
    assert all(not w.errors for w in (customer, reporting, switch, verification, gateway, billing))
