"""The notifier's own Prometheus metrics (served by shared.ops with the common ones)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DELIVERIES = Counter(
    "patchbay_notifier_deliveries_total", "Delivery attempts by outcome", ["channel", "outcome"]
)
SEND_SECONDS = Histogram(
    "patchbay_notifier_send_seconds",
    "Time to hand one message to the provider",
    ["channel"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0),
)
RECOVERED = Counter(
    "patchbay_notifier_recovered_claims_total", "Claims of dead instances settled", ["resolution"]
)
