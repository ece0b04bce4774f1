"""Settings for the whole suite."""

from hypothesis import settings

# These machines are shared and noisy: Hypothesis's per-example time limit measures the neighbours, not the code.
settings.register_profile("keyreport", deadline=None)
settings.load_profile("keyreport")
