"""The permission table checked by itself: the rules shared.bus_identities promises."""

from __future__ import annotations

from shared.bus_credentials import authorization_block, ensure_credentials, public_key, sign, verify
from shared.bus_identities import IDENTITIES, PROVISIONER, stream_owners
from shared.consumer import ConsumerSpec
from shared.partitions import owned_partitions

WIDE = {">", "$JS.API.>", "$JS.>", "_INBOX.>", "$JS.API.STREAM.>", "$JS.API.CONSUMER.>"}


def test_no_identity_but_the_provisioner_has_a_wide_right() -> None:
    for ident in IDENTITIES.values():
        subjects = set(ident.publish_allow()) | set(ident.subscribe_allow())
        if ident.name == PROVISIONER:
            assert subjects == {">"}
            continue
        assert not subjects & WIDE, ident.name
        assert not any(s.startswith("_INBOX.") for s in subjects), ident.name
        # no JetStream admin of any kind: streams are the provisioner's
        assert not any(s.startswith(("$JS.API.STREAM.CREATE", "$JS.API.STREAM.DELETE", "$JS.API.STREAM.UPDATE",
                                     "$JS.API.STREAM.PURGE", "$JS.API.STREAM.MSG.DELETE", "$JS.API.DIRECT"))
                       for s in subjects), ident.name
        # reading messages by sequence: only CUSTOMER_EVENTS, only those that replay its erasures
        gets = {s for s in subjects if s.startswith("$JS.API.STREAM.MSG.GET.")}
        expected = {"$JS.API.STREAM.MSG.GET.CUSTOMER_EVENTS"} if ident.name in (
            "customer", "notifier", "verification") else set()
        assert gets == expected, ident.name


def test_each_identity_reads_replies_only_under_its_own_prefix() -> None:
    prefixes = [i.inbox_prefix for i in IDENTITIES.values()]
    assert len(set(prefixes)) == len(prefixes)
    for ident in IDENTITIES.values():
        if ident.name == PROVISIONER:
            continue
        inboxes = [s for s in ident.subscribe_allow() if s.startswith("_INBOX")]
        assert inboxes == [f"_INBOX_{ident.name}.>"]


def test_only_a_streams_owner_publishes_into_it() -> None:
    assert stream_owners() == {
        "CUSTOMER_EVENTS": ["customer"],
        "VERIFICATION_EVENTS": ["verification"],
        "NOTIFICATION_EVENTS": ["notifier"],
        "BILLING_EVENTS": ["reporting", "billing"],  # invoices by reporting, payments by billing
        "CALLS": ["switch"],
        "NOTIFY": ["customer", "verification", "alerts"],  # a work queue: the notifier reads it
        "ALERT_EVENTS": ["alerts"],
        # each service its own consumers' letters and their announcements only (checked below)
        "OPS_EVENTS": ["customer", "verification", "notifier", "reporting", "alerts"],
        "DEAD_LETTERS": ["customer", "verification", "notifier", "reporting", "alerts"],
    }
    assert IDENTITIES["billing"].publish_allow()[0] == "billing.payments.*"
    assert [s for s in IDENTITIES["reporting"].publish if s.startswith(("events.", "billing."))] == ["events.billing.>"]


def test_dead_letters_and_their_events_name_the_publishers_own_durables() -> None:
    for ident in IDENTITIES.values():
        if ident.name == PROVISIONER:
            continue
        own = {d.name for d in ident.durables} | ({"notifier.delivery"} if ident.name == "notifier" else set())
        for subject in ident.publish_allow():
            if subject.startswith("dlq."):
                assert subject.removeprefix("dlq.") in own, (ident.name, subject)
            if subject.startswith("events.ops."):
                assert subject.split(".")[2] in own, (ident.name, subject)


def test_every_consumer_a_service_declares_is_its_own_in_the_table() -> None:
    from alerts.application.evaluator import BILLING_SPEC, CALLS_SPEC, CUSTOMER_SPEC
    from customer.application import billing_payments, verification_results
    from customer.projections import credit_notes, ledger
    from notifier.application.system_messages import NOTIFY_CONSUMER
    from reporting.application.allocation import consumer_spec as allocation_spec
    from reporting.bootstrap import all_projections
    from reporting.settings import ReportingSettings
    from shared.erasure_feed import erasure_consumer
    from shared.settings import CommonSettings

    async def scrub(_: object) -> None: ...

    settings = CommonSettings()
    prefix = ReportingSettings.model_fields["durable_prefix"].default
    declared: dict[str, list[ConsumerSpec]] = {
        "customer": [verification_results.SPEC, ledger.SPEC, credit_notes.SPEC, billing_payments.SPEC],
        "notifier": [NOTIFY_CONSUMER, erasure_consumer(None, "notifier-erasures", scrub, settings).spec],  # type: ignore[arg-type]
        "verification": [erasure_consumer(None, "verification-erasures", scrub, settings).spec],  # type: ignore[arg-type]
        "reporting": [*(p.consumer_spec(s, prefix) for p in all_projections() for s in p.sources),
                      allocation_spec(prefix)],
        "alerts": [CALLS_SPEC, CUSTOMER_SPEC, BILLING_SPEC],
    }
    every = owned_partitions(0, 1)
    for name, specs in declared.items():
        allowed = IDENTITIES[name].durable_names()
        for spec in specs:
            for part in [spec, *spec.partitioned(every)]:
                assert (part.stream, part.durable) in allowed, (name, part.durable)
                assert f"$JS.API.CONSUMER.MSG.NEXT.{part.stream}.{part.durable}" in IDENTITIES[name].publish_allow()
    for name in ("gateway", "switch", "billing"):
        assert not IDENTITIES[name].durables


def test_the_server_block_holds_public_keys_only(tmp_path) -> None:
    keys = ensure_credentials(tmp_path)
    block = authorization_block(keys)
    for name in IDENTITIES:
        seed = (tmp_path / f"{name}.nk").read_text().strip()
        assert seed.startswith("SU") and seed not in block
        assert keys[name] == public_key(seed) and keys[name] in block
        assert (tmp_path / f"{name}.nk").stat().st_mode & 0o777 == 0o600
    assert tmp_path.stat().st_mode & 0o777 == 0o700
    assert ensure_credentials(tmp_path) == keys  # made once, read back after


def test_signatures_verify_only_with_the_signers_key(tmp_path) -> None:
    keys = ensure_credentials(tmp_path)
    seed = (tmp_path / "gateway.nk").read_text()
    signature = sign(seed, b"operator alice")
    assert verify(keys["gateway"], b"operator alice", signature)
    assert not verify(keys["gateway"], b"operator mallory", signature)
    assert not verify(keys["customer"], b"operator alice", signature)
    assert not verify(keys["gateway"], b"operator alice", "garbage")
