"""The household page: today's and tomorrow's plan as charts, the reasons, recommendations to accept
or decline, and savings this week and month. Thin: selectors read, services write, as in the API."""
from __future__ import annotations

from datetime import date, timedelta

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from devices.selectors import homes_for
from energy_manager.errors import Conflict
from flexibility.notifications.selectors import notifications_for_user
from flexibility.planning import selectors as planning, services
from flexibility.planning.models import RecommendationStatus
from flexibility.planning.schedule_view import day_slots, schedule_for_day, schedule_view
from insights import charts
from insights.selectors import combine_buckets, home_statistics

DAYS = {"today": 0, "tomorrow": 1}


class LoginView(auth_views.LoginView):
    template_name = "webapp/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


def _home(request: HttpRequest):
    homes = homes_for(request.user)
    wanted = request.GET.get("home")
    if wanted and wanted.isdigit():
        return get_object_or_404(homes, pk=int(wanted)), homes
    return homes.first(), homes


@login_required
def home_page(request: HttpRequest) -> HttpResponse:
    home, homes = _home(request)
    if home is None:
        return render(request, "webapp/no_home.html")
    which = request.GET.get("day", "today")
    which = which if which in DAYS else "today"
    today = timezone.now().astimezone(home.tzinfo).date()
    day = today + timedelta(days=DAYS[which])
    context = {"home": home, "homes": homes, "which": which, "day": day, "days": list(DAYS)}
    schedule = schedule_for_day(home, day)
    if schedule is not None:
        view = schedule_view(schedule)
        first, last = day_slots(schedule, home, day)
        context.update(plan=view, figures=charts.plan_figures(view, first, last) if last > first else [],
                       plan_hours=round((last - first) * schedule.resolution_minutes / 60, 1))
    context["recommendations"] = (planning.recommendations_for_user(request.user)
                                  .filter(home=home, status=RecommendationStatus.PENDING)
                                  .order_by("recommended_start"))
    context["notifications"] = notifications_for_user(request.user).filter(
        home=home, dismissed_at__isnull=True)[:5]
    week_start, month_start = today - timedelta(days=6), date(today.year, today.month, 1)
    days = home_statistics(home, "day", min(week_start, month_start), today)
    last_week = [b for b in days["buckets"] if b["period"] >= week_start.isoformat()]
    context.update(week=combine_buckets(last_week),
                   month=combine_buckets([b for b in days["buckets"] if b["period"] >= month_start.isoformat()]),
                   stats_figure=charts.statistics_figure({**days, "buckets": last_week}, "The last 7 days"))
    return render(request, "webapp/home.html", context)


@login_required
@require_POST
def decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    """Accept (the cycle moves and its hub is told) or decline a recommendation."""
    rec = get_object_or_404(planning.recommendations_for_user(request.user), pk=pk)
    try:
        if decision == "accept":
            rec = services.accept_recommendation(rec)
            messages.success(request, f"{rec.device.name} will start at "
                             f"{timezone.localtime(rec.recommended_start, rec.home.tzinfo):%H:%M}.")
        else:
            services.decline_recommendation(rec)
            messages.info(request, f"{rec.device.name} keeps its own start.")
    except Conflict as exc:
        messages.error(request, str(exc))
    return redirect(f"{reverse('webapp:home')}?home={rec.home_id}")
