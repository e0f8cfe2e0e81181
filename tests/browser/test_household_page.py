"""The household page in a real browser: log in, charts drawn with data, reasons, accept a recommendation."""
from __future__ import annotations

import pytest

from .conftest import DESKTOP, PHONE, SCREENSHOTS, login

pytestmark = pytest.mark.django_db(transaction=True)

PLAN_CHARTS = ("net-import", "device-power", "timeline", "state-of-charge")


def _washing_at_tomorrows_peak(home) -> None:
    """The household sets the washing machine for tomorrow at 18:00 (peak price), and the day-ahead run for
    tomorrow plans it: it moves, so there is a recommendation whatever the time of day the test runs at."""
    from datetime import datetime, time, timedelta

    from django.utils import timezone

    from devices import services as device_services
    from devices.models import Cycle
    from flexibility.planning import services
    from flexibility.planning.models import RunTrigger
    from flexibility.planning.slots import local_day_horizon

    tz = home.tzinfo
    tomorrow = timezone.now().astimezone(tz).date() + timedelta(days=1)
    cycle = Cycle.objects.get(device__home=home, sequence_id="demo-washing")
    device_services.cycle_save(cycle, {
        "earliest_start": datetime.combine(tomorrow, time(12), tzinfo=tz),
        "latest_end": datetime.combine(tomorrow, time(23), tzinfo=tz),
        "scheduled_start": datetime.combine(tomorrow, time(18), tzinfo=tz)})
    start, end = local_day_horizon(home, tomorrow)
    run, _ = services.submit_run(home, trigger=RunTrigger.DAY_AHEAD, horizon_start=start, horizon_end=end, force=True)
    run.refresh_from_db()
    assert run.status == "succeeded", (run.status, run.error)


def test_household_sees_the_plan_and_accepts_a_recommendation(demo, new_page):
    from flexibility.planning.models import Recommendation, RecommendationStatus
    from hub_bridge.models import HubCommand

    _washing_at_tomorrows_peak(demo)
    page = new_page(DESKTOP)
    login(page, "/app/login/", "demo@example.com", "demo-password-2026")
    page.wait_for_charts()
    page.open_and_time("/app/", "household page")
    for chart in PLAN_CHARTS + ("statistics",):
        assert page.chart_points(chart) > 0, chart
    assert page.page.locator(".chart .main-svg").count() >= len(PLAN_CHARTS) + 1
    assert page.page.locator("[data-chart=net-import] .scatterlayer .trace path.js-line").count() >= 3
    reasons = page.page.locator("#reasons li").all_inner_texts()
    assert any(r.startswith("EV charger reaches") and "EUR/kWh" in r for r in reasons), reasons
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.page.screenshot(path=str(SCREENSHOTS / "household.png"), full_page=True)

    page.open_and_time("/app/?day=tomorrow", "household page, tomorrow")
    reasons = page.page.locator("#reasons li").all_inner_texts()
    assert any(r.startswith("Washing machine moved from 18:00 to ") for r in reasons), reasons
    pending = Recommendation.objects.filter(home=demo, status=RecommendationStatus.PENDING).latest("created_at")
    page.page.click(f"[data-recommendation='{pending.pk}'] button.accept")
    page.wait_for_charts()
    assert "will start at" in page.page.locator(".message.success").inner_text()
    pending.refresh_from_db()
    assert pending.status == RecommendationStatus.ACCEPTED
    assert HubCommand.objects.filter(recommendation=pending, kind="start_cycle").exists()
    assert page.page.locator(f"[data-recommendation='{pending.pk}']").count() == 0
    assert page.errors == [] and page.elsewhere == []

    phone = new_page(PHONE)
    login(phone, "/app/login/", "demo@example.com", "demo-password-2026")
    phone.wait_for_charts()
    phone.open_and_time("/app/?day=tomorrow", "household page, tomorrow, phone")
    assert phone.chart_points("net-import") > 0
    assert phone.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    width = phone.page.evaluate("document.querySelector('[data-chart=net-import]').getBoundingClientRect().width")
    assert 300 <= width <= PHONE["width"]
    phone.page.screenshot(path=str(SCREENSHOTS / "household-phone.png"), full_page=False)
    assert phone.errors == [] and phone.elsewhere == []


def test_another_households_home_and_anonymous_visitors(new_page, make_user, make_home, user):
    theirs = make_home(user, name="Alice's home")
    stranger = make_user("stranger@example.com")
    page = new_page(DESKTOP)
    page.page.goto(f"/app/?home={theirs.pk}")
    assert "/app/login/" in page.page.url  # not logged in: the login page
    login(page, f"/app/login/?next=/app/%3Fhome%3D{theirs.pk}", "stranger@example.com", "correct-horse-battery-2026")
    assert "Page not found" in page.page.content() or "Not Found" in page.page.content()
    make_home(stranger, name="Stranger's flat")
    page.page.goto("/app/")
    assert "Stranger's flat" in page.page.locator("h1").inner_text()
    assert "Alice" not in page.page.content()


def test_api_docs_render_offline(new_page, transactional_db):
    page = new_page(DESKTOP)
    page.page.goto("/api/docs/")
    page.page.wait_for_selector(".opblock", timeout=30_000)
    assert page.page.locator(".opblock").count() > 20
    page.page.goto("/api/redoc/")
    page.page.wait_for_selector("[role=menuitem], .menu-content li", timeout=30_000)
    assert page.page.get_by_text("HEMS energy manager API").count() >= 1
    # The only complaint: the browser refusing ReDoc's remote logo (our CSP), so nothing leaves the machine.
    others = [e for e in page.errors if "logo-mini.svg" not in e or "Content Security Policy" not in e]
    assert page.elsewhere == [] and others == [], (page.elsewhere, page.errors)


def test_requests_to_other_servers_are_refused_and_recorded(new_page, transactional_db):
    page = new_page(DESKTOP)
    page.page.goto("/app/login/")
    outcome = page.page.evaluate("""() => fetch('https://cdn.example.org/plotly.min.js')
                                          .then(() => 'loaded', () => 'refused')""")
    assert outcome == "refused" and page.elsewhere == ["https://cdn.example.org/plotly.min.js"]
