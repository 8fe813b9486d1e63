"""Settings of the gateway, from `PATCHBAY_*` environment variables."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, field_validator
from shared.settings import CommonSettings

from gateway.client_ip import parse_networks

ADMIN_TOKEN_MIN = 32  # a guessable bootstrap secret is an open door: refuse it at start


class GatewaySettings(CommonSettings):
    """Where to listen, the first admin token, and the gateway's own limits."""

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    admin_token: SecretStr | None = None
    db_pool_size: int = 5
    token_cache_ttl_s: float = 5.0
    ready_timeout_s: float = 1.0
    max_body_bytes: int = 1024 * 1024
    # bulk upload: its own body limit (read while spooling) and time for the commit
    bulk_max_body_bytes: int = 64 * 1024 * 1024
    bulk_commit_timeout_s: float = 600.0
    # the customer portal: session lifetime and key, and rate limits (attempts per window)
    portal_session_ttl_s: float = 900.0
    portal_session_key: SecretStr | None = None
    portal_login_per_email: int = 10
    portal_login_per_ip: int = 30
    portal_login_window_s: float = 300.0
    portal_code_entries_per_contact: int = 20
    portal_code_window_s: float = 300.0
    # sign-ups accepted per client address (IPv6: per /64) and window
    portal_signups_per_ip: int = Field(default=5, ge=1)
    portal_signup_window_s: float = 3600.0
    # password checks in flight at once (each costs a hash); past it a login is refused at once
    portal_login_concurrency: int = Field(default=16, ge=1)
    # proxies whose X-Forwarded-For / -Proto are believed: addresses or CIDR blocks, comma-separated
    trusted_proxies: str = ""
    # /docs (Swagger UI, served from the gateway itself); /openapi.json is served either way
    api_docs: bool = True

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_parse(cls, value: str) -> str:
        parse_networks(value)  # a typo is an error at start, not a silently ignored proxy
        return value

    @field_validator("admin_token", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # `PATCHBAY_ADMIN_TOKEN=` must not make the empty string an admin secret
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, SecretStr) and not value.get_secret_value().strip():
            return None
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and len(text.strip()) < ADMIN_TOKEN_MIN:
            raise ValueError(
                f"PATCHBAY_ADMIN_TOKEN must be at least {ADMIN_TOKEN_MIN} characters (make one with"
                ' `python -c "import secrets; print(secrets.token_urlsafe(32))"`), or unset it'
            )
        return value
