"""`python -m gateway.bulk_cli FILE`: upload customers from a CSV or JSON file, with a progress bar.

The file is streamed to `POST /v1/customers/bulk` in 64 KiB pieces; the bar follows the bytes
sent (the gateway validates rows as they arrive), then waits for the commit. The summary is
printed, the first failed rows with their columns, and with `--results` every row's result
is written to a JSON file. Exit status: 0 when every row was created, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

PIECE = 64 * 1024
TYPES = {".csv": "text/csv", ".json": "application/json", ".ndjson": "application/x-ndjson",
         ".jsonl": "application/x-ndjson"}


def _pieces(path: Path, bar: tqdm) -> Iterator[bytes]:
    with path.open("rb") as f:
        while piece := f.read(PIECE):
            bar.update(len(piece))
            yield piece
    bar.set_postfix_str("committing")


def upload(args: argparse.Namespace) -> dict[str, Any]:
    """Send the file; the parsed answer (summary and per-row results)."""
    path = Path(args.file)
    kind = TYPES.get(path.suffix.lower())
    if kind is None:
        raise SystemExit(f"{path}: name it .csv, .json or .ndjson")
    headers = {"Authorization": f"Bearer {args.token}", "Content-Type": kind,
               "Idempotency-Key": args.idempotency_key or str(uuid.uuid4())}
    params = {"mode": args.mode, "results": "errors" if args.errors_only else "all"}
    timeout = httpx.Timeout(args.timeout, connect=10)
    with tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=path.name,
              disable=args.quiet) as bar, httpx.Client(base_url=args.url, timeout=timeout) as client:
        reply = client.post("/v1/customers/bulk", params=params, headers=headers, content=_pieces(path, bar))
    try:
        answer: dict[str, Any] = reply.json()
    except ValueError:
        raise SystemExit(f"HTTP {reply.status_code}: {reply.text[:500]}") from None
    if "results" not in answer:  # refused as a whole (bad header, auth, too large...)
        error = answer.get("error", {})
        details = "; ".join(f"{d.get('field')}: {d.get('message')}" for d in error.get("details", [])[:5])
        raise SystemExit(f"HTTP {reply.status_code} {error.get('code')}: {error.get('message')} {details}")
    return answer


def report(answer: dict[str, Any], show: int) -> None:
    """Print the summary and the first failed rows."""
    print(f"upload {answer['upload_id']} ({answer['mode']}): {answer['state']}, {answer['total']} rows,"
          f" {answer['created']} created, {answer['failed']} failed")
    failed = [r for r in answer["results"] if r["errors"]]
    for result in failed[:show]:
        where = f"row {result['row']}" + (f" (line {result['line']})" if result.get("line") else "")
        for error in result["errors"]:
            print(f"  {where}: {error['field'] or '-'}: {error['message']}")
    if len(failed) > show:
        print(f"  ... and {len(failed) - show} more rows with errors")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, upload, report."""
    parser = argparse.ArgumentParser(prog="python -m gateway.bulk_cli", description=__doc__.splitlines()[0])
    parser.add_argument("file", help="a .csv, .json (array) or .ndjson file")
    parser.add_argument("--url", default=os.environ.get("PATCHBAY_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("PATCHBAY_TOKEN"),
                        help="an operator or admin token (default: $PATCHBAY_TOKEN)")
    parser.add_argument("--mode", choices=["all_or_nothing", "best_effort"], default="all_or_nothing")
    parser.add_argument("--results", type=Path, help="write every row's result to this JSON file")
    parser.add_argument("--errors-only", action="store_true", help="ask only for failed rows' results")
    parser.add_argument("--idempotency-key", help="reuse to retry an upload safely (default: a new one)")
    parser.add_argument("--show", type=int, default=20, help="failed rows to print")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("give --token or set PATCHBAY_TOKEN")
    answer = upload(args)
    report(answer, args.show)
    if args.results:
        args.results.write_text(json.dumps(answer["results"], indent=1))
        print(f"results written to {args.results}")
    return 0 if answer["created"] == answer["total"] else 1


if __name__ == "__main__":
    sys.exit(main())
