"""Who vouches for a command's actor: the sender signs it (or MACs it) with its nkey, the service checks.

A permission says who may publish `<service>.cmd.>` (the gateway; alerts its one status change),
but not that the actor in the body is the operator whose token the gateway checked. So a command
that names an operator or portal actor, or a portal caller, must carry a signature by a trusted
signer (the gateway; the provisioner: the operator's tools and tests) over its subject, a
timestamp and its body:

    Patchbay-Signer: <public key>   Patchbay-Signed-At: <unix s>   Patchbay-Signature: <ed25519>

or, when the sender knows the public key of the service the subject belongs to (ADR 21), instead
of the ed25519 signature an HMAC-SHA256 over the same bytes, keyed by what only the two hold
(`bus_credentials.pair_key`: X25519 of the sender's and the service's nkeys), ~50x cheaper to check:

    Patchbay-Signer: <public key>   Patchbay-Signed-At: <unix s>   Patchbay-Mac: <hmac-sha256>

`SigningClient` (what `shared.bus` connects with) vouches for every `.cmd.` request when it has a
seed; `CommandCheck` (in `shared.rpc`) refuses an unsigned, forged, stale or untrusted one with a
`forbidden` error reply.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
from typing import Any

import orjson
import structlog
from nats.aio.client import Client as NatsClient

from shared.bus_credentials import PUBLIC_KEYS, pair_key, public_key, sign, verify

log = structlog.get_logger(__name__)

SIGNER = "Patchbay-Signer"
SIGNED_AT = "Patchbay-Signed-At"
SIGNATURE = "Patchbay-Signature"
MAC = "Patchbay-Mac"
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


@functools.lru_cache(maxsize=64)
def _keyed(key: bytes) -> Any:
    """An HMAC-SHA256 keyed once, copied per message (a one-shot HMAC looks OpenSSL's MAC up each time)."""
    return hmac.new(key, digestmod="sha256")


def mac(key: bytes, subject: str, signed_at: str, payload: bytes) -> str:
    """The HMAC-SHA256 of what a signature covers, base64url without padding."""
    keyed = _keyed(key).copy()
    keyed.update(signed_bytes(subject, signed_at, payload))
    return base64.urlsafe_b64encode(keyed.digest()).rstrip(b"=").decode()


def mac_headers(seed: str, service_public: str, subject: str, payload: bytes,
                now: float | None = None) -> dict[str, str]:
    """The three headers that vouch for a command to the service whose public key is given."""
    signed_at = str(int(now if now is not None else time.time()))
    return {SIGNER: public_key(seed), SIGNED_AT: signed_at,
            MAC: mac(pair_key(seed, service_public), subject, signed_at, payload)}


@functools.cache
def service_keys() -> dict[str, str]:
    """Identity -> public key of the services a command can go to (empty: sign with ed25519)."""
    from shared.bus import BusSettings

    settings = BusSettings()
    if settings.nats_service_keys:
        pairs = (item.split("=", 1) for item in settings.nats_service_keys.split(",") if "=" in item)
        return {name.strip(): key.strip() for name, key in pairs}
    try:
        keys = json.loads((settings.credentials_dir() / PUBLIC_KEYS).read_text())
    except (OSError, ValueError):
        return {}
    return keys if isinstance(keys, dict) else {}


def command_headers(seed: str, subject: str, payload: bytes,
                    keys: dict[str, str] | None = None) -> dict[str, str]:
    """An HMAC for the subject's service when its public key is known, else an ed25519 signature.

    `keys`: the services' public keys of the deployment this client talks to (default: this
    process's settings, `service_keys()`).
    """
    service = (service_keys() if keys is None else keys).get(subject.split(".", 1)[0])
    if service:
        return mac_headers(seed, service, subject, payload)
    return signature_headers(seed, subject, payload)


class SigningClient(NatsClient):
    """A nats-py client that signs each command request it sends with its identity's seed."""

    signing_seed: str | None = None
    service_public_keys: dict[str, str] | None = None  # None: this process's settings (service_keys)

    async def request(self, subject: str, payload: bytes = b"", timeout: float = 0.5,  # noqa: ASYNC109 (nats-py's)
                      old_style: bool = False, headers: dict[str, Any] | None = None) -> Any:
        """nats-py's request, with the signature headers on a command."""
        if self.signing_seed and is_command(subject):
            headers = {**(headers or {}),
                       **command_headers(self.signing_seed, subject, payload, self.service_public_keys)}
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
                now: float | None = None, own_seed: str | None = None) -> str | None:
        """Why this command may not run (None: it may); `own_seed`: the answering service's, for MACs."""
        if not is_command(subject) or not names_an_actor(payload):
            return None
        headers = headers or {}
        signer, signed_at, signature = headers.get(SIGNER), headers.get(SIGNED_AT), headers.get(SIGNATURE)
        tag = headers.get(MAC) if signature is None else None
        if not (signer and signed_at and (signature or tag)):
            return "a command naming an operator or portal actor must be signed by the gateway"
        if signer not in self.trusted:
            return "the command's signer is not trusted"
        try:
            age = abs((now if now is not None else time.time()) - float(signed_at))
        except ValueError:
            return "the command's signature time is not a number"
        if age > MAX_AGE_S:
            return "the command's signature is too old"
        if tag is not None:
            if not own_seed:
                return "this service has no key to check the command's MAC"
            try:
                key = pair_key(own_seed, signer)
            except Exception:
                return "the command's signer is not a public key"
            if not hmac.compare_digest(tag, mac(key, subject, signed_at, payload)):
                return "the command's signature does not match it"
            return None
        assert signature is not None
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
