"""Hypothesis profiles: a quick one for `make test`, a deep one for `make fuzz`.

PATCHBAY_HYPOTHESIS_PROFILE picks one (`quick` by default, `deep` in `make fuzz`); tests say
what they check, not how many examples, so one setting scales every property.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("quick", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("deep", max_examples=2_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])


def pytest_configure() -> None:
    """Load the chosen profile before any test runs."""
    settings.load_profile(os.environ.get("PATCHBAY_HYPOTHESIS_PROFILE", "quick"))
