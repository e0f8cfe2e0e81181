"""API shapes for the household/DER domain. Thin: rules live in the models, writes in services."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from energy_manager.api_input import InstantField, StrictFloatField, StrictSerializerMixin

from .models import MinimumState
from .models import (
    CONTRACTED_POWER_STEPS_KVA, Circuit, ComfortPreference, Cycle, Device, DeviceType, DoNotDisturbWindow, EVSession, Home,
    Hub, Measurement, SignalKind, SignalSeries, Tariff,
)
from .permissions import OwnedRelatedField, SignalScopeField, writes_any_scope
from .power_profiles import profile_duration_minutes, profile_energy_wh


class StrictModelSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    """Model serializer whose validation of the whole object is left to the model (via services).

    `create_only_fields` may be given when creating and are read-only afterwards.
    """

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        **{k: {serializers.DateTimeField: InstantField, serializers.FloatField: StrictFloatField}[v]
           for k, v in serializers.ModelSerializer.serializer_field_mapping.items()
           if v in (serializers.DateTimeField, serializers.FloatField)},
    }

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.instance is not None:
            for name in getattr(self.Meta, "create_only_fields", ()):
                fields[name].read_only = True
        return fields


class ObjectJSONField(serializers.JSONField):
    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return super().to_internal_value(data)


class ListJSONField(serializers.JSONField):
    def to_internal_value(self, data):
        if not isinstance(data, list):
            raise serializers.ValidationError("Must be a JSON list.")
        return super().to_internal_value(data)


class ContractedPowerField(serializers.DecimalField):
    """Contracted power in kVA: a number, one of the standard steps."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=5, decimal_places=2, coerce_to_string=False, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value not in {Decimal(v) for v in CONTRACTED_POWER_STEPS_KVA}:
            steps = ", ".join(str(Decimal(v).normalize()) for v in CONTRACTED_POWER_STEPS_KVA)
            raise serializers.ValidationError(f"Must be one of the standard steps: {steps} kVA.")
        return value


# --- homes -----------------------------------------------------------------------

class DoNotDisturbWindowSerializer(StrictModelSerializer):
    class Meta:
        model = DoNotDisturbWindow
        fields = ["weekday", "start_time", "end_time"]


class VisibleTariffField(serializers.SlugRelatedField):
    """A public tariff or one of the user's own; another household's tariff does not exist for them."""

    def get_queryset(self):
        from .selectors import tariffs_for

        request = self.context.get("request")
        return tariffs_for(getattr(request, "user", None))


class HomeSerializer(StrictModelSerializer):
    contracted_power_kva = ContractedPowerField(required=False)
    export_limit_kw = serializers.DecimalField(max_digits=6, decimal_places=2, coerce_to_string=False, required=False)
    tariff = VisibleTariffField(slug_field="code", queryset=Tariff.objects.all(), required=False, allow_null=True,
                                help_text="Tariff code, e.g. pt-tri-hourly-daily. New homes get their country's "
                                          "default tariff when none is given.")
    do_not_disturb_windows = DoNotDisturbWindowSerializer(many=True, required=False,
                                                          help_text="Replaces all windows when given.")
    owner = serializers.PrimaryKeyRelatedField(read_only=True)
    import_limit_kw = serializers.FloatField(read_only=True)

    class Meta:
        model = Home
        fields = [
            "id", "owner", "name", "timezone", "country", "contracted_power_kva", "import_limit_kw", "export_limit_kw",
            "tariff_kind", "tariff", "objective", "objective_cost_weight", "global_optimizer_opt_in",
            "do_not_disturb_windows", "created_at", "updated_at",
        ]
        validators: list = []


# --- hubs ------------------------------------------------------------------------

class HubSerializer(StrictModelSerializer):
    home = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True, help_text="Null once released.")

    class Meta:
        model = Hub
        fields = ["id", "hub_id", "home", "mqtt_username", "online", "last_seen_at", "firmware_version",
                  "created_at", "updated_at"]
        read_only_fields = ["hub_id", "mqtt_username", "online", "last_seen_at", "firmware_version"]


class HubRegisterSerializer(StrictModelSerializer):
    """Operators register a hub; the response carries its MQTT secret once."""

    home = serializers.PrimaryKeyRelatedField(queryset=Home.objects.all(), required=False, allow_null=True)
    mqtt_secret = serializers.CharField(read_only=True, help_text="Shown once; only its hash is stored.")

    class Meta:
        model = Hub
        fields = ["id", "hub_id", "home", "firmware_version", "mqtt_username", "mqtt_secret", "created_at"]
        read_only_fields = ["mqtt_username"]
        validators: list = []


class HubClaimSerializer(StrictSerializerMixin, serializers.Serializer):
    hub_id = serializers.CharField(max_length=64)
    home = OwnedRelatedField(queryset=Home.objects.all(), owner_path="owner")


# --- devices ---------------------------------------------------------------------

class DeviceSerializer(StrictModelSerializer):
    home = OwnedRelatedField(queryset=Home.objects.all(), owner_path="owner")
    hub = OwnedRelatedField(queryset=Hub.objects.all(), owner_path="home__owner", required=False, allow_null=True)
    device_type = serializers.ChoiceField(choices=DeviceType.choices)
    parameters = ObjectJSONField(required=False, help_text="Type-specific parameters; units in the names.")

    class Meta:
        model = Device
        fields = ["id", "home", "hub", "serial_number", "name", "brand", "device_type", "allow_hems",
                  "automatic_management", "parameters", "created_at", "updated_at"]
        create_only_fields = ["home", "device_type"]
        validators: list = []


class ComfortPreferenceSerializer(StrictModelSerializer):
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="Null until first saved.")

    class Meta:
        model = ComfortPreference
        fields = ["device", "battery_reserve_pct", "temperature_min_c", "temperature_max_c", "updated_at"]
        read_only_fields = ["device"]


# --- cycles and EV sessions --------------------------------------------------------

class PowerPhaseSerializer(serializers.Serializer):
    """Documentation shape of one phase (validation is devices.power_profiles)."""

    duration_min = StrictFloatField()
    expected_power_w = StrictFloatField(allow_null=True, required=False)
    max_power_w = StrictFloatField()


@extend_schema_field(PowerPhaseSerializer(many=True))
class PowerProfileField(ListJSONField):
    pass


class CycleSerializer(StrictModelSerializer):
    device = OwnedRelatedField(queryset=Device.objects.all(), owner_path="home__owner")
    sequence_id = serializers.CharField(max_length=80, required=False,
                                        help_text="Unique per device; generated when omitted.")
    power_profile = PowerProfileField(help_text="Phases in execution order.")
    duration_min = serializers.SerializerMethodField()
    energy_wh = serializers.SerializerMethodField()

    class Meta:
        model = Cycle
        fields = ["id", "device", "sequence_id", "program", "earliest_start", "latest_end", "scheduled_start",
                  "state", "power_profile", "duration_min", "energy_wh", "created_at", "updated_at"]
        create_only_fields = ["device"]
        validators: list = []

    def get_duration_min(self, obj: Cycle) -> float:
        return profile_duration_minutes(obj.power_profile)

    def get_energy_wh(self, obj: Cycle) -> float:
        return profile_energy_wh(obj.power_profile)


class EVSessionSerializer(StrictModelSerializer):
    device = OwnedRelatedField(queryset=Device.objects.all(), owner_path="home__owner")
    required_energy_kwh = serializers.FloatField(read_only=True)

    class Meta:
        model = EVSession
        fields = ["id", "device", "arrival", "departure", "energy_kwh", "target_soc_pct", "initial_soc_pct",
                  "vehicle_capacity_kwh", "vehicle_name", "required_energy_kwh", "may_discharge", "min_soc_pct",
                  "export_allowed", "created_at", "updated_at"]
        create_only_fields = ["device"]


class MinimumStateSerializer(StrictModelSerializer):
    """Issue 14: a battery or EV must hold at least `energy_kwh` at `at`."""

    device = OwnedRelatedField(queryset=Device.objects.all(), owner_path="home__owner")

    class Meta:
        model = MinimumState
        fields = ["id", "device", "at", "energy_kwh", "reason", "created_at", "updated_at"]
        create_only_fields = ["device"]


# --- read-only data ------------------------------------------------------------------

class SignalSeriesSerializer(serializers.ModelSerializer):
    end = serializers.DateTimeField(read_only=True)
    values = serializers.ListField(child=serializers.FloatField(), read_only=True)

    class Meta:
        model = SignalSeries
        fields = ["id", "kind", "unit", "area", "home", "device", "start", "end", "resolution_minutes", "values",
                  "source", "created_at"]
        read_only_fields = fields


class SignalWriteSerializer(StrictSerializerMixin, serializers.Serializer):
    """One series to store. Longer than a week is fine: it is stored in week-long pieces."""

    kind = serializers.ChoiceField(choices=SignalKind.choices)
    area = serializers.CharField(max_length=32, required=False, allow_blank=True, default="",
                                 help_text="Bidding zone or country, for area-wide prices and CO2.")
    home = SignalScopeField("owner", queryset=Home.objects.all(), required=False, allow_null=True, default=None)
    device = SignalScopeField("home__owner", queryset=Device.objects.all(), required=False, allow_null=True,
                              default=None, help_text="PV forecasts and heat demand may name their device.")
    start = InstantField()
    resolution_minutes = serializers.ChoiceField(choices=[5, 15, 30, 60])
    values = serializers.JSONField(help_text="Numbers in the kind's unit (EUR/kWh, g/kWh or W), one per slot.")
    source = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")

    def validate_values(self, values):
        """Checked here, not only per stored piece, so an error names the index the client sent."""
        if not isinstance(values, list) or not values:
            raise serializers.ValidationError("Must be a non-empty list of numbers.")
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
                raise serializers.ValidationError(f"values[{i}] is not a number.")
        return values

    def validate(self, data: dict) -> dict:
        user = self.context["request"].user
        if writes_any_scope(user):
            return data
        if data["home"] is None or data["area"]:
            raise serializers.ValidationError(
                {"area" if data["area"] else "home": "Households write signals of their own homes only; "
                                                     "area-wide prices and CO2 come from data providers."})
        if data["kind"] == SignalKind.CO2_INTENSITY:
            raise serializers.ValidationError({"kind": "Households write forecasts and prices of their own homes."})
        return data


MAX_SERIES_PER_REQUEST = 10_000


class SignalBulkSerializer(StrictSerializerMixin, serializers.Serializer):
    """The request body (its schema); the view checks each series on its own (SignalEnvelopeSerializer)."""

    series = SignalWriteSerializer(many=True, allow_empty=False, max_length=MAX_SERIES_PER_REQUEST)


class SignalEnvelopeSerializer(StrictSerializerMixin, serializers.Serializer):
    series = serializers.ListField(child=serializers.DictField(), allow_empty=False, max_length=MAX_SERIES_PER_REQUEST)


class SignalBulkResultSerializer(serializers.Serializer):
    stored = serializers.IntegerField(help_text="Series stored (a long series counts once per week-long piece).")
    replaced = serializers.IntegerField(help_text="Stored series of the same kind and scope that they replaced.")


class MeasurementSerializer(serializers.ModelSerializer):
    class Meta:
        model = Measurement
        fields = ["id", "home", "device", "time", "power_w", "energy_wh", "soc_pct", "temperature_c"]
        read_only_fields = fields


class TariffSerializer(StrictModelSerializer):
    """Public tariffs are read-only for households; a household may add and edit its own."""

    periods = serializers.JSONField(
        help_text="[{days, start, end, price_eur_per_kwh}], local time: the energy price (time of use) or the "
                  "network access fee (dynamic).")
    owner = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True, help_text="Null for public tariffs.")
    decimals = {"max_digits": 8, "decimal_places": 5, "coerce_to_string": False, "required": False}
    spot_multiplier = serializers.DecimalField(**decimals)
    spot_adder_eur_per_kwh = serializers.DecimalField(**decimals)
    vat_pct = serializers.DecimalField(max_digits=5, decimal_places=2, coerce_to_string=False, required=False)
    export_price_eur_per_kwh = serializers.DecimalField(**decimals)
    export_spot_multiplier = serializers.DecimalField(**decimals)
    export_spot_adder_eur_per_kwh = serializers.DecimalField(**decimals)
    capacity_price_eur_per_kw_month = serializers.DecimalField(  # issue 14: capacity (demand) charge
        max_digits=8, decimal_places=4, coerce_to_string=False, required=False, min_value=0)

    class Meta:
        model = Tariff
        fields = ["id", "code", "name", "kind", "country", "owner", "is_default", "periods", "spot_area",
                  "spot_multiplier", "spot_adder_eur_per_kwh", "vat_pct", "export_kind", "export_price_eur_per_kwh",
                  "export_spot_multiplier", "export_spot_adder_eur_per_kwh", "source"]
        fields += ["capacity_price_eur_per_kw_month", "capacity_window_min"]  # issue 14
        read_only_fields = ["is_default", "source"]
        validators: list = []


# --- shared circuits (issue 14, item 4) ----------------------------------------------

class CircuitSerializer(StrictModelSerializer):
    home = OwnedRelatedField(queryset=Home.objects.all(), owner_path="owner")
    devices = OwnedRelatedField(queryset=Device.objects.all(), owner_path="home__owner", many=True, required=False,
                                help_text="Ids of the devices on this breaker or phase (of the same home).")
    limit_kw = StrictFloatField(min_value=0.1, max_value=1000,
                                help_text="The most the devices on it may draw together (kW).")

    class Meta:
        model = Circuit
        fields = ["id", "home", "name", "limit_kw", "devices", "created_at", "updated_at"]
        create_only_fields = ["home"]
        validators: list = []
