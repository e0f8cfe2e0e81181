"""Optimization runs, their schedules, recommendations and day-ahead fleet runs.

Tables keep the `flexibility_` prefix: the app label stays "flexibility" (see apps.py).
"""
from __future__ import annotations

from django.conf import settings
from django.db import models

from devices.models import Cycle, Device, Home


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    INFEASIBLE = "infeasible", "Infeasible"
    FAILED = "failed", "Failed"


FINAL_RUN_STATUSES = {RunStatus.SUCCEEDED, RunStatus.INFEASIBLE, RunStatus.FAILED}


class RunTrigger(models.TextChoices):
    API = "api", "Requested through the API"
    DAY_AHEAD = "day_ahead", "Day-ahead fleet run"
    REOPTIMIZE = "reoptimize", "Re-optimization (new cycle, preference or forecast)"
    ACTIVATION = "activation", "Grid flexibility activation"


class OptimizationRun(models.Model):
    """One request to plan a home: recorded first, solved by a worker, written once."""

    home = models.ForeignKey(Home, on_delete=models.CASCADE, related_name="optimization_runs")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    trigger = models.CharField(max_length=16, choices=RunTrigger.choices, default=RunTrigger.API)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    input_hash = models.CharField(max_length=64, db_index=True)
    problem = models.JSONField(help_text="Snapshot of the optimizer problem (flexibility/optimizer/FORMAT.md).")
    backend = models.CharField(max_length=16, default="auto")
    time_limit_s = models.FloatField(default=10.0)
    horizon_start = models.DateTimeField()
    horizon_end = models.DateTimeField()
    queued_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    task_id = models.CharField(max_length=64, blank=True)
    solver_status = models.CharField(max_length=24, blank=True)
    solver_stats = models.JSONField(default=dict, blank=True)
    explanation = models.JSONField(default=list, blank=True, help_text="Why the problem is infeasible, in words.")
    error = models.TextField(blank=True)
    last_enqueued_at = models.DateTimeField(null=True, blank=True, help_text="When a task for this run was last sent.")
    requeues = models.PositiveIntegerField(default=0, help_text="Times the reaper sent the run again.")
    fleet_run = models.ForeignKey(
        "FleetRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )

    class Meta:
        ordering = ["-queued_at", "-id"]
        indexes = [models.Index(fields=["home", "input_hash", "queued_at"]), models.Index(fields=["status", "queued_at"])]

    def __str__(self) -> str:
        return f"Run {self.pk} of {self.home} ({self.status})"


class Schedule(models.Model):
    """The plan a successful run produced. One per run; written once."""

    run = models.OneToOneField(OptimizationRun, on_delete=models.CASCADE, related_name="schedule")
    home = models.ForeignKey(Home, on_delete=models.CASCADE, related_name="schedules")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    start = models.DateTimeField()
    resolution_minutes = models.PositiveSmallIntegerField()
    slots = models.PositiveIntegerField()
    cost_eur = models.FloatField()
    co2_kg = models.FloatField()
    baseline_cost_eur = models.FloatField()
    baseline_co2_kg = models.FloatField()
    savings_eur = models.FloatField()
    net_import_kw = models.JSONField(help_text="Per slot; negative = export.")
    devices = models.JSONField(help_text="Per device: power_kw per slot, start/end for cycles, SoC trajectories.")
    baseline_net_import_kw = models.JSONField(default=list, blank=True,
                                              help_text="Per slot, the unoptimized plan the savings are counted against.")
    reasons = models.JSONField(default=list, blank=True,
                               help_text="Per device: what the plan does and why, and the device's own saving (EUR).")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["home", "-created_at"])]

    def __str__(self) -> str:
        return (f"Plan of {self.home} from {self.start.astimezone(self.home.tzinfo):%d %b %H:%M} "
                f"({self.slots} slots, saves {self.savings_eur:.2f} EUR)")


class RecommendationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    SUPERSEDED = "superseded", "Superseded by a newer plan"


class Recommendation(models.Model):
    """A proposal to move one shiftable cycle."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="recommendations")
    home = models.ForeignKey(Home, on_delete=models.CASCADE, related_name="recommendations")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="recommendations")
    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="recommendations")
    current_start = models.DateTimeField(null=True, blank=True)
    recommended_start = models.DateTimeField()
    recommended_end = models.DateTimeField()
    saving_eur = models.FloatField()
    status = models.CharField(max_length=16, choices=RecommendationStatus.choices, default=RecommendationStatus.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["schedule", "cycle"], name="one_recommendation_per_cycle_per_schedule")]

    def __str__(self) -> str:
        return (f"{self.device.name}: start {self.recommended_start.astimezone(self.home.tzinfo):%d %b %H:%M} "
                f"({self.status})")


class FleetRun(models.Model):
    """Summary of one day-ahead fan-out: the opted-in homes of one time zone (or all, when started by hand)."""

    delivery_day = models.DateField()
    timezone = models.CharField(max_length=64, blank=True, help_text="IANA zone of its homes; empty = every zone.")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    homes = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True, help_text="Runs per status.")
    duration_s = models.FloatField(null=True, blank=True)
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Day-ahead {self.delivery_day} {self.timezone or 'all zones'} ({self.homes} homes)"
