"""Household API: the commands sent to their devices, and what became of them (read only)."""
from __future__ import annotations

import django_filters
from rest_framework import serializers, viewsets

from energy_manager.api_input import InstantFilter

from . import selectors
from .models import CommandKind, CommandState, HubCommand


class HubCommandSerializer(serializers.ModelSerializer):
    device_serial = serializers.CharField(source="device.serial_number", read_only=True)
    hub_id = serializers.CharField(source="hub.hub_id", read_only=True)

    class Meta:
        model = HubCommand
        fields = ["command_id", "device", "device_serial", "hub_id", "kind", "parameters", "not_before", "expires_at",
                  "state", "run", "recommendation", "created_at", "send_count", "sent_at", "acknowledged_at",
                  "finished_at", "message"]
        read_only_fields = fields


class HubCommandFilter(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=CommandState.choices)
    kind = django_filters.ChoiceFilter(choices=CommandKind.choices)
    created_after = InstantFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = HubCommand
        fields = ["device", "run", "state", "kind"]


class HubCommandViewSet(viewsets.ReadOnlyModelViewSet):
    """`GET /api/v1/commands` (filters: device, run, state, kind, created_after) and `/commands/<command_id>`."""

    serializer_class = HubCommandSerializer
    filterset_class = HubCommandFilter
    lookup_field = "command_id"
    ordering_fields = ["created_at", "state"]

    def get_queryset(self):
        return selectors.commands_for(self.request.user)
