from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

admin.site.site_header = "HEMS energy manager: operations"
admin.site.site_title = "HEMS operations"
admin.site.index_title = "Homes, plans, commands and grid flexibility"

from energy_manager import views
from energy_manager.health import HealthView

urlpatterns = [
    path("", views.index, name="index"),
    path("health/", HealthView.as_view(), name="health"),
    path("metrics", views.prometheus_metrics, name="prometheus-metrics"),
    path("api/v1/", views.APIRootView.as_view(), name="api-root"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema", template_name="webapp/redoc.html"), name="redoc"),
    path("app/", include("webapp.urls")),
    path("favicon.ico", RedirectView.as_view(url=static("webapp/favicon.svg"))),
    path("api/v1/auth/", include("energy_manager.auth_urls")),
    path("api/v1/", include("devices.urls")),
    path("api/v1/", include("flexibility.planning.urls")),
    path("api/v1/", include("flexibility.notifications.urls")),
    path("api/v1/", include("hub_bridge.urls")),
    path("api/v1/", include("flexibility.grid.urls")),
    path("api/energy_manager_service/", include("flexibility.grid.compat.urls")),
    path("api/v1/", include("flexibility.forecasting.urls")),
    path("api/v1/", include("insights.urls")),
]

# API paths answer errors with the API's JSON body; other paths keep Django's pages.
handler400 = "energy_manager.api_errors.bad_request"
handler403 = "energy_manager.api_errors.permission_denied"
handler404 = "energy_manager.api_errors.page_not_found"
handler500 = "energy_manager.api_errors.server_error"
