"""How good each stored forecast was, per home (and device), day and kind."""
from __future__ import annotations

from django.db import models

from devices.models import Device, Home, SignalKind

FORECAST_KINDS = [(k.value, k.label) for k in (SignalKind.LOAD_FORECAST, SignalKind.PV_FORECAST, SignalKind.HEAT_DEMAND)]


class ForecastAccuracy(models.Model):
    """Error of the forecast stored for a local day against what was then measured (W).

    `naive_mae_w` is the error of the seasonal-naive benchmark (same slot one week earlier)
    over the same slots, when last week was measured: the forecast should beat it.
    """

    home = models.ForeignKey(Home, on_delete=models.CASCADE, related_name="forecast_accuracy")
    device = models.ForeignKey(Device, null=True, blank=True, on_delete=models.CASCADE, related_name="forecast_accuracy")
    kind = models.CharField(max_length=24, choices=FORECAST_KINDS)
    day = models.DateField(help_text="Local day of the home.")
    model = models.CharField(max_length=120, help_text="The model that produced the forecast.")
    mae_w = models.FloatField()
    rmse_w = models.FloatField()
    bias_w = models.FloatField(help_text="Mean of forecast minus measured: positive means the forecast was too high.")
    naive_mae_w = models.FloatField(null=True, blank=True)
    slots = models.PositiveIntegerField(help_text="Slots that had both a forecast and a measurement.")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day", "home_id", "kind", "device_id"]
        constraints = [models.UniqueConstraint(fields=["home", "device", "kind", "day"], nulls_distinct=False,
                                               name="forecast_accuracy_one_per_day")]
        verbose_name_plural = "forecast accuracy"

    def __str__(self) -> str:
        return f"{self.kind} {self.home_id} {self.day}: MAE {self.mae_w:.0f} W"
