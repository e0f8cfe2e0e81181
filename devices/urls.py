"""/api/v1/ routes of the household/DER domain (trailing slashes, as DRF routers make them)."""
from rest_framework import routers

from . import views

# The API root listing every part's resources is energy_manager.views.APIRootView.
router = routers.DefaultRouter()
router.include_root_view = False
router.register("homes", views.HomeViewSet, basename="home")
router.register("hubs", views.HubViewSet, basename="hub")
router.register("devices", views.DeviceViewSet, basename="device")
router.register("cycles", views.CycleViewSet, basename="cycle")
router.register("ev-sessions", views.EVSessionViewSet, basename="ev-session")
router.register("signals", views.SignalViewSet, basename="signal")
router.register("measurements", views.MeasurementViewSet, basename="measurement")
router.register("tariffs", views.TariffViewSet, basename="tariff")
router.register("minimum-states", views.MinimumStateViewSet, basename="minimum-state")
router.register("circuits", views.CircuitViewSet, basename="circuit")

urlpatterns = router.urls
