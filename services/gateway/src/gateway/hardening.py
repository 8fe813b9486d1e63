"""The gateway's outer layer against attack: the client's real address, and security headers."""

from __future__ import annotations

from fastapi import FastAPI

from gateway.client_ip import TrustedProxies, parse_networks
from gateway.settings import GatewaySettings


def install_hardening(app: FastAPI, settings: GatewaySettings) -> None:
    """Add the middlewares (the last added runs first)."""
    app.add_middleware(TrustedProxies, proxies=parse_networks(settings.trusted_proxies))
