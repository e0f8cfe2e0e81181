"""Thin serializers for the operator / aggregator API (units in the field names)."""
from __future__ import annotations

from rest_framework import serializers

from energy_manager.api_input import InstantField, StrictFloatField, StrictSerializerMixin
from flexibility.planning.slots import RESOLUTION_MIN, SLOT

from .models import Activation, ActivationMode, ActivationShare, FlexibilityOffer, Portfolio

MAX_SLOTS = 100  # one delivery day at 15 min, DST days included


class PortfolioSerializer(serializers.ModelSerializer):
    home_ids = serializers.PrimaryKeyRelatedField(source="homes", many=True, read_only=True)

    class Meta:
        model = Portfolio
        fields = ["id", "code", "name", "description", "home_ids"]


class OfferSerializer(serializers.ModelSerializer):
    class Meta:
        model = FlexibilityOffer
        fields = [
            "id", "home", "delivery_day", "start", "resolution_minutes", "slots", "gate_closure", "frozen",
            "baseline_kw", "min_kw", "max_kw", "price_up_eur_per_kw", "price_down_eur_per_kw", "updated_at",
        ]


class OfferQuerySerializer(serializers.Serializer):
    delivery_day = serializers.DateField()
    portfolio = serializers.IntegerField(required=False, min_value=1)


class ShareSerializer(serializers.ModelSerializer):
    run = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = ActivationShare
        fields = ["home", "status", "target_kw", "min_kw", "max_kw", "planned_kw", "cost_eur", "run", "message"]


class ActivationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Activation
        fields = [
            "id", "home", "portfolio", "delivery_day", "mode", "start", "resolution_minutes", "slots",
            "requested_min_kw", "requested_max_kw", "status", "cost_eur", "external_id", "created_at", "planned_at",
        ]


class ActivationDetailSerializer(ActivationSerializer):
    shares = ShareSerializer(many=True, read_only=True)

    class Meta(ActivationSerializer.Meta):
        fields = ActivationSerializer.Meta.fields + ["shares"]


def _slot_list() -> serializers.ListField:
    return serializers.ListField(child=StrictFloatField(allow_null=True), min_length=1, max_length=MAX_SLOTS, required=False)


class ActivationRequestSerializer(StrictSerializerMixin, serializers.Serializer):
    """Either setpoints_kw (net import per slot) or min_kw / max_kw bounds; null = free slot."""

    home = serializers.IntegerField(required=False, min_value=1)
    portfolio = serializers.IntegerField(required=False, min_value=1)
    start = InstantField(help_text="First slot; aligned to 15 minutes.")
    setpoints_kw = _slot_list()
    min_kw = _slot_list()
    max_kw = _slot_list()
    external_id = serializers.CharField(required=False, allow_blank=True, max_length=120, default="")

    def validate(self, data: dict) -> dict:
        if ("home" in data) == ("portfolio" in data):
            raise serializers.ValidationError({"home": "Give exactly one of home and portfolio."})
        if int(data["start"].timestamp()) % int(SLOT.total_seconds()):
            raise serializers.ValidationError({"start": f"Must be aligned to a {RESOLUTION_MIN}-minute slot."})
        if "setpoints_kw" in data:
            if "min_kw" in data or "max_kw" in data:
                raise serializers.ValidationError({"setpoints_kw": "Give setpoints_kw or min_kw/max_kw, not both."})
            data["mode"] = ActivationMode.SETPOINT
            data["requested_min_kw"] = data["requested_max_kw"] = data.pop("setpoints_kw")
        elif "min_kw" in data or "max_kw" in data:
            n = len(data.get("min_kw") or data.get("max_kw"))
            data["mode"] = ActivationMode.BOUNDS
            data["requested_min_kw"] = data.pop("min_kw", None) or [None] * n
            data["requested_max_kw"] = data.pop("max_kw", None) or [None] * n
            if len(data["requested_min_kw"]) != len(data["requested_max_kw"]):
                raise serializers.ValidationError({"max_kw": "min_kw and max_kw must have the same length."})
        else:
            raise serializers.ValidationError({"setpoints_kw": "Give setpoints_kw, or min_kw and/or max_kw."})
        if all(v is None for v in data["requested_min_kw"] + data["requested_max_kw"]):
            raise serializers.ValidationError({"setpoints_kw": "The activation constrains no slot."})
        return data
