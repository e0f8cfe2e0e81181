"""Routes of the command outbox (trailing slash optional)."""
from django.urls import include, path
from rest_framework.routers import SimpleRouter

from .views import HubCommandViewSet


class OptionalSlashRouter(SimpleRouter):
    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("commands", HubCommandViewSet, basename="hub-command")

urlpatterns = [path("", include(router.urls))]
