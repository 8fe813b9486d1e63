"""NATS credentials: one nkey seed per identity, and the server's authorization block from the table.

The seeds live in a credentials dir (`<data dir>/credentials/<identity>.nk`, mode 0600, the dir
0700), made on first start; the server config holds public keys only. For servers run elsewhere
(deploy/), `python -m shared.bus_credentials make <dir>` writes the seeds and `auth.conf`:

    python -m shared.bus_credentials make deploy/nats/credentials   # seeds + auth.conf
    python -m shared.bus_credentials auth <dir>                     # print auth.conf again
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import nacl.public
import nacl.signing
import nkeys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.bus_identities import IDENTITIES, Identity

SEED_SUFFIX = ".nk"
AUTH_FILE = "auth.conf"
PUBLIC_KEYS = "public_keys.json"


def new_seed() -> str:
    """A fresh user nkey seed (`SU...`)."""
    raw = bytes(nacl.signing.SigningKey.generate())
    return str(nkeys.encode_seed(raw, nkeys.PREFIX_BYTE_USER).decode())


@functools.lru_cache(maxsize=64)
def _key_pair(seed: str) -> nkeys.KeyPair:
    """The key pair of a seed, made once (deriving it costs more than a signature)."""
    return nkeys.from_seed(seed.encode())


def public_key(seed: str) -> str:
    """The public key (`U...`) of a user seed."""
    return str(_key_pair(seed.strip()).public_key.decode())


def sign(seed: str, data: bytes) -> str:
    """An ed25519 signature of data with the seed's key, base64url without padding."""
    signature = _key_pair(seed.strip()).sign(data)
    return base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


@functools.lru_cache(maxsize=64)
def _verify_key(public: str) -> nacl.signing.VerifyKey:
    return nacl.signing.VerifyKey(base64.b32decode(public.encode())[1:-2])


def verify(public: str, data: bytes, signature: str) -> bool:
    """True when signature (from `sign`) is data signed by the key whose public key is given."""
    try:
        sig = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        _verify_key(public).verify(data, sig)
    except Exception:
        return False
    return True


@functools.lru_cache(maxsize=64)
def pair_key(seed: str, peer_public: str) -> bytes:
    """A key only this seed's holder and the peer's share: X25519 of the two nkeys, then HKDF.

    Both ends compute the same key (own secret with the other's public key), so a command can be
    vouched for with an HMAC instead of an ed25519 signature (ADR 21); made once per pair.
    """
    own = nacl.signing.SigningKey(nkeys.decode_seed(seed.strip().encode())[1]).to_curve25519_private_key()
    peer = _verify_key(peer_public).to_curve25519_public_key()
    shared = nacl.public.Box(own, peer).shared_key()
    publics = sorted([public_key(seed), peer_public])
    info = b"patchbay command mac v1\n" + "\n".join(publics).encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def seed_path(credentials_dir: Path, identity: str) -> Path:
    """Where an identity's seed is kept in a credentials dir."""
    return credentials_dir / f"{identity}{SEED_SUFFIX}"


def ensure_credentials(credentials_dir: Path) -> dict[str, str]:
    """Make each identity's seed once (0600, the dir 0700); return identity -> public key."""
    credentials_dir.mkdir(parents=True, exist_ok=True)
    credentials_dir.chmod(0o700)
    keys: dict[str, str] = {}
    for name in IDENTITIES:
        path = seed_path(credentials_dir, name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            keys[name] = public_key(path.read_text())
            continue
        seed = new_seed()
        with os.fdopen(fd, "w") as out:
            out.write(seed + "\n")
        keys[name] = public_key(seed)
    public = credentials_dir / PUBLIC_KEYS  # who is who, for checking signatures: no secret in it
    public.write_text(json.dumps(keys, indent=2) + "\n")
    public.chmod(0o644)
    return keys


def _permissions(ident: Identity) -> str:
    """One user's permissions, in nats-server config syntax (every subject quoted: `$` is special)."""
    def subjects(items: list[str]) -> str:
        return ", ".join(json.dumps(s) for s in items)

    lines = [f"      publish: {{ allow: [{subjects(ident.publish_allow())}] }}",
             f"      subscribe: {{ allow: [{subjects(ident.subscribe_allow())}] }}"]
    if ident.allow_responses:
        lines.append("      allow_responses: true")
    return "\n".join(lines)


def authorization_block(keys: dict[str, str]) -> str:
    """The server's `authorization {}` block: each identity's public key and permissions."""
    users = []
    for name, ident in IDENTITIES.items():
        users.append(f"    # {name}: {ident.description}\n"
                     f"    {{ nkey: {json.dumps(keys[name])}\n"
                     f"      permissions: {{\n{_permissions(ident)}\n      }}\n    }}")
    return "authorization {\n  timeout: 5\n  users: [\n" + "\n".join(users) + "\n  ]\n}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: make credentials and the auth block for servers run elsewhere."""
    cli = argparse.ArgumentParser(prog="python -m shared.bus_credentials", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("command", choices=["make", "auth"])
    cli.add_argument("dir", type=Path, help="the credentials dir (seeds <identity>.nk)")
    args = cli.parse_args(argv)
    keys = ensure_credentials(args.dir)
    block = authorization_block(keys)
    if args.command == "make":
        (args.dir / AUTH_FILE).write_text(block)
        print(f"seeds and {AUTH_FILE} in {args.dir} (keep the seeds secret; {AUTH_FILE} is public keys only)")
    else:
        print(block, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
