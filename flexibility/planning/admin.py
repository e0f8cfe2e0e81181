"""Admin for optimization runs, schedules, recommendations and fleet runs."""
from __future__ import annotations

from django.contrib import admin

from . import services
from .models import FleetRun, OptimizationRun, Recommendation, Schedule


@admin.register(OptimizationRun)
class OptimizationRunAdmin(admin.ModelAdmin):
    list_display = ["id", "home", "status", "trigger", "solver_status", "attempts", "requeues", "queued_at",
                    "started_at", "finished_at", "short_error"]
    list_filter = ["status", "trigger", "solver_status", "backend"]
    search_fields = ["=id", "home__name", "input_hash", "error"]
    date_hierarchy = "queued_at"
    raw_id_fields = ["home", "requested_by", "fleet_run"]
    readonly_fields = [f.name for f in OptimizationRun._meta.fields]

    @admin.display(description="error")
    def short_error(self, run: OptimizationRun) -> str:
        return (run.error[:120] + "...") if len(run.error) > 120 else run.error


class RecommendationInline(admin.TabularInline):
    model = Recommendation
    extra = 0
    fields = ["device", "cycle", "current_start", "recommended_start", "recommended_end", "saving_eur", "status"]
    readonly_fields = fields
    can_delete = False


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ["id", "home", "run", "created_at", "start", "slots", "cost_eur", "baseline_cost_eur",
                    "savings_eur", "co2_kg"]
    search_fields = ["home__name", "=run__id"]
    raw_id_fields = ["run", "home"]
    date_hierarchy = "created_at"
    inlines = [RecommendationInline]


@admin.register(Recommendation)
class RecommendationAdmin(admin.ModelAdmin):
    list_display = ["id", "home", "device", "cycle", "current_start", "recommended_start", "saving_eur", "status"]
    list_filter = ["status"]
    raw_id_fields = ["schedule", "home", "device", "cycle"]


@admin.register(FleetRun)
class FleetRunAdmin(admin.ModelAdmin):
    list_display = ["id", "delivery_day", "timezone", "homes", "runs_per_status", "chunks_done", "chunks_total",
                    "started_at", "finished_at", "duration_s"]
    list_filter = ["timezone"]
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in FleetRun._meta.fields]
    actions = ["refresh"]

    @admin.display(description="runs per status")
    def runs_per_status(self, fleet: FleetRun) -> str:
        return ", ".join(f"{status} {n}" for status, n in sorted(fleet.counts.items())) or "-"

    @admin.action(description="Refresh the counts per status")
    def refresh(self, request, queryset):
        services.refresh_fleet_summaries(list(queryset.values_list("pk", flat=True)))
