"""Charts on the operator's admin pages: a home's plan and forecast against measured, a schedule, an
offer's envelope, an activation's delivery, a fleet run's outcome. The admin templates that use these
tags live in this app (templates/admin/...), so the parts below never import the charts."""
from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from flexibility.grid import selectors as grid_selectors
from flexibility.planning import selectors as planning_selectors
from flexibility.grid.models import FlexibilityOffer
from flexibility.planning.models import OptimizationRun, RunStatus, Schedule
from flexibility.planning.schedule_view import schedule_view

from .. import charts
from ..selectors import home_series

register = template.Library()
TEMPLATE = "insights/admin/charts.html"


def _plan(schedule: Schedule, with_charts: bool = True) -> dict[str, Any]:
    view = schedule_view(schedule)
    return {"figures": charts.plan_figures(view) if with_charts else [], "plan": view,
            "reasons": [d["reason"] for d in view["devices"] if d["reason"]]}


@register.inclusion_tag(TEMPLATE)
def schedule_charts(schedule: Schedule) -> dict[str, Any]:
    return _plan(schedule)


@register.inclusion_tag(TEMPLATE)
def run_charts(run: OptimizationRun) -> dict[str, Any]:
    schedule = Schedule.objects.filter(run=run).first()
    return _plan(schedule) if schedule is not None else {"figures": []}


@register.inclusion_tag(TEMPLATE)
def home_charts(home, with_charts: bool = True) -> dict[str, Any]:
    """The home's current plan with its reasons, today's forecast against measured, and links to its
    records. The home's form shows the plan without charts (`with_charts` False) and links to the plan page."""
    schedule = planning_selectors.latest_schedule(home)
    context = _plan(schedule, with_charts) if schedule is not None else {"figures": []}
    if with_charts:
        context["figures"] = context["figures"] + [charts.forecast_figure(home_series(home))]
        first = ("The home", reverse("admin:devices_home_change", args=[home.pk]))
    else:
        first = ("Plan and forecast charts", reverse("admin:devices_home_plan", args=[home.pk]))
    q = f"?home__id__exact={home.pk}"
    context["links"] = [
        first,
        ("Optimization runs", reverse("admin:flexibility_optimizationrun_changelist") + q),
        ("Schedules", reverse("admin:flexibility_schedule_changelist") + q),
        ("Recommendations", reverse("admin:flexibility_recommendation_changelist") + q),
        ("Hub commands", reverse("admin:hub_bridge_hubcommand_changelist") + f"?device__home__id__exact={home.pk}"),
        ("Flexibility offers", reverse("admin:grid_flexibilityoffer_changelist") + q),
        ("Statistics (API)", reverse("home-statistics", args=[home.pk]) + "?devices=true"),
    ]
    return context


@register.inclusion_tag(TEMPLATE)
def offer_charts(offer) -> dict[str, Any]:
    figure = charts.band_figure(
        "offer-envelope", f"Offer of {offer.home} for {offer.delivery_day}: net import range per slot",
        offer.slot_starts(), offer.home.timezone, offer.min_kw, offer.max_kw, "Offered range (kW)",
        {"Baseline plan (kW)": offer.baseline_kw}, resolution_minutes=offer.resolution_minutes)
    return {"figures": [figure]}


@register.inclusion_tag(TEMPLATE)
def portfolio_charts(portfolio) -> dict[str, Any]:
    """The summed envelope of the portfolio's newest delivery day with offers."""
    day = (FlexibilityOffer.objects.filter(home__portfolios=portfolio).order_by("-delivery_day")
           .values_list("delivery_day", flat=True).first())
    if day is None:
        return {"figures": []}
    offers = list(FlexibilityOffer.objects.filter(home__portfolios=portfolio, delivery_day=day).select_related("home"))
    body = grid_selectors.portfolio_offer(portfolio, day, offers)
    zone = offers[0].home.timezone
    starts = offers[0].slot_starts()
    figure = charts.band_figure("portfolio-envelope", f"{portfolio} on {day}: summed offers of {body['homes']} homes",
                                starts, zone, body["min_kw"], body["max_kw"], "Offered range (kW)",
                                {"Summed baseline (kW)": body["baseline_kw"]},
                                resolution_minutes=body["resolution_minutes"])
    return {"figures": [figure]}


@register.inclusion_tag(TEMPLATE)
def activation_charts(activation) -> dict[str, Any]:
    rows = grid_selectors.delivery(activation)["slots"]
    zone = activation.home.timezone if activation.home_id else (
        activation.portfolio.homes.values_list("timezone", flat=True).first() or "UTC")
    col = lambda name: [r[name] for r in rows]  # noqa: E731
    figure = charts.band_figure(
        "activation-delivery", f"Activation {activation.pk}: requested, planned and measured net import",
        col("start"), zone, col("requested_min_kw"), col("requested_max_kw"), "Requested (kW)",
        {"Planned (kW)": col("planned_kw"), "Measured (kW)": col("measured_kw")},
        resolution_minutes=activation.resolution_minutes, band_color=charts.COLORS["requested"])
    return {"figures": [figure]}


@register.inclusion_tag(TEMPLATE)
def fleet_charts(fleet) -> dict[str, Any]:
    savings = list(Schedule.objects.filter(run__fleet_run=fleet, run__status=RunStatus.SUCCEEDED)
                   .values_list("savings_eur", flat=True))
    figures = [charts.counts_figure("fleet-outcome", f"{fleet}: runs per status", fleet.counts or {})]
    if savings:
        figures.append(charts.histogram_figure("fleet-savings", "Planned savings per home (EUR)", savings, "EUR"))
    return {"figures": figures, "summary": f"{len(savings)} plans stored, {sum(savings):.2f} EUR planned savings in total"}
