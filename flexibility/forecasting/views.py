"""Forecast accuracy, read-only, scoped to the user's homes."""
from __future__ import annotations

import django_filters
from rest_framework import mixins, viewsets

from .models import FORECAST_KINDS, ForecastAccuracy
from .selectors import accuracy_for
from .serializers import ForecastAccuracySerializer


class ForecastAccuracyFilter(django_filters.FilterSet):
    home = django_filters.NumberFilter(field_name="home_id")
    device = django_filters.NumberFilter(field_name="device_id")
    kind = django_filters.ChoiceFilter(choices=FORECAST_KINDS)
    start = django_filters.DateFilter(field_name="day", lookup_expr="gte", help_text="First local day.")
    end = django_filters.DateFilter(field_name="day", lookup_expr="lte", help_text="Last local day.")

    class Meta:
        model = ForecastAccuracy
        fields = ["home", "device", "kind", "start", "end"]


class ForecastAccuracyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """MAE, RMSE and bias (W) of each day's stored forecast against what was measured, with the model
    that made it and the seasonal-naive benchmark's MAE."""

    serializer_class = ForecastAccuracySerializer
    filterset_class = ForecastAccuracyFilter
    ordering_fields = ["day", "mae_w"]

    def get_queryset(self):
        return accuracy_for(self.request.user)
