from rest_framework import serializers

from .models import ForecastAccuracy


class ForecastAccuracySerializer(serializers.ModelSerializer):
    class Meta:
        model = ForecastAccuracy
        fields = ["id", "home", "device", "kind", "day", "model", "mae_w", "rmse_w", "bias_w", "naive_mae_w", "slots",
                  "computed_at"]
        read_only_fields = fields
