"""Operator admin: system records are view-only with readable titles; a home links to its records; charts."""
from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.urls import reverse

from flexibility.planning import services
from flexibility.planning.models import OptimizationRun, Schedule
from hub_bridge.models import HubCommand

pytestmark = pytest.mark.django_db

SYSTEM_RECORDS = ["flexibility.optimizationrun", "flexibility.schedule", "flexibility.recommendation",
                  "flexibility.fleetrun", "hub_bridge.hubcommand", "grid.flexibilityoffer", "grid.activation",
                  "notifications.notification"]


@pytest.fixture
def operator_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def planned(home, washing_machine, cycle, battery, django_capture_on_commit_callbacks, slot_start):
    """A home with a stored plan (the battery follows it through hub commands)."""
    from devices import services as device_services
    from devices.models import SignalKind
    from devices.tariffs import price_series

    battery.automatic_management = True
    battery.save()
    start = slot_start - __import__("datetime").timedelta(hours=1)
    n = 4 * 30
    device_services.replace_signal(SignalKind.LOAD_FORECAST, start, 15, [400.0] * n, home=home)
    device_services.replace_signal(SignalKind.CO2_INTENSITY, start, 15, [150.0] * n, area="PT")
    with django_capture_on_commit_callbacks(execute=True):
        run, _ = services.submit_run(home)
    run.refresh_from_db()
    assert run.status == "succeeded", (run.error, run.explanation)
    return run


@pytest.mark.parametrize("label", SYSTEM_RECORDS)
def test_system_records_are_view_only(operator_client, label):
    model = next(m for m in admin.site._registry if m._meta.label_lower == label)
    model_admin = admin.site._registry[model]

    class Request:
        user = type("U", (), {"is_active": True, "is_staff": True, "is_superuser": True,
                              "has_perm": lambda *a: True})()

    assert not model_admin.has_add_permission(Request())
    assert not model_admin.has_change_permission(Request())
    info = (model._meta.app_label, model._meta.model_name)
    page = operator_client.get(reverse("admin:%s_%s_changelist" % info))
    assert page.status_code == 200
    assert reverse("admin:%s_%s_add" % info) not in page.content.decode()
    assert operator_client.get(reverse("admin:%s_%s_add" % info)).status_code == 403


def test_home_plan_page_charts_the_plan_and_links_to_its_records(operator_client, home, planned):
    form = operator_client.get(reverse("admin:devices_home_change", args=[home.pk])).content.decode()
    assert "Washing Machine" in form and " EUR" in form  # the plan's summary and reasons, without charts
    assert "data-chart=" not in form and "plotly" not in form
    plan_url = reverse("admin:devices_home_plan", args=[home.pk])
    assert plan_url in form
    html = operator_client.get(plan_url).content.decode()
    assert 'data-chart="net-import"' in html and 'data-chart="forecast"' in html
    assert "/static/vendor/plotly-basic-" in html, html[html.find("insights-charts"):][:3000]
    assert "Washing Machine" in html and "<form" not in html.split('id="content-main"')[1]
    links = re.findall(r'href="(/admin/[^"]+\?[^"]+)"', html)
    assert len(links) >= 5
    for link in links:
        page = operator_client.get(link.replace("&amp;", "&"))
        assert page.status_code == 200, link
        assert "?e=1" not in page.get("Location", "")
    commands = operator_client.get(reverse("admin:hub_bridge_hubcommand_changelist"),
                                   {"device__home__id__exact": home.pk})
    assert commands.context["cl"].result_count == HubCommand.objects.filter(device__home=home).count() > 0


def test_home_plan_page_is_for_operators(operator_client, home, user):
    from django.test import Client

    url = reverse("admin:devices_home_plan", args=[home.pk])
    household = Client()
    household.force_login(user)  # the home's owner, not staff
    for visitor in (Client(), household):
        r = visitor.get(url)
        assert r.status_code == 302 and r["Location"].startswith(reverse("admin:login"))
    assert operator_client.get(reverse("admin:devices_home_plan", args=[home.pk + 1000])).status_code == 404


def test_readable_titles_and_a_schedule_page_without_raw_json(operator_client, planned):
    schedule = Schedule.objects.get(run=planned)
    assert str(schedule).startswith(f"Plan of {schedule.home} from ") and "saves" in str(schedule)
    command = HubCommand.objects.filter(run=planned).first()
    assert str(command).startswith("set_battery_setpoint to ")
    html = operator_client.get(reverse("admin:flexibility_schedule_change", args=[schedule.pk])).content.decode()
    assert 'data-chart="net-import"' in html and "<textarea" not in html and 'name="_save"' not in html
    assert "Schedule object" not in operator_client.get(reverse("admin:flexibility_schedule_changelist")).content.decode()
    run_html = operator_client.get(reverse("admin:flexibility_optimizationrun_change", args=[planned.pk])).content.decode()
    assert 'data-chart="net-import"' in run_html and "<pre" in run_html


def test_admin_is_branded(operator_client):
    assert "HEMS energy manager" in operator_client.get(reverse("admin:index")).content.decode()
