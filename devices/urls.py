"""/api/v1/ routes of the household/DER domain (trailing slashes, as DRF routers make them)."""
from rest_framework import routers
from rest_framework.permissions import AllowAny

from . import views


class PublicAPIRootView(routers.APIRootView):
    """The API's table of contents; readable without a token."""

    permission_classes = [AllowAny]


class Router(routers.DefaultRouter):
    APIRootView = PublicAPIRootView


router = Router()
router.register("homes", views.HomeViewSet, basename="home")
router.register("hubs", views.HubViewSet, basename="hub")
router.register("devices", views.DeviceViewSet, basename="device")
router.register("cycles", views.CycleViewSet, basename="cycle")
router.register("ev-sessions", views.EVSessionViewSet, basename="ev-session")
router.register("signals", views.SignalViewSet, basename="signal")
router.register("measurements", views.MeasurementViewSet, basename="measurement")
router.register("tariffs", views.TariffViewSet, basename="tariff")

urlpatterns = router.urls
