"""Admin for grid flexibility: portfolios, service accounts (key shown once), offers, activations."""
from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html_join

from energy_manager.admin_records import ReadOnlyRecordAdmin, pretty_json

from . import selectors as sel
from . import services
from .models import Activation, ActivationShare, FlexibilityOffer, Portfolio, ServiceAccount
from .service_auth import hash_key, new_api_key


@admin.register(Portfolio)
class PortfolioAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "home_count"]
    search_fields = ["code", "name"]
    filter_horizontal = ["homes"]

    @admin.display(description="Homes")
    def home_count(self, obj: Portfolio) -> int:
        return obj.homes.count()


@admin.register(ServiceAccount)
class ServiceAccountAdmin(admin.ModelAdmin):
    list_display = ["name", "role", "key_prefix", "is_active", "last_used_at"]
    list_filter = ["role", "is_active"]
    readonly_fields = ["key_prefix", "created_at", "last_used_at"]
    filter_horizontal = ["portfolios"]
    actions = ["rotate_key"]

    def save_model(self, request, obj: ServiceAccount, form, change) -> None:
        if not change:
            obj.key_prefix, key = new_api_key()
            obj.key_hash = hash_key(key)
            messages.warning(request, f"API key for {obj.name} (shown once, store it now): {key}")
        super().save_model(request, obj, form, change)

    @admin.action(description="Issue a new API key (the old one stops working)")
    def rotate_key(self, request, queryset) -> None:
        for account in queryset:
            key = services.rotate_service_account_key(account)
            messages.warning(request, f"New API key for {account.name} (shown once): {key}")


@admin.register(FlexibilityOffer)
class FlexibilityOfferAdmin(ReadOnlyRecordAdmin):
    list_display = ["__str__", "home", "delivery_day", "slots", "frozen", "gate_closure", "updated_at"]
    list_filter = ["frozen", "delivery_day"]
    search_fields = ["home__name"]
    raw_id_fields = ["home", "run"]
    fields = ["home", "delivery_day", "start", "resolution_minutes", "slots", "gate_closure", "frozen", "run",
              "created_at", "updated_at", "series_json"]
    readonly_fields = fields

    @admin.display(description="per slot (kW, EUR per kW)")
    def series_json(self, offer: FlexibilityOffer) -> str:
        return pretty_json({name: getattr(offer, name) for name in sel.OFFER_SERIES})


class ActivationShareInline(admin.TabularInline):
    model = ActivationShare
    extra = 0
    can_delete = False
    fields = ["home", "status", "cost_eur", "run", "message"]
    readonly_fields = fields


@admin.register(Activation)
class ActivationAdmin(ReadOnlyRecordAdmin):
    list_display = ["id", "portfolio", "home", "delivery_day", "mode", "status", "service_account", "created_at"]
    list_filter = ["status", "mode", "delivery_day"]
    inlines = [ActivationShareInline]
    raw_id_fields = ["home", "portfolio"]
    readonly_fields = ["delivery"]

    @admin.display(description="Delivery: requested / planned / measured (kW)")
    def delivery(self, obj: Activation):
        if not obj.pk:
            return "-"
        rows = sel.delivery(obj)["slots"]

        def fmt(v):
            return "-" if v is None else f"{v:.2f}"

        return format_html_join(
            "", "<div>{}: {}..{} / {} / {}</div>",
            ((r["start"], fmt(r["requested_min_kw"]), fmt(r["requested_max_kw"]), fmt(r["planned_kw"]), fmt(r["measured_kw"])) for r in rows),
        )
