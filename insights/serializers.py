"""Query parameters of the statistics endpoints (the answers are plain dicts from the selectors)."""
from __future__ import annotations

from rest_framework import serializers

from .selectors import BUCKETS

MAX_DAYS = 366


class StatisticsQuerySerializer(serializers.Serializer):
    bucket = serializers.ChoiceField(choices=BUCKETS, default="day", help_text="Local days or local months.")
    first_day = serializers.DateField(required=False, help_text="Local date; default: 7 days ago, or the 1st.")
    last_day = serializers.DateField(required=False, help_text="Local date, included; default: today.")
    devices = serializers.BooleanField(default=False, help_text="Add per-device statistics (homes only).")

    def validate(self, attrs: dict) -> dict:
        first, last = attrs.get("first_day"), attrs.get("last_day")
        if first and last:
            if last < first:
                raise serializers.ValidationError({"last_day": ["Must not be before first_day."]})
            if (last - first).days >= MAX_DAYS:
                raise serializers.ValidationError({"last_day": [f"At most {MAX_DAYS} days per request."]})
        return attrs


class SeriesQuerySerializer(serializers.Serializer):
    day = serializers.DateField(required=False, help_text="Local date; default: today.")
