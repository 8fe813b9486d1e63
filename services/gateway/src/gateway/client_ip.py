"""The client's address: the peer, or X-Forwarded-For only when the peer is a trusted proxy.

`PATCHBAY_TRUSTED_PROXIES` lists the proxies (addresses or CIDR blocks, comma-separated). Without
it, X-Forwarded-For is ignored: any client could write one. With it, the forwarded hops are read
from the right and the first address that is not a trusted proxy is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
IPV6_BUCKET = 64  # one home or one server usually holds a whole /64


def parse_networks(text: str) -> tuple[Network, ...]:
    """`10.0.0.0/8, ::1` -> networks; raises ValueError naming the entry that is not one."""
    networks: list[Network] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"'{entry}' is not an IP address or CIDR block") from None
    return tuple(networks)


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: Address | None, proxies: tuple[Network, ...]) -> bool:
    return address is not None and any(address.version == n.version and address in n for n in proxies)


def resolve(peer: str, forwarded_for: Iterable[str], proxies: tuple[Network, ...]) -> str:
    """The client behind a chain of trusted proxies (the peer itself when it is not one)."""
    if not _trusted(_address(peer), proxies):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return peer  # a garbled hop: trust nothing it says
        if not _trusted(address, proxies):
            return str(address)
    return str(_address(hops[0])) if hops else peer


def rate_bucket(ip: str | None) -> str:
    """What a per-address limit counts by: an IPv4 address, or the /64 of an IPv6 one."""
    address = _address(ip or "")
    if address is None:
        return ip or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/{IPV6_BUCKET}", strict=False))
    return str(address)


class TrustedProxies:
    """ASGI: rewrites the scope's client (and scheme) from a trusted proxy's forwarding headers."""

    def __init__(self, app: ASGIApp, *, proxies: tuple[Network, ...]) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request as from the client the proxies name."""
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and self.proxies and client:
            headers = scope["headers"]
            forwarded = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for"]
            if _trusted(_address(client[0]), self.proxies):
                scope = dict(scope, client=(resolve(client[0], forwarded, self.proxies), client[1]))
                proto = [v.decode("latin-1").split(",")[-1].strip().lower()
                         for k, v in headers if k == b"x-forwarded-proto"]
                if proto and proto[-1] in ("http", "https"):
                    scope["scheme"] = proto[-1]
        await self.app(scope, receive, send)
