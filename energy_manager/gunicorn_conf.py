"""Gunicorn settings of the web role (`gunicorn -c energy_manager/gunicorn_conf.py ...`).

Each gunicorn worker is its own process: for one scrape of /metrics to count the requests of
all of them, prometheus_client runs in multiprocess mode with a directory of its own, emptied
at start (PROMETHEUS_MULTIPROC_DIR; a fresh temporary directory when unset).
"""
from __future__ import annotations

import os
import shutil
import tempfile

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="hems-prometheus-")


def on_starting(server) -> None:
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


# gunicorn's control socket has one default path per user: several web roles on one host
# (or a test beside a running server) would take it from each other.
control_socket_disable = True
