"""Shared test plumbing. Services are required, never skipped: a missing one fails loudly."""
import os

pytest_plugins = [
    "tests.plugins.services",
    "tests.plugins.api",
    "tests.plugins.celery_worker",
    "tests.plugins.mqtt",
    "tests.plugins.netns",
]
