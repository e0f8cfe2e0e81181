"""/api/v1/ routes of forecasting (listed in the API root, energy_manager.views.APIRootView)."""
from rest_framework import routers

from . import views

router = routers.DefaultRouter()
router.include_root_view = False
router.register("forecast-accuracy", views.ForecastAccuracyViewSet, basename="forecast-accuracy")
urlpatterns = router.urls
