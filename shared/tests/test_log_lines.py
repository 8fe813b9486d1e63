"""Several processes logging into one pipe: every line is whole (one write per line)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

WRITERS = 4
LINES = 1500
CHILD = (
    "from shared.logging import configure_logging\n"
    "import sys\n"
    "log = configure_logging('writer-{n}', fmt='json')\n"
    "sys.stdin.read()\n"  # all start together, when the test closes their stdin
    "for i in range({lines}):\n"
    "    log.info('line', n={n}, i=i, pad='x' * 200)\n"
)


def test_lines_of_processes_sharing_a_pipe_never_interleave() -> None:
    env = os.environ | {"PYTHONUNBUFFERED": "1"}  # as `make run` and CI may run: every write goes out at once
    read, write = os.pipe()
    procs = [subprocess.Popen([sys.executable, "-c", CHILD.format(n=n, lines=LINES)], env=env,
                              stdin=subprocess.PIPE, stdout=write, stderr=write) for n in range(WRITERS)]
    os.close(write)
    for p in procs:
        assert p.stdin is not None
        p.stdin.close()
    with os.fdopen(read, "rb") as pipe:
        out = pipe.read().decode()
    assert all(p.wait(60) == 0 for p in procs)
    lines = [line for line in out.split("\n") if line]
    broken = [line for line in lines if not _is_json(line)]
    assert not broken, f"{len(broken)} of {len(lines)} lines interleaved, e.g. {broken[0][:300]}"
    assert len(lines) == WRITERS * LINES


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True
