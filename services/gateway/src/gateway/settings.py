"""Settings of the gateway, from `PATCHBAY_*` environment variables."""

from __future__ import annotations

from pydantic import SecretStr
from shared.settings import CommonSettings


class GatewaySettings(CommonSettings):
    """Where to listen, the first admin token, and the gateway's own limits."""

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    admin_token: SecretStr | None = None
    db_pool_size: int = 5
    token_cache_ttl_s: float = 5.0
    ready_timeout_s: float = 1.0
    max_body_bytes: int = 1024 * 1024
