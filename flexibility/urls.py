from django.urls import path
from rest_framework.routers import SimpleRouter

from flexibility import views

router = SimpleRouter()
router.register("optimizations", views.RunViewSet, basename="optimization-run")
router.register("recommendations", views.RecommendationViewSet, basename="recommendation")
router.register("notifications", views.NotificationViewSet, basename="notification")

urlpatterns = [
    path("homes/<int:home_id>/optimizations", views.HomeOptimizationsView.as_view(), name="home-optimizations"),
    path("homes/<int:home_id>/schedules", views.HomeSchedulesView.as_view(), name="home-schedules"),
    path("homes/<int:home_id>/schedules/latest", views.HomeSchedulesView.as_view(latest=True),
         name="home-schedule-latest"),
    *router.urls,
]
