"""Routes of the command outbox (trailing slash optional)."""
from django.urls import include, path

from energy_manager.routers import OptionalSlashRouter

from .views import HubCommandViewSet


router = OptionalSlashRouter()
router.register("commands", HubCommandViewSet, basename="hub-command")

urlpatterns = [path("", include(router.urls))]
