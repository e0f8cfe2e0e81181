"""Grid flexibility: portfolios, service accounts, offers, activations.

Tables keep their `flexibility_` names (db_table): these models moved here from the flexibility app.

Per-slot data are JSON arrays of floats (kW, or EUR per kW), one entry per slot
starting at `start`, `resolution_minutes` apart. Slots are absolute instants, so a
delivery day has 92, 96 or 100 quarter-hours.
"""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from devices.models import Home
from devices.permissions import DATA_PROVIDER_ROLE
from flexibility.planning.models import OptimizationRun
from flexibility.planning.slots import RESOLUTION_MIN


def _check_series(obj: models.Model, names: tuple[str, ...], allow_null: bool = False) -> None:
    """Every per-slot array has `slots` entries of numbers (or null where allowed)."""
    for name in names:
        values = getattr(obj, name)
        if values is None:
            continue
        if not isinstance(values, list) or len(values) != obj.slots:
            raise ValidationError({name: f"Must be a list of {obj.slots} values (one per slot)."})
        for i, v in enumerate(values):
            if v is None and allow_null:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValidationError({name: f"{name}[{i}] is not a number."})


class SlotSeriesMixin(models.Model):
    start = models.DateTimeField(help_text="Start of the first slot.")
    resolution_minutes = models.PositiveSmallIntegerField(default=RESOLUTION_MIN)
    slots = models.PositiveIntegerField()

    class Meta:
        abstract = True

    @property
    def end(self):
        return self.start + timedelta(minutes=self.resolution_minutes * self.slots)

    def slot_starts(self) -> list:
        step = timedelta(minutes=self.resolution_minutes)
        return [self.start + i * step for i in range(self.slots)]


class Portfolio(models.Model):
    """A group of homes (by region, feeder, ...) offered together to an operator or aggregator."""

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    homes = models.ManyToManyField(Home, blank=True, related_name="portfolios")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "flexibility_portfolio"
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class ServiceRole(models.TextChoices):
    SYSTEM_OPERATOR = "system_operator", "System operator (DSO/TSO)"
    AGGREGATOR = "aggregator", "Aggregator"
    DATA_PROVIDER = DATA_PROVIDER_ROLE, "Data provider (prices, CO2 intensity, forecasts)"


GRID_ROLES = {ServiceRole.SYSTEM_OPERATOR, ServiceRole.AGGREGATOR}  # who may use the flexibility endpoints


class ServiceAccount(models.Model):
    """A machine client of the operator API; not a household user and not a Django user.

    The API key is `<key_prefix>.<secret>`; only its SHA-256 is stored (the secret has
    256 bits of entropy, so a fast hash is enough) and the key is shown once.
    """

    name = models.CharField(max_length=120, unique=True)
    role = models.CharField(max_length=24, choices=ServiceRole.choices, default=ServiceRole.AGGREGATOR)
    key_prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    portfolios = models.ManyToManyField(Portfolio, blank=True, related_name="service_accounts")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "flexibility_serviceaccount"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.role})"

    # DRF's IsAuthenticated checks request.user.is_authenticated: a service account is one.
    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False


class FlexibilityOffer(SlotSeriesMixin):
    """A home's flexibility for one delivery day, from the optimizer's envelope.

    baseline_kw is the planned net import; min_kw/max_kw the lowest/highest net import
    the home can hold in each slot (everything else still met); prices are the
    opportunity cost per kW of moving up (to max) or down (to min) in that slot.
    """

    home = models.ForeignKey(Home, on_delete=models.CASCADE, related_name="flexibility_offers")
    delivery_day = models.DateField(help_text="Local calendar day of the home.")
    gate_closure = models.DateTimeField(help_text="After this instant the offer is frozen.")
    frozen = models.BooleanField(default=False)
    run = models.ForeignKey(
        OptimizationRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="offers"
    )
    baseline_kw = models.JSONField()
    min_kw = models.JSONField()
    max_kw = models.JSONField()
    price_up_eur_per_kw = models.JSONField()
    price_down_eur_per_kw = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "flexibility_flexibilityoffer"
        ordering = ["delivery_day", "home_id"]
        constraints = [models.UniqueConstraint(fields=["home", "delivery_day"], name="one_offer_per_home_per_day")]
        indexes = [models.Index(fields=["delivery_day", "home"])]

    def __str__(self) -> str:
        return f"Offer {self.home} {self.delivery_day}"

    def clean(self) -> None:
        _check_series(self, ("baseline_kw", "min_kw", "max_kw", "price_up_eur_per_kw", "price_down_eur_per_kw"))
        for i, (lo, base, hi) in enumerate(zip(self.min_kw, self.baseline_kw, self.max_kw)):
            if not (lo - 1e-6 <= base <= hi + 1e-6):
                raise ValidationError({"baseline_kw": f"Slot {i}: baseline {base} is outside [{lo}, {hi}]."})
        for name in ("price_up_eur_per_kw", "price_down_eur_per_kw"):
            if any(p < 0 for p in getattr(self, name)):
                raise ValidationError({name: "Prices must not be negative."})


class ActivationStatus(models.TextChoices):
    PLANNING = "planning", "Re-planning homes"
    PLANNED = "planned", "Planned and dispatched"
    PARTIAL = "partial", "Some homes could not follow"
    FAILED = "failed", "No home could follow"


class ActivationMode(models.TextChoices):
    SETPOINT = "setpoint", "Setpoints of net import"
    BOUNDS = "bounds", "Bounds on net import"


class Activation(SlotSeriesMixin):
    """An operator's request on a home's or a portfolio's net import over some slots.

    requested_min_kw/requested_max_kw hold the request per slot (null = free slot);
    a setpoint request has both equal.
    """

    service_account = models.ForeignKey(
        ServiceAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="activations"
    )
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    portfolio = models.ForeignKey(Portfolio, null=True, blank=True, on_delete=models.PROTECT, related_name="activations")
    home = models.ForeignKey(Home, null=True, blank=True, on_delete=models.CASCADE, related_name="activations")
    delivery_day = models.DateField()
    mode = models.CharField(max_length=16, choices=ActivationMode.choices)
    requested_min_kw = models.JSONField()
    requested_max_kw = models.JSONField()
    status = models.CharField(max_length=16, choices=ActivationStatus.choices, default=ActivationStatus.PLANNING)
    external_id = models.CharField(max_length=120, blank=True, help_text="The caller's reference (e.g. data point).")
    cost_eur = models.FloatField(default=0.0, help_text="Opportunity cost of the split, from the offers' prices.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    planned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "flexibility_activation"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        target = self.portfolio if self.portfolio_id else self.home
        return f"Activation {self.pk} of {target} ({self.status})"

    def clean(self) -> None:
        if bool(self.portfolio_id) == bool(self.home_id):
            raise ValidationError({"home": "Give exactly one of home and portfolio."})
        _check_series(self, ("requested_min_kw", "requested_max_kw"), allow_null=True)
        for i, (lo, hi) in enumerate(zip(self.requested_min_kw, self.requested_max_kw)):
            if lo is not None and hi is not None and lo > hi + 1e-9:
                raise ValidationError({"requested_min_kw": f"Slot {i}: minimum {lo} is above maximum {hi}."})
        if all(v is None for v in self.requested_min_kw + self.requested_max_kw):
            raise ValidationError({"requested_min_kw": "The activation constrains no slot."})


class ShareStatus(models.TextChoices):
    QUEUED = "queued", "Queued for re-planning"
    PLANNED = "planned", "Planned and dispatched"
    INFEASIBLE = "infeasible", "The home cannot follow its share"
    FAILED = "failed", "Re-planning failed"


class ActivationShare(models.Model):
    """One home's part of an activation: the bounds its re-plan must respect."""

    activation = models.ForeignKey(Activation, on_delete=models.CASCADE, related_name="shares")
    home = models.ForeignKey(Home, on_delete=models.CASCADE, related_name="activation_shares")
    offer = models.ForeignKey(FlexibilityOffer, null=True, blank=True, on_delete=models.SET_NULL, related_name="shares")
    target_kw = models.JSONField(help_text="Allocated net import per activation slot (null = free).")
    min_kw = models.JSONField(help_text="Hard lower bound per activation slot (null = none).")
    max_kw = models.JSONField(help_text="Hard upper bound per activation slot (null = none).")
    cost_eur = models.FloatField(default=0.0)
    run = models.ForeignKey(
        OptimizationRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="activation_shares"
    )
    status = models.CharField(max_length=16, choices=ShareStatus.choices, default=ShareStatus.QUEUED)
    planned_kw = models.JSONField(null=True, blank=True, help_text="Net import of the new plan per activation slot.")
    message = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "flexibility_activationshare"
        ordering = ["activation_id", "home_id"]
        constraints = [models.UniqueConstraint(fields=["activation", "home"], name="one_share_per_home_per_activation")]

    def __str__(self) -> str:
        return f"Share of {self.home} in activation {self.activation_id} ({self.status})"
