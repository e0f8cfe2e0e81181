"""The operator's admin in a real browser: a home's plan, an offer's envelope, an activation's delivery."""
from __future__ import annotations

import pytest

from .conftest import DESKTOP, SCREENSHOTS, login

pytestmark = pytest.mark.django_db(transaction=True)


def test_operator_opens_a_homes_plan_an_offer_and_an_activation(demo, new_page):
    from flexibility.grid.models import Activation, FlexibilityOffer

    offer = FlexibilityOffer.objects.filter(home=demo).latest("delivery_day")
    activation = Activation.objects.get(portfolio__homes=demo)
    page = new_page(DESKTOP)
    login(page, "/admin/login/", "operator@example.com", "operator-password-2026")
    page.page.wait_for_selector("#site-name")
    assert "HEMS energy manager" in page.page.locator("#site-name").inner_text()

    page.open_and_time(f"/admin/devices/home/{demo.pk}/plan/", "admin: a home's plan")  # the first page after login
    for chart in ("net-import", "device-power", "timeline", "state-of-charge", "forecast"):
        assert page.chart_points(chart) > 0, chart
    assert page.page.locator(".insights-charts li").count() >= 3  # the plan's reasons
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.page.locator(".insights-charts").screenshot(path=str(SCREENSHOTS / "operator-plan.png"))

    page.page.goto(f"/admin/devices/home/{demo.pk}/change/")  # the home's form links to its plan
    assert page.page.locator(".insights-charts li").count() >= 3
    page.page.get_by_role("link", name="Plan and forecast charts").click()
    page.page.wait_for_url(f"**/admin/devices/home/{demo.pk}/plan/")

    page.open_and_time(f"/admin/grid/flexibilityoffer/{offer.pk}/change/", "admin: an offer")
    assert page.chart_points("offer-envelope") >= 3 * offer.slots  # lower, upper and baseline per slot
    page.open_and_time(f"/admin/grid/activation/{activation.pk}/change/", "admin: an activation")
    assert page.chart_points("activation-delivery") > 0
    assert page.page.locator("input[name=_save]").count() == 0  # a system record: nothing to edit
    page.page.goto("/admin/flexibility/schedule/")
    assert page.page.locator("#content-main .object-tools .addlink").count() == 0
    assert "Plan of Demo household" in page.page.content()
    assert page.errors == [] and page.elsewhere == [], (page.errors, page.elsewhere)
