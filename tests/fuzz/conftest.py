"""Hypothesis settings for the parser fuzzers: 'ci' (default) keeps the whole fuzz run under two
minutes on a 2-core machine; FACEZOO_FUZZ=deep runs many more examples locally."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=150, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("deep", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("deep" if os.environ.get("FACEZOO_FUZZ") == "deep" else "ci")
