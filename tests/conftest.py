"""Shared test plumbing. Services are required, never skipped: a missing one fails loudly."""
import os

from hypothesis import settings

# `make test` (and so CI) replays the same examples every time, in every test module: a red run is a
# real regression, never a new random draw. Plain local runs keep exploring.
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

pytest_plugins = [
    "tests.plugins.services",
    "tests.plugins.api",
    "tests.plugins.celery_worker",
    "tests.plugins.mqtt",
    "tests.plugins.netns",
]
