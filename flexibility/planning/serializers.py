"""Thin API shapes for runs, schedules, and recommendations."""
from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from devices.models import Objective
from energy_manager.api_input import InstantField, StrictFloatField, StrictSerializerMixin
from flexibility.optimizer import BACKENDS

from .models import OptimizationRun, Recommendation, Schedule
from .schedule_view import schedule_view
from .services import MAX_TIME_LIMIT_S
from .slots import MAX_HORIZON, MAX_HORIZON_H


class RunRequestSerializer(StrictSerializerMixin, serializers.Serializer):
    """Optional body of POST /homes/{id}/optimizations."""

    horizon_start = InstantField(required=False, help_text="Default: the current 15-minute slot.")
    horizon_end = InstantField(required=False)
    horizon_hours = StrictFloatField(required=False, min_value=0.25, max_value=MAX_HORIZON_H,
                                           help_text="Length from horizon_start when horizon_end is not given.")
    objective = serializers.ChoiceField(choices=Objective.choices, required=False)
    backend = serializers.ChoiceField(choices=BACKENDS, required=False)
    time_limit_s = StrictFloatField(required=False, min_value=0.1, max_value=MAX_TIME_LIMIT_S)
    force = serializers.BooleanField(required=False, default=False, help_text="Run again even if identical input ran recently.")

    def validate(self, attrs: dict) -> dict:
        start, end = attrs.get("horizon_start"), attrs.get("horizon_end")
        if end is not None and "horizon_hours" in attrs:
            raise serializers.ValidationError({"horizon_hours": "Give horizon_end or horizon_hours, not both."})
        if start and end and end <= start:
            raise serializers.ValidationError({"horizon_end": "Must be after horizon_start."})
        if start and end and end - start > MAX_HORIZON:
            raise serializers.ValidationError({"horizon_end": f"The horizon must not exceed {MAX_HORIZON_H} h."})
        return attrs


class PlannedMinimumStateSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    energy_kwh = serializers.FloatField(help_text="Batteries: kWh stored; EVs: kWh charged since plug-in.")


class ScheduleDeviceSerializer(serializers.Serializer):
    item = serializers.CharField(help_text="The plan's item: cycle-<id>, ev-<id>, battery-<id>, pv-<id>, thermal-<id>.")
    device = serializers.IntegerField(allow_null=True, help_text="The device's API id.")
    serial_number = serializers.CharField()
    name = serializers.CharField()
    device_type = serializers.CharField(allow_null=True)
    kind = serializers.CharField()
    label = serializers.CharField(help_text="The optimizer's name for the item (e.g. device and program).")
    power_kw = serializers.ListField(child=serializers.FloatField(), help_text="Per slot; negative = produces.")
    start = serializers.DateTimeField(required=False, help_text="Cycles: planned start.")
    end = serializers.DateTimeField(required=False)
    soc_kwh = serializers.ListField(child=serializers.FloatField(), required=False,
                                    help_text="Batteries, EVs (delivered), water heaters: kWh at each slot boundary.")
    energy_kwh = serializers.FloatField(required=False)
    min_energy_at = PlannedMinimumStateSerializer(many=True, required=False,
                                                  help_text="Minimum states the plan holds (issue 14).")
    throughput_kwh = serializers.FloatField(required=False, help_text="Batteries with a wear cost: kWh in + out.")
    wear_eur = serializers.FloatField(required=False, help_text="Batteries with a wear cost: what the plan wears.")
    saving_eur = serializers.FloatField(allow_null=True, help_text="This device's own saving against the baseline.")
    reason = serializers.CharField(allow_null=True, help_text="What the plan does with the device and why.")
    charge_kw = serializers.ListField(child=serializers.FloatField(), required=False,
                                      help_text="V2G EVs: charging power per slot (power_kw is charge - discharge).")
    discharge_kw = serializers.ListField(child=serializers.FloatField(), required=False,
                                         help_text="V2G EVs: discharging power per slot (to the home or the grid).")
    indoor_temperature_c = serializers.ListField(child=serializers.FloatField(), required=False,
                                                 help_text="Space heating: planned indoor temperature at each slot "
                                                           "boundary (slots + 1 values).")
    comfort_min_c = serializers.ListField(child=serializers.FloatField(), required=False)
    comfort_max_c = serializers.ListField(child=serializers.FloatField(), required=False)
    outdoor_temperature_c = serializers.ListField(child=serializers.FloatField(), required=False)


class ScheduleCircuitSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    limit_kw = serializers.FloatField()
    devices = serializers.ListField(child=serializers.CharField(), help_text="Serial numbers of the devices on it.")
    power_kw = serializers.ListField(child=serializers.FloatField(), help_text="Planned summed power per slot.")


class PlannedCapacityChargeSerializer(serializers.Serializer):
    start = serializers.DateTimeField(help_text="Billing period start.")
    end = serializers.DateTimeField()
    planned_peak_kw = serializers.FloatField(help_text="The plan's highest window average import.")
    peak_floor_kw = serializers.FloatField(help_text="The period's peak before this plan.")
    peak_kw = serializers.FloatField(help_text="The peak billed with this plan.")
    price_eur_per_kw = serializers.FloatField()
    charge_eur = serializers.FloatField(help_text="The period's capacity charge with this plan.")
    added_eur = serializers.FloatField(help_text="What this plan adds to it.")


class ScheduleSerializer(serializers.Serializer):
    """A plan with each slot's start, prices and CO2 beside the powers, devices by API id, and reasons."""

    id = serializers.IntegerField()
    run = serializers.IntegerField()
    home = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    timezone = serializers.CharField(help_text="The home's zone: reasons use its local times.")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    resolution_minutes = serializers.IntegerField()
    slots = serializers.IntegerField()
    slot_starts = serializers.ListField(child=serializers.DateTimeField())
    import_price_eur_per_kwh = serializers.ListField(child=serializers.FloatField())
    export_price_eur_per_kwh = serializers.ListField(child=serializers.FloatField())
    co2_g_per_kwh = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    net_import_kw = serializers.ListField(child=serializers.FloatField(), help_text="Per slot; negative = export.")
    baseline_net_import_kw = serializers.ListField(child=serializers.FloatField(),
                                                   help_text="Per slot, unoptimized: what the savings count against.")
    cost_eur = serializers.FloatField()
    baseline_cost_eur = serializers.FloatField()
    savings_eur = serializers.FloatField()
    co2_kg = serializers.FloatField()
    baseline_co2_kg = serializers.FloatField()
    devices = ScheduleDeviceSerializer(many=True)
    reasons = serializers.ListField(child=serializers.CharField())
    capacity_charges = PlannedCapacityChargeSerializer(many=True, help_text="Issue 14: planned peak and its cost.")
    circuits = ScheduleCircuitSerializer(many=True, help_text="Shared circuits and their planned load.")

    def to_representation(self, instance):
        return super().to_representation(schedule_view(instance) if isinstance(instance, Schedule) else instance)


class RunSerializer(serializers.ModelSerializer):
    status_url = serializers.SerializerMethodField()
    timings = serializers.SerializerMethodField()
    schedule = serializers.SerializerMethodField()

    class Meta:
        model = OptimizationRun
        fields = ["id", "home", "status", "status_url", "trigger", "backend", "time_limit_s", "horizon_start",
                  "horizon_end", "input_hash", "attempts", "requeues", "timings", "solver_status", "solver_stats",
                  "explanation", "error", "schedule"]

    def get_status_url(self, run: OptimizationRun) -> str:
        path = reverse("optimization-run-detail", args=[run.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_timings(self, run: OptimizationRun) -> dict:
        def secs(a, b):
            return None if a is None or b is None else round((b - a).total_seconds(), 3)

        return {"queued_at": run.queued_at, "started_at": run.started_at, "finished_at": run.finished_at,
                "wait_s": secs(run.queued_at, run.started_at), "run_s": secs(run.started_at, run.finished_at),
                "total_s": secs(run.queued_at, run.finished_at)}

    def get_schedule(self, run: OptimizationRun) -> dict | None:
        if not self.context.get("with_schedule"):
            return None
        schedule = Schedule.objects.filter(run=run).first()
        return ScheduleSerializer(schedule).data if schedule else None


class RecommendationSerializer(serializers.ModelSerializer):
    device_name = serializers.CharField(source="device.name", read_only=True)
    cycle_program = serializers.CharField(source="cycle.program", read_only=True)

    class Meta:
        model = Recommendation
        fields = ["id", "home", "schedule", "device", "device_name", "cycle", "cycle_program", "current_start",
                  "recommended_start", "recommended_end", "saving_eur", "status", "created_at", "decided_at"]
        read_only_fields = fields
