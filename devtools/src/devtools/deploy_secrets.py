"""The secrets deploy/ needs for NATS, made once: `python -m devtools.deploy_secrets deploy/secrets`.

Writes (nothing already there is replaced, so running it again only adds what is missing):
- `credentials/<identity>.nk`: one nkey seed per identity of shared.bus_identities (0600);
- `nats/auth.conf`: the servers' authorization block (public keys and permissions only);
- `nats/ca.pem` (+ `ca-key.pem`, keep it offline): a CA for the NATS servers;
- `nats/server.pem` + `server-key.pem`: the servers' certificate, for client TLS and for the
  routes between them (mutual TLS: each node presents it and checks the other's), valid for the
  compose and Kubernetes names of the nodes;
- `postgres/<service>`: the password of each service's PostgreSQL role (deploy/postgres/roles.sh
  makes the roles; each service connects as its own).
Then compose mounts them from deploy/secrets/ (git-ignored); for Kubernetes, create the Secrets
with the kubectl commands printed at the end (docs/security.md).
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from shared.bus_credentials import AUTH_FILE, PUBLIC_KEYS, authorization_block, ensure_credentials
from shared.bus_identities import IDENTITIES
from shared.bus_signing import TRUSTED

from devtools.db_roles import SERVICE_SCHEMAS

NAMESPACE = "patchbay"
NODES = 3
VALID_DAYS = 825


def server_names(namespace: str = NAMESPACE, nodes: int = NODES) -> list[str]:
    """Every name a client or a route reaches a node by: compose's and Kubernetes'."""
    names = ["localhost", "nats", f"nats.{namespace}.svc", f"nats.{namespace}.svc.cluster.local"]
    for i in range(nodes):
        names += [f"nats-{i + 1}",  # compose
                  f"nats-{i}.nats-headless", f"nats-{i}.nats-headless.{namespace}.svc",
                  f"nats-{i}.nats-headless.{namespace}.svc.cluster.local"]
    return names


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Patchbay"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_certificates(out: Path, names: Sequence[str]) -> None:
    """A CA and the servers' certificate (server and client use: client TLS and route mTLS)."""
    if (out / "server.pem").exists():
        return
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Patchbay NATS CA")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=VALID_DAYS * 4))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(
              digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
              key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
              decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (x509.CertificateBuilder().subject_name(_name("nats")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write(out / "ca-key.pem", _key_pem(ca_key), 0o600)
    _write(out / "ca.pem", ca.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(out / "server-key.pem", _key_pem(key), 0o600)
    _write(out / "server.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)


def make(base: Path, namespace: str = NAMESPACE) -> None:
    """Credentials, the auth block and the certificates under base."""
    nats_dir = base / "nats"
    nats_dir.mkdir(parents=True, exist_ok=True)
    keys = ensure_credentials(base / "credentials")
    (nats_dir / AUTH_FILE).write_text(authorization_block(keys))
    make_certificates(nats_dir, server_names(namespace))
    make_role_passwords(base / "postgres")


def make_role_passwords(out: Path) -> dict[str, str]:
    """One password per service role (0600), made once; returns role -> password."""
    out.mkdir(parents=True, exist_ok=True)
    passwords = {}
    for role in SERVICE_SCHEMAS:
        path = out / role
        if not path.exists():
            _write(path, secrets.token_urlsafe(24).encode(), 0o600)
        passwords[role] = path.read_text().strip()
    return passwords


def database_url(role: str, password: str, host: str = "postgres") -> str:
    """A service's own database URL."""
    return f"postgresql://{role}:{password}@{host}:5432/patchbay"


def command_signers(base: Path) -> str:
    """PATCHBAY_NATS_COMMAND_SIGNERS: the public keys that may vouch for a command's actor."""
    keys = json.loads((base / "credentials" / PUBLIC_KEYS).read_text())
    return ",".join(keys[name] for name in TRUSTED)


def service_keys(base: Path) -> str:
    """PATCHBAY_NATS_SERVICE_KEYS: each identity's public key, so commands carry an HMAC (ADR 21)."""
    keys = json.loads((base / "credentials" / PUBLIC_KEYS).read_text())
    return ",".join(f"{name}={key}" for name, key in keys.items())


def kubectl_commands(base: Path, namespace: str = NAMESPACE) -> list[str]:
    """The Secrets of deploy/kubernetes, from what `make` wrote."""
    n = f"kubectl -n {namespace} create secret generic"
    nats_dir = base / "nats"
    out = [f"{n} nats-auth --from-file={nats_dir / AUTH_FILE}",
           f"{n} nats-tls --from-file={nats_dir / 'ca.pem'} --from-file={nats_dir / 'server.pem'}"
           f" --from-file={nats_dir / 'server-key.pem'}",
           f"{n} nats-ca --from-file={nats_dir / 'ca.pem'}"]
    out.append(f"kubectl -n {namespace} create configmap nats-signers"
               f" --from-literal=PATCHBAY_NATS_COMMAND_SIGNERS={command_signers(base)}"
               f" --from-literal=PATCHBAY_NATS_SERVICE_KEYS={service_keys(base)}")
    out.append(f"{n} postgres-roles --from-file={base / 'postgres'}")
    out += [f"{n} patchbay-db-{role} --from-literal=PATCHBAY_DATABASE_URL={database_url(role, pw)}"
            for role, pw in make_role_passwords(base / "postgres").items()]
    seeds = base / "credentials"
    out += [f"{n} nats-seed-{name} --from-file=nats.nk={seeds / f'{name}.nk'}" for name in IDENTITIES]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    cli = argparse.ArgumentParser(prog="python -m devtools.deploy_secrets", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("dir", type=Path, nargs="?", default=Path("deploy/secrets"))
    cli.add_argument("--namespace", default=NAMESPACE)
    args = cli.parse_args(argv)
    make(args.dir, args.namespace)
    print(f"NATS secrets in {args.dir} (never commit them). For compose, in deploy/.env:")
    print(f"PATCHBAY_NATS_COMMAND_SIGNERS={command_signers(args.dir)}")
    print(f"PATCHBAY_NATS_SERVICE_KEYS={service_keys(args.dir)}")
    for role, password in make_role_passwords(args.dir / "postgres").items():
        print(f"{role.upper()}_DB_PASSWORD={password}")
    print("For Kubernetes:")
    print("\n".join(kubectl_commands(args.dir, args.namespace)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
