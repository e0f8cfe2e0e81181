"""Routes of optimization runs, schedules, recommendations and notifications (trailing slash optional)."""
from django.urls import re_path
from rest_framework.routers import SimpleRouter

from flexibility import views


class OptionalSlashRouter(SimpleRouter):
    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("optimizations", views.RunViewSet, basename="optimization-run")
router.register("recommendations", views.RecommendationViewSet, basename="recommendation")
router.register("notifications", views.NotificationViewSet, basename="notification")

urlpatterns = [
    re_path(r"^homes/(?P<home_id>[0-9]+)/optimizations/?$", views.HomeOptimizationsView.as_view(),
            name="home-optimizations"),
    re_path(r"^homes/(?P<home_id>[0-9]+)/schedules/?$", views.HomeSchedulesView.as_view(), name="home-schedules"),
    re_path(r"^homes/(?P<home_id>[0-9]+)/schedules/latest/?$", views.HomeLatestScheduleView.as_view(),
            name="home-schedule-latest"),
    *router.urls,
]
