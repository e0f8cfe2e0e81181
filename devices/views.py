"""Household API: homes, hubs, devices, cycles, EV sessions, comfort; signals, telemetry and tariffs read-only.

Views are thin: querysets come from selectors (scoped to the user, so another
user's object is a 404) and writes go through services.
"""
from __future__ import annotations

from typing import Any

import django_filters
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.utils.module_loading import import_string
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.settings import api_settings

from energy_manager.api_input import InstantFilter

from . import selectors, services, signal_ingest
from .models import MinimumState
from .serializers import MinimumStateSerializer
from .models import (
    Cycle, CycleState, Device, DeviceType, EVSession, Home, Hub, Measurement, SignalKind, SignalSeries, Tariff,
)
from .permissions import CanUseSignals, IsStaff
from .serializers import (
    CircuitSerializer, ComfortPreferenceSerializer, CycleSerializer, DeviceSerializer, EVSessionSerializer, HomeSerializer,
    HubClaimSerializer, HubRegisterSerializer, HubSerializer, MeasurementSerializer, SignalSeriesSerializer,
    SignalBulkResultSerializer, SignalBulkSerializer, SignalEnvelopeSerializer, SignalWriteSerializer, TariffSerializer,
)


class ServiceModelViewSet(viewsets.ModelViewSet):
    """ModelViewSet whose create/update/destroy call a service instead of `serializer.save()`."""

    def new_instance(self, data: dict[str, Any]) -> models.Model:
        return self.get_serializer().Meta.model()

    def save_instance(self, instance: models.Model, data: dict[str, Any]) -> models.Model:
        raise NotImplementedError

    def perform_create(self, serializer) -> None:
        serializer.instance = self.save_instance(self.new_instance(serializer.validated_data), serializer.validated_data)

    def perform_update(self, serializer) -> None:
        serializer.instance = self.save_instance(serializer.instance, serializer.validated_data)


# --- filters -------------------------------------------------------------------------

class WindowFilterSet(django_filters.FilterSet):
    """?start=&end=: objects whose [window_start, window_end) overlaps [start, end)."""

    window_fields: tuple[str, str] = ("", "")
    start = InstantFilter(method="filter_start", help_text="Overlaps on or after this instant.")
    end = InstantFilter(method="filter_end", help_text="Overlaps before this instant.")

    def filter_start(self, qs, name, value):
        return qs.filter(**{f"{self.window_fields[1]}__gt": value})

    def filter_end(self, qs, name, value):
        return qs.filter(**{f"{self.window_fields[0]}__lt": value})


class HubFilter(django_filters.FilterSet):
    home = django_filters.NumberFilter(field_name="home_id")

    class Meta:
        model = Hub
        fields = ["home", "online"]


class DeviceFilter(django_filters.FilterSet):
    home = django_filters.NumberFilter(field_name="home_id")
    hub = django_filters.NumberFilter(field_name="hub_id")
    device_type = django_filters.ChoiceFilter(choices=DeviceType.choices)

    class Meta:
        model = Device
        fields = ["home", "hub", "device_type", "allow_hems", "automatic_management"]


class CycleFilter(WindowFilterSet):
    window_fields = ("earliest_start", "latest_end")
    device = django_filters.NumberFilter(field_name="device_id")
    home = django_filters.NumberFilter(field_name="device__home_id")
    state = django_filters.MultipleChoiceFilter(choices=CycleState.choices)

    class Meta:
        model = Cycle
        fields = ["device", "home", "state", "start", "end"]


class EVSessionFilter(WindowFilterSet):
    window_fields = ("arrival", "departure")
    device = django_filters.NumberFilter(field_name="device_id")
    home = django_filters.NumberFilter(field_name="device__home_id")

    class Meta:
        model = EVSession
        fields = ["device", "home", "start", "end"]


class SignalFilter(django_filters.FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=SignalKind.choices)
    area = django_filters.CharFilter()
    home = django_filters.NumberFilter(field_name="home_id")
    device = django_filters.NumberFilter(field_name="device_id")
    start = InstantFilter(method="filter_range", help_text="Series covering time after this.")
    end = InstantFilter(method="filter_range", help_text="Series covering time before this.")

    class Meta:
        model = SignalSeries
        fields = ["kind", "area", "home", "device", "start", "end"]

    def filter_range(self, qs, name, value):
        return qs  # applied together in filter_queryset, since a series' end is derived

    def filter_queryset(self, queryset):
        qs = super().filter_queryset(queryset)
        return selectors.signals_overlapping(qs, self.form.cleaned_data.get("start"), self.form.cleaned_data.get("end"))


class MeasurementFilter(django_filters.FilterSet):
    home = django_filters.NumberFilter(field_name="home_id")
    device = django_filters.NumberFilter(field_name="device_id")
    start = InstantFilter(field_name="time", lookup_expr="gte")
    end = InstantFilter(field_name="time", lookup_expr="lt")

    class Meta:
        model = Measurement
        fields = ["home", "device", "start", "end"]


# --- homes ---------------------------------------------------------------------------

@extend_schema_view(
    list=extend_schema(summary="The user's homes (staff: all)"),
    create=extend_schema(summary="Create a home owned by the user"),
)
class HomeViewSet(ServiceModelViewSet):
    serializer_class = HomeSerializer
    filterset_fields = ["global_optimizer_opt_in", "tariff_kind"]
    ordering_fields = ["id", "name", "created_at"]

    def get_queryset(self):
        return selectors.homes_for(self.request.user)

    def new_instance(self, data):
        return Home(owner=self.request.user)

    def save_instance(self, instance, data):
        data = dict(data)
        windows = data.pop("do_not_disturb_windows", None)
        return services.home_save(instance, data, windows)

    def perform_destroy(self, instance):
        services.home_delete(instance)


# --- hubs ----------------------------------------------------------------------------

class HubViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Households see and claim/release hubs; operators register, delete and reset hubs."""

    serializer_class = HubSerializer
    filterset_class = HubFilter
    ordering_fields = ["id", "hub_id", "last_seen_at"]

    def get_queryset(self):
        return selectors.hubs_for(self.request.user)

    def get_permissions(self):
        if self.action in ("create", "destroy", "reset_secret"):
            return [*super().get_permissions(), IsStaff()]
        return super().get_permissions()

    def get_serializer_class(self):
        return {"create": HubRegisterSerializer, "claim": HubClaimSerializer}.get(self.action, HubSerializer)

    @extend_schema(summary="Register a hub (operators); the response shows its MQTT secret once",
                   responses={201: HubRegisterSerializer})
    def create(self, request, *args, **kwargs):
        serializer = HubRegisterSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        hub, secret = services.hub_register(**serializer.validated_data)
        body = HubRegisterSerializer(hub, context=self.get_serializer_context()).data
        body["mqtt_secret"] = secret
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Delete a hub (operators)")
    def destroy(self, request, *args, **kwargs):
        return super().destroy(request, *args, **kwargs)

    @extend_schema(
        summary="Claim a hub for one of the user's homes by its printed hub_id",
        request=HubClaimSerializer,
        responses={200: HubSerializer, 404: OpenApiResponse(description="No hub has this hub_id."),
                   409: OpenApiResponse(description="Already claimed by another home.")},
    )
    @action(detail=False, methods=["post"])
    def claim(self, request):
        serializer = HubClaimSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        hub = services.hub_claim(**serializer.validated_data)
        return Response(HubSerializer(hub).data)

    @extend_schema(summary="Release the hub from its home (its devices stay, without hub)", request=None,
                   responses={200: HubSerializer})
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        hub = services.hub_release(self.get_object())
        return Response(HubSerializer(hub).data)

    @extend_schema(summary="New MQTT secret for the hub (operators); shown once", request=None,
                   responses={200: HubRegisterSerializer})
    @action(detail=True, methods=["post"], url_path="reset-secret")
    def reset_secret(self, request, pk=None):
        hub = self.get_object()
        secret = services.hub_reset_secret(hub)
        body = HubRegisterSerializer(hub).data
        body["mqtt_secret"] = secret
        return Response(body)


# --- devices, cycles, EV sessions ----------------------------------------------------

class DeviceViewSet(ServiceModelViewSet):
    serializer_class = DeviceSerializer
    filterset_class = DeviceFilter
    ordering_fields = ["id", "name", "device_type", "created_at"]

    def get_queryset(self):
        return selectors.devices_for(self.request.user)

    def save_instance(self, instance, data):
        return services.device_save(instance, data)

    def perform_destroy(self, instance):
        services.device_delete(instance)

    @extend_schema(methods=["GET"], summary="The device's comfort preference (defaults when never set)",
                   responses={200: ComfortPreferenceSerializer})
    @extend_schema(methods=["PUT"], summary="Replace the device's comfort preference",
                   request=ComfortPreferenceSerializer, responses={200: ComfortPreferenceSerializer})
    @action(detail=True, methods=["get", "put"], serializer_class=ComfortPreferenceSerializer, filterset_class=None)
    def comfort(self, request, pk=None):
        device = self.get_object()
        if request.method == "GET":
            return Response(ComfortPreferenceSerializer(selectors.comfort_for(device)).data)
        serializer = ComfortPreferenceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(ComfortPreferenceSerializer(services.comfort_save(device, serializer.validated_data)).data)


class CycleViewSet(ServiceModelViewSet):
    serializer_class = CycleSerializer
    filterset_class = CycleFilter
    ordering_fields = ["earliest_start", "latest_end", "id"]

    def get_queryset(self):
        return selectors.cycles_for(self.request.user)

    def save_instance(self, instance, data):
        return services.cycle_save(instance, data)

    def perform_destroy(self, instance):
        services.cycle_delete(instance)


class EVSessionViewSet(ServiceModelViewSet):
    serializer_class = EVSessionSerializer
    filterset_class = EVSessionFilter
    ordering_fields = ["arrival", "departure", "id"]

    def get_queryset(self):
        return selectors.ev_sessions_for(self.request.user)

    def save_instance(self, instance, data):
        return services.ev_session_save(instance, data)

    def perform_destroy(self, instance):
        services.ev_session_delete(instance)


class MinimumStateFilter(django_filters.FilterSet):
    device = django_filters.NumberFilter(field_name="device_id")
    home = django_filters.NumberFilter(field_name="device__home_id")

    class Meta:
        model = MinimumState
        fields = ["device", "home"]


class MinimumStateViewSet(ServiceModelViewSet):
    """Issue 14: minimum states of batteries and EVs (backup before a storm, a trip)."""

    serializer_class = MinimumStateSerializer
    filterset_class = MinimumStateFilter
    ordering_fields = ["at", "id"]

    def get_queryset(self):
        return selectors.minimum_states_for(self.request.user)

    def save_instance(self, instance, data):
        return services.minimum_state_save(instance, data)

    def perform_destroy(self, instance):
        services.minimum_state_delete(instance)


# --- read-only -----------------------------------------------------------------------

def _signal_authentication() -> list:
    """Households' and operators' logins, plus the service-account key scheme named in settings
    (the accounts belong to the grid layer above; this layer is given its authenticator)."""
    return [*api_settings.DEFAULT_AUTHENTICATION_CLASSES,
            *[import_string(path) for path in settings.SIGNAL_WRITER_AUTHENTICATION]]


@extend_schema_view(
    create=extend_schema(
        summary="Store many series at once (prices, CO2, forecasts)",
        description="All or nothing; each series replaces stored series of the same kind and scope (area, home, "
                    "device) that it overlaps, so sending it again changes nothing. Households write forecasts and "
                    "prices of their own homes only; operators and data-provider service accounts write any.",
        request=SignalBulkSerializer, responses={201: SignalBulkResultSerializer}),
)
class SignalViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Prices, CO2 and forecasts: area-wide series plus the user's own homes' series."""

    serializer_class = SignalSeriesSerializer
    filterset_class = SignalFilter
    ordering_fields = ["start", "id"]
    permission_classes = [CanUseSignals]

    def get_authenticators(self):
        return [auth() for auth in _signal_authentication()]

    def get_queryset(self):
        return selectors.signals_for(self.request.user)

    def create(self, request, *args, **kwargs):
        """Each series is checked on its own, then the good ones against the stored data and each other,
        so one answer names every bad field of the request."""
        envelope = SignalEnvelopeSerializer(data=request.data)
        envelope.is_valid(raise_exception=True)
        per_item: dict[int, dict] = {}  # {index: field errors}: the error body names them series[index].field
        items, names = [], []
        for i, raw in enumerate(envelope.validated_data["series"]):
            item = SignalWriteSerializer(data=raw, context=self.get_serializer_context())
            if item.is_valid():
                items.append(item.validated_data)
                names.append(f"series[{i}]")
            else:
                per_item[i] = item.errors
        errors: dict = {"series": per_item} if per_item else {}
        try:
            result = signal_ingest.ingest(items, names, validate_only=bool(errors))
        except DjangoValidationError as exc:
            errors.update(exc.message_dict)  # already named series[i].field
        if errors:
            raise serializers.ValidationError(errors)
        return Response({"stored": result.created, "replaced": result.replaced}, status=status.HTTP_201_CREATED)


class MeasurementViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Telemetry of the user's homes and devices, oldest first."""

    serializer_class = MeasurementSerializer
    filterset_class = MeasurementFilter
    ordering_fields = ["time"]

    def get_queryset(self):
        return selectors.measurements_for(self.request.user)


class TariffViewSet(ServiceModelViewSet):
    """Public tariffs (built-in ones documented in their `source`) and the household's own.

    A household creates tariffs of its own (only its homes may use them) and edits only those;
    operators edit all and create public ones.
    """

    serializer_class = TariffSerializer
    pagination_class = None
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return selectors.tariffs()
        qs = selectors.tariffs_for(self.request.user)
        if self.request.method not in ("GET", "HEAD", "OPTIONS") and not self.request.user.is_staff:
            qs = qs.filter(owner=self.request.user)  # public tariffs are read-only for households: 404
        return qs

    def new_instance(self, data):
        return Tariff(owner=None if self.request.user.is_staff else self.request.user)

    def save_instance(self, instance, data):
        return services.tariff_save(instance, data)

    def perform_destroy(self, instance):
        services.tariff_delete(instance)



# --- shared circuits (issue 14, item 4) ----------------------------------------------

class CircuitViewSet(ServiceModelViewSet):
    """Shared circuits: a kW limit on the summed power of named devices (two chargers on one breaker)."""

    serializer_class = CircuitSerializer
    filterset_fields = ["home"]
    ordering_fields = ["id", "name"]

    def get_queryset(self):
        return selectors.circuits_for(self.request.user)

    def save_instance(self, instance, data):
        return services.circuit_save(instance, data)

    def perform_destroy(self, instance):
        services.circuit_delete(instance)
