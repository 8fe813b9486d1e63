"""Settings of the reporting service, from `PATCHBAY_*` environment variables."""

from __future__ import annotations

from pathlib import Path

from shared.settings import CommonSettings


class ReportingSettings(CommonSettings):
    """Pool size, consumer batches, and how long an unfinished call counts as live."""

    db_pool_size: int = 8
    consumer_batch: int = 2000
    # a call whose record never came stops counting as live after this long
    live_call_max_age_s: float = 4 * 3600.0
    # a message delivered but not acked (the process died) is delivered again after this
    consumer_ack_wait_s: float = 30.0
    # names of the durable consumers start with this (tests give each service its own)
    durable_prefix: str = "reporting"
    # how often the leader marks overdue invoices and issues scheduled ones
    billing_clock_interval_s: float = 60.0
    # a folder with the carrier's own invoice.html.j2 (else the built-in one is used)
    invoice_template_dir: Path | None = None
