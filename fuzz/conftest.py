"""Hypothesis profiles for the fuzz suites: `ci` (the default, a short slice) and `deep`
(WIREPROXY_SLOW=1 or `pytest --hypothesis-profile deep`)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("deep", max_examples=20_000, deadline=None,
                          suppress_health_check=list(HealthCheck))
settings.load_profile("deep" if os.environ.get("WIREPROXY_SLOW") else "ci")
