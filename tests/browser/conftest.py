"""A real browser (Debian's Chromium driven by Playwright) on a live server with the demo data."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Callable

import pytest
from django.core.management import call_command

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    """Playwright's sync API runs an event loop in the test's thread, so Django would refuse ORM calls there as
    "async unsafe"; the tests only use the database between page actions. Set for these tests only (and the
    browser lives for one test): neither the loop nor the variable may outlive them."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        raise pytest.UsageError(f"No Chromium at {CHROMIUM}: `make test` installs Debian's chromium "
                                "(scripts/ensure_browser.sh), or set CHROMIUM_PATH.")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def demo(transactional_db, settings):
    """`seed_demo` as `make run` runs it: the household, its plans, the offer and the activation.

    CP-SAT plans the demo household in about 2 s where `auto` (HiGHS) may need its whole time limit.
    """
    from devices.models import Home
    from flexibility.planning import services
    from tests.factories.homes import restore_default_tariffs

    restore_default_tariffs()  # an earlier transactional test flushed the rows the migration wrote
    settings.OPTIMIZER_BACKEND = "cpsat"
    call_command("seed_demo", stdout=open(os.devnull, "w"))
    home = Home.objects.get(name="Demo household")
    run, _ = services.submit_run(home)  # the plan the seed's own re-plans made (same input: the same run)
    run.refresh_from_db()
    assert run.status == "succeeded", (run.status, run.error)
    return home


class Page:
    """A page plus what the browser reported: console errors and uncaught exceptions."""

    def __init__(self, page, origin: str):
        self.page = page
        self.errors: list[str] = []
        self.elsewhere: list[str] = []  # requests to any other server: refused, as offline
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

        def elsewhere(route):
            self.elsewhere.append(route.request.url)
            route.abort()

        # Only requests to other servers are intercepted (the pattern is matched in the browser's driver):
        # routing this server's requests through Python too would add a round trip to every asset and
        # time the test harness rather than the page.
        page.route(re.compile(rf"^(?!{re.escape(origin)}/|data:|blob:)"), elsewhere)

    def open_and_time(self, url: str, what: str) -> float:
        """Go to `url` and wait for every chart on it; prints (not asserts) the time to rendered charts."""
        t0 = time.perf_counter()
        self.page.goto(url)
        self.wait_for_charts()
        seconds = time.perf_counter() - t0
        print(f"\nrender {what}: {seconds * 1000:.0f} ms to all charts drawn "
              f"(plotly {self.page.evaluate('document.body.dataset.chartsMs')} ms of it)")
        return seconds

    def wait_for_charts(self) -> None:
        self.page.wait_for_selector("body[data-charts-rendered]", timeout=30_000)

    def chart_points(self, chart_id: str) -> int:
        """Data points plotly drew in the chart (from its DOM node's data)."""
        return self.page.evaluate(
            """id => { const el = document.querySelector(`[data-chart="${id}"]`);
                       if (!el || !el._fullData) return -1;
                       return el._fullData.reduce((n, t) => n + ((t.x || []).length), 0); }""", chart_id)


@pytest.fixture
def new_page(browser, live_server) -> Callable[..., Page]:
    contexts = []

    def make(viewport=DESKTOP) -> Page:
        context = browser.new_context(viewport=viewport, base_url=live_server.url)
        contexts.append(context)
        return Page(context.new_page(), live_server.url)

    yield make
    for c in contexts:
        c.close()


def login(page: Page, path: str, email: str, password: str) -> None:
    page.page.goto(path)
    page.page.fill("#id_username", email)
    page.page.fill("#id_password", password)
    page.page.click("button[type=submit], input[type=submit]")
