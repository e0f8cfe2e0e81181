"""Optimizer tests: pure library, no Django, no services, no fixtures from the project's plugins.

Run them alone with
    .venv/bin/python -m pytest tests/optimizer -p no:django
(add `-p no:tests.plugins.api -p no:tests.plugins.services -p no:tests.plugins.celery_worker
-p no:tests.plugins.mqtt` if a project plugin needs Django settings at import time).
"""
