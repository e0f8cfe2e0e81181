"""Admin for optimization runs, schedules, recommendations and fleet runs: records the services write, so
view-only. Charts of plans and fleet runs are added by the insights part's admin templates."""
from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html_join

from energy_manager.admin_records import ReadOnlyRecordAdmin, pretty_json

from . import services
from .models import FleetRun, OptimizationRun, Recommendation, Schedule


@admin.register(OptimizationRun)
class OptimizationRunAdmin(ReadOnlyRecordAdmin):
    list_display = ["id", "home", "status", "trigger", "solver_status", "attempts", "requeues", "queued_at",
                    "started_at", "finished_at", "short_error"]
    list_filter = ["status", "trigger", "solver_status", "backend"]
    search_fields = ["=id", "home__name", "input_hash", "error"]
    date_hierarchy = "queued_at"
    raw_id_fields = ["home", "requested_by", "fleet_run"]
    fields = ["home", "status", "trigger", "requested_by", "fleet_run", "backend", "time_limit_s", "horizon_start",
              "horizon_end", "queued_at", "started_at", "finished_at", "attempts", "requeues", "task_id",
              "solver_status", "solver_stats_json", "explanation", "error", "input_hash", "problem_json"]
    readonly_fields = fields

    @admin.display(description="solver statistics")
    def solver_stats_json(self, run: OptimizationRun) -> str:
        return pretty_json(run.solver_stats)

    @admin.display(description="problem (what the optimizer was told)")
    def problem_json(self, run: OptimizationRun) -> str:
        return pretty_json(run.problem)

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
class ScheduleAdmin(ReadOnlyRecordAdmin):
    list_display = ["__str__", "home", "run", "created_at", "start", "slots", "cost_eur", "baseline_cost_eur",
                    "savings_eur", "co2_kg"]
    list_filter = ["created_at"]
    search_fields = ["home__name", "=run__id"]
    raw_id_fields = ["run", "home"]
    date_hierarchy = "created_at"
    inlines = [RecommendationInline]
    fields = ["home", "run", "created_at", "start", "resolution_minutes", "slots", "cost_eur", "baseline_cost_eur",
              "savings_eur", "co2_kg", "baseline_co2_kg", "reason_list"]
    readonly_fields = fields

    @admin.display(description="reasons")
    def reason_list(self, schedule: Schedule) -> str:
        return format_html_join("", "<div>{}</div>", ((r["text"],) for r in schedule.reasons)) or "-"


@admin.register(Recommendation)
class RecommendationAdmin(ReadOnlyRecordAdmin):
    list_display = ["__str__", "home", "device", "cycle", "current_start", "recommended_start", "saving_eur", "status"]
    list_filter = ["status"]
    raw_id_fields = ["schedule", "home", "device", "cycle"]


@admin.register(FleetRun)
class FleetRunAdmin(ReadOnlyRecordAdmin):
    list_display = ["id", "delivery_day", "timezone", "homes", "runs_per_status", "chunks_done", "chunks_total",
                    "started_at", "finished_at", "duration_s"]
    list_filter = ["timezone"]
    date_hierarchy = "started_at"
    actions = ["refresh"]

    @admin.display(description="runs per status")
    def runs_per_status(self, fleet: FleetRun) -> str:
        return ", ".join(f"{status} {n}" for status, n in sorted(fleet.counts.items())) or "-"

    @admin.action(description="Refresh the counts per status")
    def refresh(self, request, queryset):
        services.refresh_fleet_summaries(list(queryset.values_list("pk", flat=True)))
