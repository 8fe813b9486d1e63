"""Settings shared by every service, from `PATCHBAY_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.partitions import owned_partitions


class CommonSettings(BaseSettings):
    """What every service needs: where NATS and PostgreSQL are, and how to log."""

    model_config = SettingsConfigDict(env_prefix="PATCHBAY_", extra="ignore")

    nats_url: str = "nats://127.0.0.1:4222"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/patchbay"
    data_dir: Path = Path(".patchbay")
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    request_timeout_s: float = 5.0
    # key for sealing secrets (see shared.secrets); the stack runner makes one per data dir
    secret_key: str | None = None
    # earlier secret keys, comma-separated: what they sealed still opens (shared.keys, rotation)
    secret_key_previous: str | None = None
    # where /metrics, /healthz and /readyz are served (None: not served)
    ops_port: int | None = None
    # replicas of one service share its consumers by customer partition (shared.partitions):
    # this process is replica `replica_index` of `replica_count` (a StatefulSet ordinal, say)
    replica_index: int = Field(default=0, ge=0)
    replica_count: int = Field(default=1, ge=1)
    # a replica reads the partitions of another that has been gone this long (0: never), and
    # hands them back when it returns (shared.consumer, "failover")
    partition_failover_s: float = Field(default=10.0, ge=0)
    # the gateway's address as people reach it, for links in e-mails (PATCHBAY_PUBLIC_URL);
    # unset: http://127.0.0.1:<PATCHBAY_HTTP_PORT>, the port the stack really serves HTTP on
    public_url: str | None = None
    http_port: int = 8000

    @model_validator(mode="after")
    def _replica_in_range(self) -> CommonSettings:
        owned_partitions(self.replica_index, self.replica_count)  # raises with what is wrong
        return self

    @property
    def partitions(self) -> list[int]:
        """The customer partitions this replica consumes."""
        return owned_partitions(self.replica_index, self.replica_count)

    @property
    def public_base(self) -> str:
        """PATCHBAY_PUBLIC_URL without a trailing slash, else the local HTTP address."""
        return (self.public_url or f"http://127.0.0.1:{self.http_port}").rstrip("/")

    @property
    def nats_servers(self) -> list[str]:
        """`nats_url` as the server list nats-py takes (a cluster: `nats://a,nats://b,...`)."""
        return nats_servers(self.nats_url)


def nats_servers(url: str) -> list[str]:
    """Split a comma-separated NATS URL list; nats-py reads a single string as one server."""
    return [part.strip() for part in url.split(",") if part.strip()]
