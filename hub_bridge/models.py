"""The command outbox: every command to a hub, from its cause to its outcome."""
from __future__ import annotations

import uuid

from django.db import models

from devices.models import Device, Hub


class CommandKind(models.TextChoices):
    START_CYCLE = "start_cycle", "Start a cycle at a time"
    DELAY_CYCLE = "delay_cycle", "Delay a cycle"
    CANCEL_CYCLE = "cancel_cycle", "Cancel a cycle"
    SET_EV_POWER = "set_ev_power", "Set EV charging power/current"
    SET_BATTERY_SETPOINT = "set_battery_setpoint", "Set battery setpoint"
    SET_THERMAL_SETPOINT = "set_thermal_setpoint", "Set thermal setpoint/mode"
    SET_HEAT_PUMP_SETPOINT = "set_heat_pump_setpoint", "Set space-heating heat pump indoor setpoint/power"
    RELEASE_CONTROL = "release_control", "Release control to the device"


class CommandState(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    EXECUTED = "executed", "Executed"
    REJECTED = "rejected", "Rejected"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"


FINAL_COMMAND_STATES = {CommandState.EXECUTED, CommandState.REJECTED, CommandState.FAILED, CommandState.EXPIRED}


class HubCommand(models.Model):
    command_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    hub = models.ForeignKey(Hub, on_delete=models.CASCADE, related_name="commands")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="commands")
    kind = models.CharField(max_length=32, choices=CommandKind.choices)
    parameters = models.JSONField(default=dict, blank=True)
    not_before = models.DateTimeField()
    expires_at = models.DateTimeField()
    state = models.CharField(max_length=16, choices=CommandState.choices, default=CommandState.QUEUED, db_index=True)
    run = models.ForeignKey(
        "flexibility.OptimizationRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="commands"
    )
    recommendation = models.ForeignKey(
        "flexibility.Recommendation", null=True, blank=True, on_delete=models.SET_NULL, related_name="commands"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    send_count = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["hub", "state"]), models.Index(fields=["state", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.kind} to {self.device.name} ({self.device.serial_number}), {self.state}"


class RejectedMessageCount(models.Model):
    """How many uplink messages the listener refused, per hub (as named by the topic) and reason.

    One row per (hub, reason), incremented after each batch: an operator sees in the admin which
    hub sends what kind of bad message, and the last one's detail. `hub_id` is text, not a key:
    unknown hubs and topics outside the protocol are counted too ("" when no hub is named).
    """

    hub_id = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=32)
    count = models.PositiveBigIntegerField(default=0)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    last_topic = models.CharField(max_length=255, blank=True)
    last_detail = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["hub_id", "reason"], name="rejected_message_count_hub_reason")]
        ordering = ["-last_at"]

    def __str__(self) -> str:
        return f"{self.hub_id or '(no hub)'}: {self.reason} x{self.count}"
