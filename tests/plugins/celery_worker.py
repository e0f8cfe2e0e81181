"""Real Celery worker processes for tests.

    @pytest.mark.django_db(transaction=True)
    def test_x(celery_worker):
        worker = celery_worker(queues=["optimization", "default"], concurrency=1)
        ...                      # the test process now sends tasks to TEST_REDIS_URL
        worker.kill()            # kill -9 the whole worker (main process and pool)
        worker.kill_pool_process()  # kill -9 one pool process; the main process replaces it
        worker.restart()
        celery_worker(..., command_prefix=host.prefix, env={...})  # on another host (tests.plugins.netns)

Each worker is a `celery -A energy_manager worker` subprocess pointed at the
pytest-django test database and at TEST_REDIS_URL (one Redis db per suite run).
Queues are purged before the first worker starts; every worker is killed on
teardown. `worker.log()` returns its output for assertion messages.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable, Optional
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60.0


def broker_url() -> str:
    return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def database_url() -> str:
    """URL of the database Django uses now (the test database once pytest-django created it)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    auth = quote(db.get("USER") or "postgres")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def purge_queues(queues: Iterable[str], url: Optional[str] = None) -> None:
    """Drop waiting and unacknowledged messages of `queues` (and the transport's unacked index)."""
    import redis

    r = redis.Redis.from_url(url or broker_url())
    keys = ["unacked", "unacked_index", "unacked_mutex"]
    for q in queues:
        keys += [k for k in r.scan_iter(match=f"{q}*")]
    if keys:
        r.delete(*keys)
    r.close()


def use_broker(url: str) -> Callable[[], None]:
    """Point this process's Celery app at `url` (not eager); returns a function that undoes it."""
    from energy_manager.celery import app

    before = {"broker_url": app.conf.broker_url, "task_always_eager": app.conf.task_always_eager}

    def reset_pools() -> None:
        from kombu import pools

        pools.reset()  # kombu's global producer pools are keyed by connection: drop them all
        app._pool = None
        app.amqp._producer_pool = None

    reset_pools()
    app.conf.update(broker_url=url, task_always_eager=False)

    def undo() -> None:
        reset_pools()
        app.conf.update(**before)

    return undo


class CeleryWorker:
    """One `celery worker` subprocess (its own process group, so kill reaches the pool too)."""

    def __init__(self, queues: list[str], concurrency: int = 1, pool: str = "prefork",
                 env: Optional[dict] = None, name: str = "test", broker: Optional[str] = None,
                 command_prefix: Optional[list[str]] = None):
        """`broker` is where this process reaches the worker (ping); `env` may point the worker itself
        elsewhere (CELERY_BROKER_URL, DATABASE_URL), e.g. over the link of a `command_prefix` host."""
        self.command_prefix = list(command_prefix or [])
        self.queues = list(queues)
        self.concurrency = concurrency
        self.pool = pool
        self.broker = broker or broker_url()
        self.name = name
        self.hostname = f"{name}-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
        self.env = {**os.environ, "DJANGO_ENV": "test", "DATABASE_URL": database_url(),
                    "CELERY_BROKER_URL": self.broker, "CONN_MAX_AGE": "0", "PYTHONUNBUFFERED": "1",
                    **(env or {})}
        self.proc: Optional[subprocess.Popen] = None
        self._log = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)

    # -- lifecycle -----------------------------------------------------------------
    def start(self, timeout: float = READY_TIMEOUT_S) -> "CeleryWorker":
        cmd = [*self.command_prefix, sys.executable, "-m", "celery", "-A", "energy_manager", "worker", "-Q", ",".join(self.queues),
               "-c", str(self.concurrency), "-P", self.pool, "-n", self.hostname, "--prefetch-multiplier", "1",
               "--without-gossip", "--without-mingle", "-l", "INFO"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Ping the worker through the broker until it answers (or fail with its log)."""
        from energy_manager.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"Celery worker exited with {self.proc and self.proc.returncode}:\n{self.log()}")
            with app.connection_for_write(self.broker) as conn:
                replies = app.control.ping(destination=[self.hostname], timeout=0.5, connection=conn)
            if any(self.hostname in r for r in replies):
                return
        self.kill()
        raise RuntimeError(f"Celery worker {self.hostname} not ready after {timeout} s:\n{self.log()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the whole worker (main process and pool) at once: nothing gets to clean up."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 15.0) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        except ProcessLookupError:
            pass
        finally:
            self._reap_group()

    def restart(self, timeout: float = READY_TIMEOUT_S) -> "CeleryWorker":
        self.kill()
        self.hostname = f"{self.name}-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
        return self.start(timeout)

    def _reap_group(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # pool processes orphaned by a dead parent
        except (ProcessLookupError, PermissionError, AttributeError):
            pass

    # -- pool processes ----------------------------------------------------------------
    def pool_pids(self) -> list[int]:
        """The pool (child) processes of the worker's main process."""
        if self.proc is None:
            return []
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except FileNotFoundError:
            return []

    def kill_pool_process(self, pid: Optional[int] = None) -> int:
        """kill -9 one pool process (the one solving, with concurrency 1); returns its pid."""
        pids = self.pool_pids()
        target = pid or (pids[0] if pids else None)
        if target is None:
            raise RuntimeError("The worker has no pool process")
        os.kill(target, signal.SIGKILL)
        return target

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")[-20000:]

    def __enter__(self) -> "CeleryWorker":
        return self if self.alive else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@pytest.fixture
def celery_worker(request, django_db_setup, django_db_blocker):
    """Factory: `celery_worker(queues=[...], concurrency=1, pool="prefork", env={...})` -> running worker.

    Needs `@pytest.mark.django_db(transaction=True)` on the test: the worker is another
    process and only sees committed rows.
    """
    workers: list[CeleryWorker] = []
    undo: list[Callable[[], None]] = []

    def start(queues: list[str] = ("optimization", "default"), concurrency: int = 1, **kwargs) -> CeleryWorker:
        worker = CeleryWorker(list(queues), concurrency, **kwargs)
        if not workers:
            purge_queues(["optimization", "default", "hub", *queues], worker.broker)
            from energy_manager.celery import app

            # A test that pointed the app at its own broker (use_broker) undoes that itself: capturing it
            # here would restore the test's broker after the test's undo ran, leaking it to later tests.
            if app.conf.broker_url != worker.broker:
                undo.append(use_broker(worker.broker))
        workers.append(worker)
        return worker.start()

    def finish() -> None:
        for worker in workers:
            worker.kill()
            worker._reap_group()
        for fn in undo:
            fn()
        if workers:
            import redis

            try:
                purge_queues(["optimization", "default", "hub"], workers[0].broker)
            except redis.ConnectionError:
                pass  # a broker the test started itself may already be gone

    request.addfinalizer(finish)
    return start
