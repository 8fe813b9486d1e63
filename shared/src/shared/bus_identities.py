"""Who may do what on NATS: the one permission table (docs/adr/0016, docs/security.md "NATS").

Every connection authenticates with the nkey of one identity below. The table is the single
source for the embedded server's config, the deploy/ files and the tests; nothing else grants a
subject. Rules it keeps (checked by tests/security):
- only the provisioner has `>`, `$JS.API.>` or `_INBOX.>`; it makes streams (and operator tools
  such as dead-letter replay and projection rebuilds run with it);
- each identity receives replies only under its own inbox prefix `_INBOX_<identity>`;
- only the owner of a stream's subjects publishes them;
- a service reads JetStream only through its own durables, named here (each partition of a
  partitioned stream is a durable of its own: `<durable>-p<k>`), and may create, rewind (delete and
  create again) and read only those; it dead-letters to `dlq.<durable>` and announces it on
  `events.ops.<durable>.>`;
- responders answer with `allow_responses` (a reply goes only to whoever asked).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.partitions import PARTITIONS
from shared.streams import BY_NAME, partition_key_of

PROVISIONER = "provisioner"


@dataclass(frozen=True)
class Durable:
    """A durable consumer an identity reads: its stream and (base) name."""

    stream: str
    name: str

    def names(self) -> list[str]:
        """The durable itself and, on a partitioned stream, one per customer partition."""
        if partition_key_of(self.stream) is None:
            return [self.name]
        return [self.name, *(f"{self.name}-p{k}" for k in range(PARTITIONS))]

    def api_subjects(self) -> list[str]:
        """What a service needs on its own durable: info, create/update, delete (a rewind), fetch, ack."""
        out: list[str] = []
        for name in self.names():
            s = f"{self.stream}.{name}"
            out += [f"$JS.API.CONSUMER.INFO.{s}", f"$JS.API.CONSUMER.DURABLE.CREATE.{s}",
                    f"$JS.API.CONSUMER.CREATE.{s}", f"$JS.API.CONSUMER.CREATE.{s}.>",
                    f"$JS.API.CONSUMER.DELETE.{s}", f"$JS.API.CONSUMER.MSG.NEXT.{s}",
                    f"$JS.ACK.{s}.>"]
        return out

    def dead_letter_subjects(self) -> list[str]:
        """Where its given-up messages go, and the error event announcing each."""
        return [f"dlq.{self.name}", f"events.ops.{self.name}.>"]


@dataclass(frozen=True)
class Identity:
    """One NATS user: what it may publish and subscribe, which durables it reads."""

    name: str
    description: str
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()
    durables: tuple[Durable, ...] = ()
    # the streams whose info (not content) it may read: lag figures
    stream_info: tuple[str, ...] = ()
    # the streams whose messages it may read by sequence (erasures replayed at start)
    stream_get: tuple[str, ...] = ()
    allow_responses: bool = False
    # an outside party (the switch, billing): its seed is handed over, not kept by a service
    external: bool = False

    @property
    def inbox_prefix(self) -> str:
        """Where its replies come (nats-py `inbox_prefix`); `_INBOX.>` would read everyone's."""
        return f"_INBOX_{self.name}"

    def publish_allow(self) -> list[str]:
        """Every subject it may publish to (replies to requests it got aside)."""
        if self.name == PROVISIONER:
            return [">"]
        out = list(self.publish)
        for durable in self.durables:
            out += durable.api_subjects() + durable.dead_letter_subjects()
        # a durable on a stream storing the token before the key asks the stream's layout (ADR 0026)
        laid_out = [d.stream for d in self.durables if getattr(partition_key_of(d.stream), "before", False)]
        out += [f"$JS.API.STREAM.INFO.{stream}" for stream in _unique([*self.stream_info, *laid_out])]
        out += [f"$JS.API.STREAM.MSG.GET.{stream}" for stream in self.stream_get]
        return _unique(out)

    def subscribe_allow(self) -> list[str]:
        """Every subject it may subscribe to: its own, then its inbox."""
        if self.name == PROVISIONER:
            return [">"]
        return _unique([*self.subscribe, f"{self.inbox_prefix}.>"])

    def durable_names(self) -> set[tuple[str, str]]:
        """(stream, durable) of every durable it may read."""
        return {(d.stream, n) for d in self.durables for n in d.names()}


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# the one path to personal data's keys outside the customer service, and the erasures that drop
# them from the caches at once (core NATS)
DATA_KEYS = "customer.query.data-keys"
ERASURES = ("events.customer.*.CustomerErased", "events.customer.*.ContactErased")


def _requests(service: str) -> tuple[str, ...]:
    """The command and query subjects of a service (what a caller publishes, it subscribes)."""
    return (f"{service}.cmd.>", f"{service}.query.>")


REPORTING_DURABLES = (
    Durable("CUSTOMER_EVENTS", "reporting-audit-customer_events"),
    Durable("VERIFICATION_EVENTS", "reporting-audit-verification_events"),
    Durable("NOTIFICATION_EVENTS", "reporting-audit-notification_events"),
    Durable("BILLING_EVENTS", "reporting-audit-billing_events"),
    Durable("ALERT_EVENTS", "reporting-audit-alert_events"),
    Durable("CALLS", "reporting-summaries-calls"),
    Durable("CUSTOMER_EVENTS", "reporting-invoice-payments"),
)

IDENTITIES: dict[str, Identity] = {i.name: i for i in [
    Identity(
        PROVISIONER, "Makes streams and consumers at start; the operator's tools (dead letters, rebuild).",
    ),
    Identity(
        "customer", "The customer service: customer and settings events, contacts, dial permission.",
        publish=("events.customer.>", "events.settings.>", "customer.internal.>",
                 "notify.*.contact_password.*", "notify.*.password_reset.*", "notify.*.payment_receipt.*"),
        # its own events and ledger changes: the dial index learns what other replicas changed
        subscribe=(*_requests("customer"), "events.customer.>", "customer.internal.>"),
        durables=(Durable("VERIFICATION_EVENTS", "customer-verification-results"),
                  Durable("CALLS", "customer-ledger"),
                  Durable("BILLING_EVENTS", "customer-ledger-credit-notes"),
                  Durable("BILLING_EVENTS", "customer-billing-payments")),
        stream_get=("CUSTOMER_EVENTS",),
        allow_responses=True,
    ),
    Identity(
        "verification", "Codes for e-mail and mobile, CLI test calls through the switch.",
        publish=("events.verification.>", "notify.*.email_code.*", "notify.*.mobile_code.*",
                 "switch.testcall.request", "customer.query.portal.session", DATA_KEYS),
        subscribe=(*_requests("verification"), *ERASURES),
        durables=(Durable("CUSTOMER_EVENTS", "verification-erasures"),),
        stream_get=("CUSTOMER_EVENTS",),
        allow_responses=True,
    ),
    Identity(
        "notifier", "E-mail and SMS: broadcasts and the system's messages from NOTIFY.",
        publish=("events.notification.>", "customer.query.get", "customer.query.list", DATA_KEYS,
                 "dlq.notifier.delivery"),
        subscribe=(*_requests("notifier"), *ERASURES),
        durables=(Durable("NOTIFY", "notifier"), Durable("CUSTOMER_EVENTS", "notifier-erasures")),
        stream_get=("CUSTOMER_EVENTS",),
        allow_responses=True,
    ),
    Identity(
        "reporting", "Projections: audit log, summaries, invoices, balance.",
        publish=("events.billing.>", "customer.query.get", DATA_KEYS),
        subscribe=(*_requests("reporting"), *ERASURES),
        durables=REPORTING_DURABLES,
        stream_info=tuple(sorted({d.stream for d in REPORTING_DURABLES})),
        allow_responses=True,
    ),
    Identity(
        "alerts", "Alert rules over call records and customer events; their actions.",
        publish=("events.alert.>", "notify.*.alert_customer.*", "notify.*.alert_operator.*",
                 "customer.query.get", "customer.cmd.set-status"),
        subscribe=_requests("alerts"),
        durables=(Durable("CALLS", "alerts-calls"), Durable("CUSTOMER_EVENTS", "alerts-customers"),
                  Durable("BILLING_EVENTS", "alerts-billing")),
        allow_responses=True,
    ),
    Identity(
        "gateway", "The HTTP face: maps operator and portal calls to the services' requests.",
        publish=(*_requests("customer"), *_requests("verification"), *_requests("notifier"),
                 *_requests("reporting"), *_requests("alerts"),
                 "switch.demo.spoken"),  # the demo switch's spoken codes (admins; docs/verification.md)
    ),
    Identity(
        "switch", "The switch: asks dial permission, publishes call records, answers test calls.",
        publish=("customer.query.dial-permission", "calls.started.*", "calls.cdr.*"),
        subscribe=("switch.testcall.request", "switch.demo.spoken"),  # the latter: the demo's switch only
        allow_responses=True, external=True,
    ),
    Identity(
        "billing", "Billing: publishes payments, reads invoices.",
        publish=("billing.payments.*", "reporting.query.invoice", "reporting.query.invoices",
                 "reporting.query.invoice.document", "reporting.query.credit-notes"),
        external=True,
    ),
]}

SERVICES = ("customer", "verification", "notifier", "reporting", "alerts", "gateway")


def identity(name: str) -> Identity:
    """The identity called `name`; a clear error for an unknown one."""
    try:
        return IDENTITIES[name]
    except KeyError:
        raise ValueError(f"no NATS identity {name!r} (known: {', '.join(IDENTITIES)})") from None


def stream_owners() -> dict[str, list[str]]:
    """Which identities publish into each stream's subjects (the tests hold this to its owners)."""
    from shared.partitions import _overlap

    owners: dict[str, list[str]] = {}
    for stream, spec in BY_NAME.items():
        for ident in IDENTITIES.values():
            if ident.name == PROVISIONER:
                continue
            own = [s for s in ident.publish_allow() if not s.startswith("$")]
            if any(_overlap(p.split("."), s.split(".")) for p in own for s in spec.subjects):
                owners.setdefault(stream, []).append(ident.name)
    return owners
