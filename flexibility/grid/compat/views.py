"""FlexiHome Energy Manager (OpenAPI v1.8.0) compatible endpoints.

Differences from the original, on purpose: a request without credentials is refused
(401) instead of being trusted as internal; /flexibility/accept is for operator
service accounts only; power values are kW of average power over each 15-minute slot
(the original labelled kWh per quarter-hour as "kW"). `user_id` / `asset` name the
Django user by username, or (all digits) by primary key; the user's first opted-in
home is the HEMS.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone

from django.utils import timezone
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from energy_manager.authentication import JWTAuthentication

from devices.models import Home
from energy_manager.api_errors import domain_status
from energy_manager.api_input import InstantField, StrictFloatField, null_character_fields, parse_id
from energy_manager.errors import Conflict, DomainError
from flexibility.planning.models import Recommendation, RecommendationStatus
from flexibility.planning.services import accept_recommendation, decline_recommendation
from flexibility.planning.slots import SLOT

from .. import selectors as sel
from .. import services
from ..models import Activation, ActivationMode, ActivationStatus, ServiceAccount
from ..service_auth import IsServiceAccount, ServiceAccountAuthentication, is_service_account
from .schema import (
    ACCEPTED, ASSET, CORRELATION_ID, NOT_FOUND, RECOMMENDATION_ID, RECOMMENDATION_ID_OPTIONAL, SEQUENCE_ID,
    SERIAL_NUMBER, USER_ID, AcceptedSerializer, AvailableFlexibilitySerializer, CompatErrorSerializer,
    CompatRecommendationSerializer, InfoMessageSerializer, error,
)

CORRELATION_HEADER = "X-Correlation-ID"
MESSAGES = {
    401: "error in authorization token",
    403: "you are not authorized to access this information",
}


class CompatError(exceptions.APIException):
    def __init__(self, status_code: int, message: str):
        self.status_code = status_code
        super().__init__(message)


def _iso(t: datetime) -> str:
    return t.astimezone(dt_timezone.utc).isoformat().replace("+00:00", "Z")


class CompatView(APIView):
    """{"error": "..."} bodies, X-Correlation-ID required and echoed, credentials required."""

    authentication_classes = [ServiceAccountAuthentication, JWTAuthentication]
    permission_classes = [IsAuthenticated]
    checks_null_characters_itself = True  # to answer in the contract's error shape
    error_serializer = CompatErrorSerializer

    def initial(self, request, *args, **kwargs):
        if not request.headers.get(CORRELATION_HEADER, "").strip():
            raise CompatError(400, "missing X-Correlation-ID header")
        for name, messages in null_character_fields(kwargs, request.query_params).items():
            raise CompatError(400, f"{name}: {messages[0]}")
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc):
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
            response = Response({"error": MESSAGES[401]}, status=401)
            response["WWW-Authenticate"] = "Bearer"
            return response
        if isinstance(exc, exceptions.PermissionDenied):
            return Response({"error": MESSAGES[403]}, status=403)
        if isinstance(exc, exceptions.ValidationError):
            return Response({"error": _first_message(exc.detail)}, status=400)
        if isinstance(exc, exceptions.APIException):
            return Response({"error": str(exc.detail)}, status=exc.status_code)
        if isinstance(exc, DomainError):
            return Response({"error": exc.message}, status=domain_status(exc))
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        correlation = request.headers.get(CORRELATION_HEADER)
        if correlation:
            response[CORRELATION_HEADER] = correlation
        return response

    # --- scoping ---------------------------------------------------------------
    def home_for(self, compat_id: str, what: str = "user") -> Home:
        """The HEMS of `compat_id`, if the caller may see it: the household itself, staff, or a
        service account whose portfolios hold the home. Anything else is not found."""
        if not compat_id:
            raise CompatError(400, f"missing {'asset' if what == 'asset' else 'user_id'} query parameter")
        user = sel.user_for_compat_id(compat_id)
        home = sel.home_of_user(user) if user is not None else None
        caller = self.request.user
        allowed = home is not None and (
            sel.homes_for(caller).filter(pk=home.pk).exists() if is_service_account(caller)
            else not isinstance(caller, ServiceAccount) and (caller.is_staff or caller.pk == user.pk)
        )  # a data-provider account is neither: its id must never be taken for a household's
        if not allowed:
            raise CompatError(404, f'{what} with id "{compat_id}" not found')
        return home


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            return f"{key}: {_first_message(value)}" if key != "non_field_errors" else _first_message(value)
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def _vector(starts: list[datetime], values: list[float]) -> list[dict]:
    """15-minute Scheduling items in kW; power_value is never negative (the schema's minimum)."""
    return [{"start_time": _iso(t), "power_value": round(max(0.0, v), 6), "power_units": "kW"} for t, v in zip(starts, values)]


def available_body(compat_id: str, offer) -> dict:
    """Baseline net import and the room to move up / down per slot, all in kW."""
    starts = offer.slot_starts()
    return {
        "user_id": compat_id,
        "baseline": _vector(starts, offer.baseline_kw),
        "flexibility_upward": _vector(starts, [h - b for h, b in zip(offer.max_kw, offer.baseline_kw)]),
        "flexibility_downward": _vector(starts, [b - lo for lo, b in zip(offer.min_kw, offer.baseline_kw)]),
    }


class AvailableView(CompatView):
    @extend_schema(parameters=[CORRELATION_ID, USER_ID],
                   responses={200: AvailableFlexibilitySerializer, 404: NOT_FOUND},
                   description="FlexiHome AvailableFlexibility: baseline and up/down flexibility, 15-min Scheduling "
                               "vectors in kW.")
    def get(self, request):
        compat_id = request.query_params.get("user_id", "")
        home = self.home_for(compat_id)
        offer = sel.latest_offer_for_home(home)
        if offer is None:
            raise CompatError(404, f'no flexibility available for user with id "{compat_id}"')
        return Response(available_body(compat_id, offer))

    @extend_schema(parameters=[CORRELATION_ID, USER_ID], request=None,
                   responses={200: AvailableFlexibilitySerializer, 202: InfoMessageSerializer, 404: NOT_FOUND,
                              422: error("The offer could not be computed.")})
    def post(self, request):
        """Build the day-ahead offer now (tomorrow in the home's time zone)."""
        compat_id = request.query_params.get("user_id", "")
        home = self.home_for(compat_id)
        day = (timezone.now().astimezone(home.tzinfo) + timedelta(days=1)).date()
        if not sel.home_contributes(home):
            return Response({"message": "Failed to get inputs for flexibility optimization."}, status=202)
        try:
            offer = services.build_offer(home.pk, day)
        except Exception as exc:  # the optimizer could not solve the envelope
            raise CompatError(422, f"The schedule was calculated and an unfeasible result was obtained: {exc}")
        if offer is None:
            return Response({"message": "Failed to get inputs for flexibility optimization."}, status=202)
        return Response(available_body(compat_id, offer))


class SetpointSerializer(serializers.Serializer):
    time_interval_start = InstantField()
    time_interval_end = InstantField()
    power_value = StrictFloatField(min_value=0)

    def validate(self, data):
        start, end = data["time_interval_start"], data["time_interval_end"]
        if end <= start or int(start.timestamp()) % 900 or int(end.timestamp()) % 900:
            raise serializers.ValidationError("one or more timestamps in the request are invalid")
        return data


class FlexAcceptSerializer(serializers.Serializer):
    data_point = serializers.CharField(max_length=120)
    creation_timestamp = InstantField()
    setpoints = SetpointSerializer(many=True, min_length=24, max_length=96)


def setpoints_to_slots(setpoints: list[dict]) -> tuple[datetime, list[float | None]]:
    """Intervals (15 min to hours) -> one setpoint per 15-minute slot from the first start; gaps are free."""
    start = min(s["time_interval_start"] for s in setpoints)
    end = max(s["time_interval_end"] for s in setpoints)
    values: list[float | None] = [None] * int((end - start) / SLOT)
    for s in setpoints:
        first = int((s["time_interval_start"] - start) / SLOT)
        for t in range(first, int((s["time_interval_end"] - start) / SLOT)):
            if values[t] is not None:
                raise CompatError(400, "setpoint intervals overlap")
            values[t] = float(s["power_value"])
    return start, values


class AcceptView(CompatView):
    """An aggregator accepts (part of) a home's offer: it becomes an activation of that home."""

    permission_classes = [IsServiceAccount]

    @extend_schema(parameters=[CORRELATION_ID, ASSET], request=FlexAcceptSerializer,
                   responses={200: AcceptedSerializer, 202: AcceptedSerializer, 404: NOT_FOUND,
                              422: error("The setpoints go beyond the home's offer.")})
    def post(self, request):
        asset = request.query_params.get("asset", "")
        home = self.home_for(asset, "asset")
        body = FlexAcceptSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        start, values = setpoints_to_slots(body.validated_data["setpoints"])
        data_point = body.validated_data["data_point"]
        already = Activation.objects.filter(
            home=home, start=start, external_id=data_point, service_account=request.user,
        ).exclude(status=ActivationStatus.FAILED).exists()
        if already:
            return Response({"accepted": f"Flexibility offer of {asset} already accepted"}, status=202)
        try:
            services.create_activation(
                request.user, start=start, requested_min_kw=values, requested_max_kw=values,
                mode=ActivationMode.SETPOINT, home=home, external_id=data_point,
            )
        except services.ActivationBeyondOffer as err:
            raise CompatError(422, err.message)
        return Response({"accepted": f"Accepted flexibility triggered by asset {asset}"})


def _parse_bool(value: str | None, name: str) -> bool | None:
    if value is None:
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise CompatError(400, f"{name} must be true or false")


def _int_param(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    number = parse_id(value)
    if number is None:
        raise CompatError(400, f"{name} must be an integer")
    return number


class HouseholdOnly(IsAuthenticated):
    """Recommendations belong to households (and staff), not to service accounts."""

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and not isinstance(request.user, ServiceAccount)


def _recommendations_of(user):
    qs = Recommendation.objects.select_related("device", "cycle", "home")
    return qs if user.is_staff else qs.filter(home__owner=user)


class RecommendationsView(CompatView):
    permission_classes = [HouseholdOnly]

    @extend_schema(parameters=[CORRELATION_ID, USER_ID, ACCEPTED],
                   responses={200: CompatRecommendationSerializer(many=True), 404: NOT_FOUND},
                   description="Optimized cycle recommendations from today onward.")
    def get(self, request):
        compat_id = request.query_params.get("user_id", "")
        accepted = _parse_bool(request.query_params.get("accepted"), "accepted")
        home = self.home_for(compat_id)
        today = timezone.now().astimezone(home.tzinfo).replace(hour=0, minute=0, second=0, microsecond=0)
        qs = Recommendation.objects.filter(home__owner=home.owner, recommended_start__gte=today).exclude(
            status__in=[RecommendationStatus.DECLINED, RecommendationStatus.SUPERSEDED]
        ).select_related("device", "cycle").order_by("recommended_start", "id")
        if accepted is True:
            qs = qs.filter(status=RecommendationStatus.ACCEPTED)
        elif accepted is False:
            qs = qs.exclude(status=RecommendationStatus.ACCEPTED)
        return Response([
            {
                "recommendation_id": r.pk,
                "serial_number": r.device.serial_number,
                "sequence_id": r.cycle.sequence_id,
                "accepted": r.status == RecommendationStatus.ACCEPTED,
                "optimized_start_time": _iso(r.recommended_start),
                "optimized_end_time": _iso(r.recommended_end),
            }
            for r in qs
        ])

    @extend_schema(parameters=[CORRELATION_ID, RECOMMENDATION_ID_OPTIONAL, SEQUENCE_ID, SERIAL_NUMBER], request=None,
                   responses={200: OpenApiTypes.STR, 404: NOT_FOUND})
    def delete(self, request):
        """Delete = decline: the recommendation leaves the list; its history stays."""
        rec_id = _int_param(request.query_params.get("recommendation_id"), "recommendation_id")
        sequence_id = request.query_params.get("sequence_id")
        serial = request.query_params.get("serial_number")
        qs = _recommendations_of(request.user).filter(status=RecommendationStatus.PENDING)
        if rec_id is not None:
            recs, label = list(qs.filter(pk=rec_id)), f"id {rec_id}"
        elif sequence_id and serial:
            recs = list(qs.filter(cycle__sequence_id=sequence_id, device__serial_number=serial))
            label = f"sequence_id {sequence_id}"
        else:
            raise CompatError(400, "give recommendation_id, or both sequence_id and serial_number")
        if not recs:
            raise CompatError(404, f"recommendation with {label} not found")
        for rec in recs:
            decline_recommendation(rec)
        return Response(f"Recommendation with {label} was deleted")


class DelayStatusSerializer(serializers.Serializer):
    delay_call_ok = serializers.BooleanField()
    delay_call_description = serializers.CharField(required=False, allow_blank=True)


class RecommendationAcceptView(CompatView):
    permission_classes = [HouseholdOnly]

    @extend_schema(parameters=[CORRELATION_ID, RECOMMENDATION_ID], request=DelayStatusSerializer,
                   responses={200: OpenApiTypes.STR, 202: AcceptedSerializer, 404: NOT_FOUND,
                              409: error("The recommendation can no longer be accepted.")})
    def post(self, request):
        rec_id = _int_param(request.query_params.get("recommendation_id"), "recommendation_id")
        if rec_id is None:
            raise CompatError(400, "missing recommendation_id query parameter")
        body = DelayStatusSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        rec = _recommendations_of(request.user).filter(pk=rec_id).first()
        if rec is None:
            raise CompatError(404, f"recommendation with id {rec_id} not found")
        if rec.status == RecommendationStatus.ACCEPTED:
            return Response({"accepted": f"Recommendation {rec_id} already accepted"}, status=202)
        try:
            accept_recommendation(rec)
        except Conflict as exc:
            raise CompatError(409, exc.message)
        return Response(f"Recommendation for cycle {rec.cycle.sequence_id} was accepted by the user")
