"""The household page in a real browser: log in, charts drawn with data, reasons, accept a recommendation."""
from __future__ import annotations

import pytest

from .conftest import DESKTOP, PHONE, SCREENSHOTS, login

pytestmark = pytest.mark.django_db(transaction=True)

PLAN_CHARTS = ("net-import", "device-power", "timeline", "state-of-charge")


def test_household_sees_the_plan_and_accepts_a_recommendation(demo, new_page):
    from flexibility.planning.models import Recommendation, RecommendationStatus
    from hub_bridge.models import HubCommand

    page = new_page(DESKTOP)
    login(page, "/app/login/", "demo@example.com", "demo-password-2026")
    page.wait_for_charts()
    page.open_and_time("/app/", "household page")
    for chart in PLAN_CHARTS + ("statistics",):
        assert page.chart_points(chart) > 0, chart
    assert page.page.locator(".chart .main-svg").count() >= len(PLAN_CHARTS) + 1
    assert page.page.locator("[data-chart=net-import] .scatterlayer .trace path.js-line").count() >= 3
    reasons = page.page.locator("#reasons li").all_inner_texts()
    assert any(r.startswith("Washing machine moved from") and "EUR/kWh" in r for r in reasons), reasons
    assert any("EV charger reaches" in r for r in reasons), reasons
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.page.screenshot(path=str(SCREENSHOTS / "household.png"), full_page=True)

    pending = Recommendation.objects.get(home=demo, status=RecommendationStatus.PENDING)
    page.page.click(f"[data-recommendation='{pending.pk}'] button.accept")
    page.wait_for_charts()
    assert "will start at" in page.page.locator(".message.success").inner_text()
    pending.refresh_from_db()
    assert pending.status == RecommendationStatus.ACCEPTED
    assert HubCommand.objects.filter(recommendation=pending, kind="start_cycle").exists()
    assert page.page.locator(f"[data-recommendation='{pending.pk}']").count() == 0
    assert page.errors == [] and page.elsewhere == []


def test_tomorrow_and_a_phone_sized_screen(demo, new_page):
    page = new_page(PHONE)
    login(page, "/app/login/", "demo@example.com", "demo-password-2026")
    page.wait_for_charts()
    page.open_and_time("/app/?day=tomorrow", "household page, tomorrow, phone")
    assert page.chart_points("net-import") > 0
    assert page.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    width = page.page.evaluate("document.querySelector('[data-chart=net-import]').getBoundingClientRect().width")
    assert 300 <= width <= PHONE["width"]
    page.page.screenshot(path=str(SCREENSHOTS / "household-phone.png"), full_page=False)
    assert page.errors == [] and page.elsewhere == []


def test_another_households_home_and_anonymous_visitors(demo, new_page, make_user, make_home):
    stranger = make_user("stranger@example.com")
    page = new_page(DESKTOP)
    page.page.goto(f"/app/?home={demo.pk}")
    assert "/app/login/" in page.page.url  # not logged in: the login page
    login(page, f"/app/login/?next=/app/%3Fhome%3D{demo.pk}", "stranger@example.com", "correct-horse-battery-2026")
    assert "Page not found" in page.page.content() or "Not Found" in page.page.content()
    make_home(stranger, name="Stranger's flat")
    page.page.goto("/app/")
    assert "Stranger's flat" in page.page.locator("h1").inner_text()
    assert "Demo household" not in page.page.content()


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
