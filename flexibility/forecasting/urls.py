from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("forecast-accuracy", views.ForecastAccuracyViewSet, basename="forecast-accuracy")
urlpatterns = router.urls
