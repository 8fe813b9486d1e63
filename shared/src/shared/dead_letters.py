"""Dead letters: list what consumers gave up on, and replay it once the cause is fixed.

    patchbay dead-letters list [--consumer NAME]
    patchbay dead-letters replay --consumer NAME [--dry-run] [--keep]

A consumer parks a message it cannot handle on `dlq.<consumer>` (stream DEAD_LETTERS) with the
error and where it came from in headers (see `shared.consumer`). A partitioned consumer's
durables (`<consumer>-p0` ... `-p7`) share their consumer's subject; NAME may be either (a
partition durable selects that partition's letters only). `list` shows the names to use.
Replaying publishes the message again to its original subject, so it lands at the end of its
original stream: the consumer that failed gets it again, and so does every other consumer of
that stream, which are idempotent (by event id, call id, ...). The dead letter is then deleted, unless --keep.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from shared.stack_file import locate, tool_nats
from shared.streams import DEAD_LETTERS

log = structlog.get_logger(__name__)

REPLAYED_FROM = "Patchbay-Replayed-From"
_PARTITION = re.compile(r"-p\d+$")


def consumer_of(durable: str) -> str:
    """The consumer a durable belongs to: `reporting-audit-calls-p3` -> `reporting-audit-calls`."""
    return _PARTITION.sub("", durable)


@dataclass(frozen=True)
class DeadLetter:
    """One parked message and what is known about its failure."""

    seq: int
    consumer: str
    original_subject: str
    original_stream: str
    original_seq: str
    error: str
    data: bytes


async def dead_letters(js: JetStreamContext, consumer: str | None = None) -> list[DeadLetter]:
    """Every dead letter (of one consumer, or one partition durable, when named), oldest first."""
    subject = f"dlq.{consumer_of(consumer)}" if consumer else "dlq.>"
    sub = await js.pull_subscribe(
        subject, stream=DEAD_LETTERS.name,
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL,
                              inactive_threshold=30.0))
    found: list[DeadLetter] = []
    try:
        while True:
            try:
                msgs = await sub.fetch(500, timeout=1.0)
            except TimeoutError:  # nats-py raises its own or asyncio's (the builtin)
                break
            for msg in msgs:
                headers = msg.headers or {}
                found.append(DeadLetter(
                    seq=msg.metadata.sequence.stream,
                    consumer=headers.get("Patchbay-Consumer", msg.subject.removeprefix("dlq.")),
                    original_subject=headers.get("Patchbay-Original-Subject", ""),
                    original_stream=headers.get("Patchbay-Original-Stream", ""),
                    original_seq=headers.get("Patchbay-Original-Sequence", ""),
                    error=headers.get("Patchbay-Error", ""),
                    data=msg.data))
            if msgs and msgs[-1].metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    if consumer and consumer != consumer_of(consumer):  # one partition's durable
        found = [letter for letter in found if letter.consumer == consumer]
    return found


async def known_consumers(js: JetStreamContext) -> set[str]:
    """Every durable consumer on the streams, by consumer name (partitions folded together)."""
    names: set[str] = set()
    for stream in await js.streams_info():
        for info in await js.consumers_info(stream.config.name or ""):
            if info.config.durable_name:
                names.add(consumer_of(info.config.durable_name))
    return names


async def replay(js: JetStreamContext, letters: Sequence[DeadLetter], *, keep: bool = False) -> int:
    """Publish each letter again to its original subject, then delete it; return how many."""
    done = 0
    for letter in letters:
        if not letter.original_subject:
            log.warning("dead_letter_without_origin", seq=letter.seq)
            continue
        # a replay of the same dead letter twice within the dedup window lands once
        await js.publish(letter.original_subject, letter.data,
                         headers={"Nats-Msg-Id": f"replay:{DEAD_LETTERS.name}:{letter.seq}",
                                  REPLAYED_FROM: str(letter.seq)})
        if not keep:
            await js.delete_msg(DEAD_LETTERS.name, letter.seq)
        done += 1
        log.info("dead_letter_replayed", seq=letter.seq, consumer=letter.consumer,
                 subject=letter.original_subject)
    return done


async def _main(args: argparse.Namespace) -> int:
    nc = await tool_nats(locate().nats_url)
    try:
        js = nc.jetstream()
        letters = await dead_letters(js, args.consumer)
        if args.consumer and not letters:
            known = await known_consumers(js)
            if consumer_of(args.consumer) not in known:
                print(f"no consumer named {args.consumer}; consumers: {', '.join(sorted(known)) or 'none'}",
                      file=sys.stderr)
                return 2
        for letter in letters:
            print(f"{letter.seq:>8}  {consumer_of(letter.consumer):<36} (durable {letter.consumer})"
                  f"  {letter.original_stream}#{letter.original_seq}  {letter.original_subject}"
                  f"\n          {letter.error}")
        print(f"{len(letters)} dead letter(s)")
        if args.command == "replay" and not args.dry_run:
            print(f"replayed {await replay(js, letters, keep=args.keep)}")
    finally:
        await nc.close()
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "patchbay dead-letters") -> int:
    """Command line entry point."""
    cli = argparse.ArgumentParser(prog=prog, description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("command", choices=["list", "replay"])
    cli.add_argument("--consumer", help="the consumer (dlq.<consumer>) or one partition's durable "
                     "(<consumer>-p<k>), as `list` shows them; replay requires it")
    cli.add_argument("--dry-run", action="store_true", help="replay: only list what would be replayed")
    cli.add_argument("--keep", action="store_true", help="replay: keep the dead letters afterwards")
    args = cli.parse_args(argv)
    if args.command == "replay" and not args.consumer:
        cli.error("replay needs --consumer (replay one consumer's dead letters at a time)")
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
