"""`patchbay <command>`: every operator tool behind one entry point, pointed at the running stack.

Where the stack is (see `shared.stack_file`): `--nats-url` / `--database-url`, else
`PATCHBAY_NATS_URL` / `PATCHBAY_DATABASE_URL`, else the stack file of `--data-dir` (else
`PATCHBAY_DATA_DIR`, else `.patchbay`) that `make run` writes, else the defaults. A tool that
cannot reach a server says which URL it tried, where that URL came from, and how to set another.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from shared.stack_file import Located, locate, redact
from shared.unavailable import unavailable_reason

EXIT_UNREACHABLE = 3


def _where(located: Located, _: list[str]) -> int:
    print(f"data dir:   {located.data_dir.resolve()}")
    print(f"NATS:       {located.nats_url}  (from {located.nats_from})")
    print(f"PostgreSQL: {redact(located.database_url)}  (from {located.database_from})")
    for key in ("http", "nats_monitoring", "nats_credentials", "metrics"):
        if located.info.get(key):
            print(f"{key + ':':<12}{located.info[key]}")
    return 0


def _rebuild(_: Located, argv: list[str]) -> int:
    """Reporting's projections, or the customer service's ledger (`ledger`); `all`: both."""
    if argv[:1] == ["ledger"]:
        from customer.ledger_rebuild_cli import main as ledger

        return int(ledger(argv[1:]))
    from reporting.rebuild_cli import main

    code = int(main(argv, prog="patchbay rebuild"))
    if code == 0 and argv[:1] == ["all"]:
        from customer.ledger_rebuild_cli import main as ledger

        shared = [a for a in argv[1:] if a in ("--no-progress", "--allow-shrink")]
        if "--batch" in argv[:-1]:
            shared += ["--batch", argv[argv.index("--batch") + 1]]
        return int(ledger(shared))
    return code


def _dead_letters(_: Located, argv: list[str]) -> int:
    from shared.dead_letters import main

    return int(main(argv, prog="patchbay dead-letters"))


def _simulate(_: Located, argv: list[str]) -> int:
    import asyncio

    from reporting.simulator import main

    return int(asyncio.run(main(argv, prog="patchbay simulate")))


def _backup(located: Located, argv: list[str]) -> int:
    from patchbay_cli.backup import main

    return main(located, argv)


def _restore(located: Located, argv: list[str]) -> int:
    from patchbay_cli.restore import main

    return main(located, argv)


COMMANDS: dict[str, tuple[Callable[[Located, list[str]], int], str]] = {
    "where": (_where, "show the stack the tools talk to, and where each URL came from"),
    "rebuild": (_rebuild, "rebuild projections from the streams (audit|summaries|ledger|all)"),
    "dead-letters": (_dead_letters, "list or replay what consumers gave up on (list|replay)"),
    "simulate": (_simulate, "publish simulated calls to CALLS (live or a backlog)"),
    "backup": (_backup, "back up PostgreSQL, every stream, the secret key and settings into DIR"),
    "restore": (_restore, "restore a backup DIR onto fresh servers"),
}


def parser() -> argparse.ArgumentParser:
    """The global options and the command; the command's own options follow it."""
    cli = argparse.ArgumentParser(
        prog="patchbay", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {name:<14}{text}" for name, (_, text) in COMMANDS.items())
        + "\n\n`patchbay <command> --help` for a command's options.")
    cli.add_argument("--data-dir", type=Path,
                     help="the stack's data dir (default: PATCHBAY_DATA_DIR or .patchbay)")
    cli.add_argument("--nats-url", help="NATS URL, comma-separated for a cluster "
                     "(default: PATCHBAY_NATS_URL, else the data dir's running stack)")
    cli.add_argument("--database-url", help="PostgreSQL URL "
                     "(default: PATCHBAY_DATABASE_URL, else the data dir's running stack)")
    cli.add_argument("command", choices=list(COMMANDS), metavar="command")
    cli.add_argument("args", nargs=argparse.REMAINDER, help="the command's own arguments")
    return cli


def unreachable_message(exc: BaseException, located: Located) -> str | None:
    """What to tell the operator when `exc` says a server could not be reached, else None."""
    away = unavailable_reason(exc)
    if away is None and not isinstance(exc, OSError):
        return None
    text = str(exc) or type(exc).__name__
    if away == "NATS" or "nats" in type(exc).__module__:
        return f"cannot reach {located.nats_hint()}\n  ({text})"
    if away == "PostgreSQL" or "asyncpg" in type(exc).__module__:
        return f"cannot reach {located.database_hint()}\n  ({text})"
    return (f"cannot reach a server ({text}). Tried:\n  {located.nats_hint()}\n"
            f"  {located.database_hint()}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `patchbay` console script."""
    args = parser().parse_args(argv)
    located = locate(args.data_dir, args.nats_url, args.database_url)
    # every tool reads its settings from the environment: hand it the stack found here
    os.environ.update({"PATCHBAY_NATS_URL": located.nats_url, "PATCHBAY_DATABASE_URL": located.database_url,
                       "PATCHBAY_DATA_DIR": str(located.data_dir.resolve())})
    creds = located.info.get("nats_credentials")  # where the running stack keeps the NATS seeds
    if creds and not os.environ.get("PATCHBAY_NATS_CREDENTIALS_DIR"):
        os.environ["PATCHBAY_NATS_CREDENTIALS_DIR"] = str(creds)
    run, _ = COMMANDS[args.command]
    try:
        return run(located, list(args.args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = unreachable_message(exc, located)
        if message is None:
            raise
        print(f"patchbay {args.command}: {message}", file=sys.stderr)
        return EXIT_UNREACHABLE


if __name__ == "__main__":
    sys.exit(main())
