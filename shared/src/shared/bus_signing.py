"""Who vouches for a command's actor: the sender signs it with its nkey, the service checks.

A permission says who may publish `<service>.cmd.>` (the gateway; alerts its one status change),
but not that the actor in the body is the operator whose token the gateway checked. So a command
that names an operator or portal actor, or a portal caller, must carry a signature by a trusted
signer (the gateway; the provisioner: the operator's tools and tests) over its subject, a
timestamp and its body:

    Patchbay-Signer: <public key>   Patchbay-Signed-At: <unix s>   Patchbay-Signature: <ed25519>

`SigningClient` (what `shared.bus` connects with) signs every `.cmd.` request when it has a seed;
`CommandCheck` (in `shared.rpc`) refuses an unsigned, forged, stale or untrusted one with a
`forbidden` error reply.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from typing import Any

import orjson
import structlog
from nats.aio.client import Client as NatsClient

from shared.bus_credentials import PUBLIC_KEYS, public_key, sign, verify

log = structlog.get_logger(__name__)

SIGNER = "Patchbay-Signer"
SIGNED_AT = "Patchbay-Signed-At"
SIGNATURE = "Patchbay-Signature"
MAX_AGE_S = 300.0  # a signed command older (or newer) than this is refused: clocks within 5 minutes
TRUSTED = ("gateway", "provisioner")


def is_command(subject: str) -> bool:
    """`<service>.cmd.<name>`: the subjects whose actor must be vouched for."""
    return ".cmd." in subject


def signed_bytes(subject: str, signed_at: str, payload: bytes) -> bytes:
    """What the signature covers: subject, time and the body's digest."""
    return f"{subject}\n{signed_at}\n".encode() + hashlib.sha256(payload).digest()


def signature_headers(seed: str, subject: str, payload: bytes, now: float | None = None) -> dict[str, str]:
    """The three headers that vouch for a command."""
    signed_at = str(int(now if now is not None else time.time()))
    return {SIGNER: public_key(seed), SIGNED_AT: signed_at,
            SIGNATURE: sign(seed, signed_bytes(subject, signed_at, payload))}


class SigningClient(NatsClient):
    """A nats-py client that signs each command request it sends with its identity's seed."""

    signing_seed: str | None = None

    async def request(self, subject: str, payload: bytes = b"", timeout: float = 0.5,  # noqa: ASYNC109 (nats-py's)
                      old_style: bool = False, headers: dict[str, Any] | None = None) -> Any:
        """nats-py's request, with the signature headers on a command."""
        if self.signing_seed and is_command(subject):
            headers = {**(headers or {}), **signature_headers(self.signing_seed, subject, payload)}
        return await super().request(subject, payload, timeout=timeout, old_style=old_style, headers=headers)


VOUCHED_KINDS = ("operator", "portal")


def names_an_actor(payload: bytes) -> bool:
    """True when a command body names a person who acts (an operator or portal actor, a portal
    caller): only a trusted signer may say so. The system acting (`kind: system`, the default) is
    not a person's claim: a service allowed to send the command may send it unsigned."""
    if b'"actor"' not in payload and b'"caller"' not in payload:
        return False  # the common case: one scan, no parse
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False  # not JSON: the route answers a validation error
    if not isinstance(body, dict):
        return False
    if body.get("caller") is not None:
        return True
    meta = body.get("meta")
    actor = meta.get("actor") if isinstance(meta, dict) else None
    return isinstance(actor, dict) and actor.get("kind", "system") in VOUCHED_KINDS


class CommandCheck:
    """Checks a command's signature against the trusted signers' public keys."""

    def __init__(self, trusted: set[str]) -> None:
        self.trusted = trusted
        if not trusted:
            log.warning("no_command_signers", effect="every command naming an actor is refused",
                        hint="PATCHBAY_NATS_COMMAND_SIGNERS, or public_keys.json in the credentials dir")

    def refusal(self, subject: str, payload: bytes, headers: dict[str, str] | None,
                now: float | None = None) -> str | None:
        """Why this command may not run (None: it may)."""
        if not is_command(subject) or not names_an_actor(payload):
            return None
        headers = headers or {}
        signer, signed_at, signature = headers.get(SIGNER), headers.get(SIGNED_AT), headers.get(SIGNATURE)
        if not (signer and signed_at and signature):
            return "a command naming an operator or portal actor must be signed by the gateway"
        if signer not in self.trusted:
            return "the command's signer is not trusted"
        try:
            age = abs((now if now is not None else time.time()) - float(signed_at))
        except ValueError:
            return "the command's signature time is not a number"
        if age > MAX_AGE_S:
            return "the command's signature is too old"
        if not verify(signer, signed_bytes(subject, signed_at, payload), signature):
            return "the command's signature does not match it"
        return None


@functools.cache
def command_check() -> CommandCheck:
    """The check this process applies: PATCHBAY_NATS_COMMAND_SIGNERS, else the credentials dir's keys."""
    from shared.bus import BusSettings

    settings = BusSettings()
    if settings.nats_command_signers:
        return CommandCheck({k.strip() for k in settings.nats_command_signers.split(",") if k.strip()})
    path = settings.credentials_dir() / PUBLIC_KEYS
    try:
        keys = json.loads(path.read_text())
    except (OSError, ValueError):
        return CommandCheck(set())
    return CommandCheck({keys[name] for name in TRUSTED if name in keys})
