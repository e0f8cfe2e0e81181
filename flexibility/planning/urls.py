"""Routes of optimization runs, schedules and recommendations (trailing slash optional)."""
from django.urls import re_path

from energy_manager.routers import OptionalSlashRouter

from . import views


router = OptionalSlashRouter()
router.register("optimizations", views.RunViewSet, basename="optimization-run")
router.register("recommendations", views.RecommendationViewSet, basename="recommendation")

urlpatterns = [
    re_path(r"^homes/(?P<home_id>[0-9]+)/optimizations/?$", views.HomeOptimizationsView.as_view(),
            name="home-optimizations"),
    re_path(r"^homes/(?P<home_id>[0-9]+)/schedules/?$", views.HomeSchedulesView.as_view(), name="home-schedules"),
    re_path(r"^homes/(?P<home_id>[0-9]+)/schedules/latest/?$", views.HomeLatestScheduleView.as_view(),
            name="home-schedule-latest"),
    *router.urls,
]
