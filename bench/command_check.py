"""What vouching for a command's actor costs, per command, in CPU: ed25519 against the HMAC (ADR 21).

    uv run python bench/command_check.py [--n 20000]

In-process, CPU time (`time.process_time`, so the figure holds on a busy machine): the service's
check (`CommandCheck.refusal`, as `shared.rpc` runs it) and the sender's headers, for a create
command as the gateway sends it; prints the HMAC's cost as a ratio of the signature's.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from shared.bus_credentials import new_seed, public_key
from shared.bus_signing import CommandCheck, mac_headers, signature_headers

SUBJECT = "customer.cmd.create"
PAYLOAD = json.dumps({
    "meta": {"command_id": "run-1-2", "actor": {"kind": "operator", "id": "bench", "name": "bench"}},
    "customer": {"name": "bench x 1-2", "currency": "EUR", "channels": 10, "tags": ["bench"]},
}).encode()


def cpu_us(fn: Callable[[], object], n: int) -> float:
    """CPU microseconds per call of fn."""
    started = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    gateway, customer = new_seed(), new_seed()
    check = CommandCheck({public_key(gateway)})
    schemes = {
        "ed25519 signature": lambda: signature_headers(gateway, SUBJECT, PAYLOAD),
        "HMAC, pair key (ADR 21)": lambda: mac_headers(gateway, public_key(customer), SUBJECT, PAYLOAD),
    }
    measured = {}
    for name, make in schemes.items():
        headers = make()
        assert check.refusal(SUBJECT, PAYLOAD, headers, own_seed=customer) is None
        checking = cpu_us(lambda h=headers: check.refusal(SUBJECT, PAYLOAD, h, own_seed=customer), args.n)
        sending = cpu_us(make, max(args.n // 4, 1))
        measured[name] = (checking, sending)
        print(f"{name:<26} service's check {checking:6.1f} µs   sender's headers {sending:6.1f} µs")
    (sig_check, sig_send), (mac_check, mac_send) = measured.values()
    print(f"\nHMAC / signature: check {mac_check / sig_check:.2f}, sender {mac_send / sig_send:.2f}")


if __name__ == "__main__":
    main()
