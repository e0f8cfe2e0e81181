"""OpenAPI description of the FlexiHome-compatible routes: the contract's parameters, bodies and error shape."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers


class CompatErrorSerializer(serializers.Serializer):
    error = serializers.CharField()


class SchedulingSerializer(serializers.Serializer):
    start_time = serializers.DateTimeField()
    power_value = serializers.FloatField(min_value=0)
    power_units = serializers.ChoiceField(choices=["W", "kW"])


class AvailableFlexibilitySerializer(serializers.Serializer):
    user_id = serializers.CharField()
    baseline = SchedulingSerializer(many=True)
    flexibility_upward = SchedulingSerializer(many=True)
    flexibility_downward = SchedulingSerializer(many=True)


class InfoMessageSerializer(serializers.Serializer):
    message = serializers.CharField()


class AcceptedSerializer(serializers.Serializer):
    accepted = serializers.CharField()


class CompatRecommendationSerializer(serializers.Serializer):
    recommendation_id = serializers.IntegerField()
    serial_number = serializers.CharField()
    sequence_id = serializers.CharField()
    accepted = serializers.BooleanField()
    optimized_start_time = serializers.DateTimeField()
    optimized_end_time = serializers.DateTimeField()


CORRELATION_ID = OpenApiParameter("X-Correlation-ID", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True,
                                  description="Echoed in the response.")
USER_ID = OpenApiParameter("user_id", OpenApiTypes.STR, required=True,
                           description="The household's username, or its numeric id.")
ASSET = OpenApiParameter("asset", OpenApiTypes.STR, required=True, description="The household (as user_id).")
ACCEPTED = OpenApiParameter("accepted", OpenApiTypes.BOOL, description="Only accepted (true) or not accepted (false).")
RECOMMENDATION_ID = OpenApiParameter("recommendation_id", OpenApiTypes.INT, required=True)
RECOMMENDATION_ID_OPTIONAL = OpenApiParameter(
    "recommendation_id", OpenApiTypes.INT, description="Give this, or both sequence_id and serial_number.")
SEQUENCE_ID = OpenApiParameter("sequence_id", OpenApiTypes.STR)
SERIAL_NUMBER = OpenApiParameter("serial_number", OpenApiTypes.STR)


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(CompatErrorSerializer, description=description)


NOT_FOUND = error("No such household (or recommendation) for this caller.")
