from django.contrib import admin

from .models import ForecastAccuracy


@admin.register(ForecastAccuracy)
class ForecastAccuracyAdmin(admin.ModelAdmin):
    list_display = ["day", "home", "device", "kind", "model", "mae_w", "rmse_w", "bias_w", "naive_mae_w", "slots"]
    list_filter = ["kind", "model", "day"]
    search_fields = ["home__name", "home__owner__email", "device__serial_number", "model"]
    date_hierarchy = "day"
    readonly_fields = [f.name for f in ForecastAccuracy._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # written by scoring only
