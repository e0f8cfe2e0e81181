"""Households, hubs, DERs, cycles, comfort preferences, signals and telemetry.

Models hold data and their invariants (clean()); actions that write live in
services.py, queries in selectors.py.
"""
from __future__ import annotations

import zoneinfo
from datetime import date, datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from .device_parameters import validate_device_parameters
from .power_profiles import profile_duration_minutes, validate_power_profile
from .tariffs import validate_periods

# Standard contracted-power steps (kVA) offered to households (Portugal/Iberia).
CONTRACTED_POWER_STEPS_KVA = (
    "1.15", "2.30", "3.45", "4.60", "5.75", "6.90", "10.35", "13.80",
    "17.25", "20.70", "27.60", "34.50", "41.40",
)
CONTRACTED_POWER_CHOICES = [(Decimal(v), f"{Decimal(v).normalize()} kVA") for v in CONTRACTED_POWER_STEPS_KVA]


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValidationError(f"'{value}' is not an IANA time zone.", code="invalid_timezone")


def require_aware(name: str, value) -> None:
    if value is not None and timezone.is_naive(value):
        raise ValidationError({name: "Must include a time zone offset."})


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class TariffKind(models.TextChoices):
    SIMPLE = "simple", "Simple (flat)"
    BI_HOURLY = "bi_hourly", "Bi-hourly time of use"
    TRI_HOURLY = "tri_hourly", "Tri-hourly time of use"
    DYNAMIC = "dynamic", "Dynamic price series"


class Objective(models.TextChoices):
    ECONOMIC = "economic", "Economic (cost)"
    ECOLOGIC = "ecologic", "Ecologic (CO2)"
    MIXED = "mixed", "Mixed (weighted)"


class ExportKind(models.TextChoices):
    FLAT = "flat", "Flat export price"
    SPOT = "spot", "Spot price times a multiplier plus an adder"


class Tariff(TimeStampedModel):
    """A retail tariff: energy prices per local time-of-use period, or a dynamic price from the spot.

    `periods` is a list of {"days": [0..6], "start": "HH:MM", "end": "HH:MM",
    "price_eur_per_kwh": float}; weekday 0 is Monday; "end" "24:00" closes the day.
    Time-of-use kinds: the period price is the retail energy price. Dynamic kind: the period
    price is the network access fee, and each slot costs
    (spot x spot_multiplier + spot_adder + network fee) x (1 + VAT). Export is paid at the flat
    export price or, for `export_kind` "spot", at spot x export multiplier + export adder.
    """

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=TariffKind.choices)
    country = models.CharField(max_length=2, default="PT")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="tariffs",
        help_text="A household's own tariff (only its homes may use it); empty for public tariffs.",
    )
    is_default = models.BooleanField(
        default=False, help_text="Given to new homes of this country (and kind, when the home names one).")
    periods = models.JSONField()
    spot_area = models.CharField(
        max_length=32, blank=True, help_text="Dynamic: the area whose spot price is used (empty: the home's country).")
    spot_multiplier = models.DecimalField(max_digits=8, decimal_places=5, default=Decimal("1"))
    spot_adder_eur_per_kwh = models.DecimalField(max_digits=8, decimal_places=5, default=Decimal("0"))
    vat_pct = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text="Dynamic: VAT added on top of energy and network fee (%).")
    export_kind = models.CharField(max_length=8, choices=ExportKind.choices, default=ExportKind.FLAT)
    export_price_eur_per_kwh = models.DecimalField(max_digits=8, decimal_places=5, default=Decimal("0"))
    export_spot_multiplier = models.DecimalField(max_digits=8, decimal_places=5, default=Decimal("1"))
    export_spot_adder_eur_per_kwh = models.DecimalField(max_digits=8, decimal_places=5, default=Decimal("0"))
    source = models.TextField(blank=True, help_text="Where these prices come from.")
    # issue 14: a capacity (demand) charge on the month's highest average import over a window
    capacity_price_eur_per_kw_month = models.DecimalField(
        max_digits=8, decimal_places=4, default=Decimal("0"), validators=[MinValueValidator(0)],
        help_text="EUR per kW of the month's highest average import over the window (0 = none).")
    capacity_window_min = models.PositiveSmallIntegerField(
        default=15, choices=[(m, f"{m} min") for m in (15, 30, 60)], help_text="Metering window of the peak.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["country", "kind"], condition=models.Q(is_default=True),
                                               name="tariff_one_default_per_country_and_kind")]

    def __str__(self) -> str:
        return self.name

    @property
    def uses_spot(self) -> bool:
        return self.kind == TariffKind.DYNAMIC or self.export_kind == ExportKind.SPOT

    def clean(self) -> None:
        validate_periods(self.periods)
        if self.owner_id and self.is_default:
            raise ValidationError({"is_default": "A household's own tariff cannot be a default."})


class Home(TimeStampedModel):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="homes")
    name = models.CharField(max_length=120)
    timezone = models.CharField(max_length=64, default="Europe/Lisbon", validators=[validate_timezone])
    country = models.CharField(max_length=2, default="PT")
    contracted_power_kva = models.DecimalField(
        max_digits=5, decimal_places=2, choices=CONTRACTED_POWER_CHOICES, default=Decimal("6.90")
    )
    export_limit_kw = models.DecimalField(
        max_digits=6, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))]
    )
    tariff_kind = models.CharField(max_length=16, choices=TariffKind.choices, default=TariffKind.TRI_HOURLY)
    tariff = models.ForeignKey(Tariff, null=True, blank=True, on_delete=models.PROTECT, related_name="homes")
    objective = models.CharField(max_length=16, choices=Objective.choices, default=Objective.ECONOMIC)
    objective_cost_weight = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Mixed objective only: weight on normalized cost (the rest goes to CO2).",
    )
    global_optimizer_opt_in = models.BooleanField(
        default=False, help_text="Take part in day-ahead runs and grid flexibility offers."
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name

    @property
    def import_limit_kw(self) -> float:
        # Contracted apparent power taken at unity power factor.
        return float(self.contracted_power_kva)

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def local_day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """Local midnight to the next local midnight of `day`, in UTC (23, 24 or 25 hours)."""
        nxt = day + timedelta(days=1)
        start = datetime(day.year, day.month, day.day, tzinfo=self.tzinfo).astimezone(dt_timezone.utc)
        return start, datetime(nxt.year, nxt.month, nxt.day, tzinfo=self.tzinfo).astimezone(dt_timezone.utc)

    def clean(self) -> None:
        if self.tariff_id and self.tariff.kind != self.tariff_kind:
            raise ValidationError({"tariff": f"Tariff kind '{self.tariff.kind}' does not match '{self.tariff_kind}'."})
        if self.tariff_id and self.tariff.owner_id and self.tariff.owner_id != self.owner_id:
            raise ValidationError({"tariff": "This tariff belongs to another household."})


class DoNotDisturbWindow(models.Model):
    """Local-time window on a weekday when noisy appliances must not run."""

    home = models.ForeignKey(Home, on_delete=models.CASCADE, related_name="do_not_disturb_windows")
    weekday = models.PositiveSmallIntegerField(validators=[MaxValueValidator(6)], help_text="0 = Monday")
    start_time = models.TimeField()
    end_time = models.TimeField(help_text="May be earlier than start: the window then runs past midnight.")

    class Meta:
        ordering = ["home_id", "weekday", "start_time"]

    def __str__(self) -> str:
        day = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[self.weekday]
        return f"{day} {self.start_time:%H:%M}-{self.end_time:%H:%M}"

    def clean(self) -> None:
        if self.start_time == self.end_time:
            raise ValidationError({"end_time": "Must differ from start_time."})


class Hub(TimeStampedModel):
    hub_id = models.CharField(
        max_length=64, unique=True, help_text="Public identifier printed on the hub (letters, digits, - and _).",
        validators=[RegexValidator(r"^[A-Za-z0-9_-]{3,64}$", "Use 3-64 letters, digits, '-' or '_'.")],
    )
    home = models.ForeignKey(Home, null=True, blank=True, on_delete=models.SET_NULL, related_name="hubs")
    mqtt_username = models.CharField(max_length=80, unique=True)
    mqtt_password_hash = models.CharField(max_length=256, blank=True)
    online = models.BooleanField(default=False)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    firmware_version = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.hub_id


class DeviceType(models.TextChoices):
    DISHWASHER = "dishwasher", "Dishwasher"
    WASHING_MACHINE = "washing_machine", "Washing machine"
    DRYER = "dryer", "Dryer"
    EV_CHARGER = "ev_charger", "EV charger"
    BATTERY = "battery", "Home battery"
    PV = "pv", "PV system"
    WATER_HEATER = "water_heater", "Water heater"
    HEAT_PUMP = "heat_pump", "Heat pump"
    SPACE_HEATING = "space_heating", "Heat pump (space heating)"  # issue 14 item 5: heats the house itself


SHIFTABLE_TYPES = {DeviceType.DISHWASHER, DeviceType.WASHING_MACHINE, DeviceType.DRYER}
THERMAL_TYPES = {DeviceType.WATER_HEATER, DeviceType.HEAT_PUMP}


class Device(TimeStampedModel):
    """A distributed energy resource behind a hub."""

    home = models.ForeignKey(Home, on_delete=models.CASCADE, related_name="devices")
    hub = models.ForeignKey(Hub, null=True, blank=True, on_delete=models.SET_NULL, related_name="devices")
    serial_number = models.CharField(max_length=80)
    name = models.CharField(max_length=120)
    brand = models.CharField(max_length=80, blank=True)
    device_type = models.CharField(max_length=24, choices=DeviceType.choices)
    allow_hems = models.BooleanField(default=True, help_text="The household lets the HEMS plan this device.")
    automatic_management = models.BooleanField(
        default=False, help_text="Plans are sent to the hub as commands without asking the household."
    )
    parameters = models.JSONField(default=dict, blank=True, help_text="Type-specific parameters (units in names).")

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["home", "serial_number"], name="device_serial_unique_per_home")]

    def __str__(self) -> str:
        return f"{self.name} ({self.serial_number})"

    def clean(self) -> None:
        if self.hub_id and self.home_id and self.hub.home_id != self.home_id:
            raise ValidationError({"hub": "The hub belongs to another home."})
        if self.device_type not in DeviceType.values:
            raise ValidationError({"device_type": f"Unknown device type '{self.device_type}'."})
        self.parameters = validate_device_parameters(self.device_type, self.parameters or {})


class CycleState(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class Cycle(TimeStampedModel):
    """A power sequence of a shiftable appliance (SAREF4ENER-like).

    `power_profile` is a list of phases in execution order:
    {"duration_min": float, "expected_power_w": float | null, "max_power_w": float}.
    """

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="cycles")
    sequence_id = models.CharField(max_length=80)
    program = models.CharField(max_length=120, blank=True)
    earliest_start = models.DateTimeField()
    latest_end = models.DateTimeField()
    scheduled_start = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=CycleState.choices, default=CycleState.SCHEDULED)
    power_profile = models.JSONField()

    class Meta:
        ordering = ["earliest_start", "id"]
        constraints = [models.UniqueConstraint(fields=["device", "sequence_id"], name="cycle_sequence_unique_per_device")]
        indexes = [models.Index(fields=["state", "latest_end"])]

    def __str__(self) -> str:
        return f"{self.device.name} {self.program or self.sequence_id}"

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=profile_duration_minutes(self.power_profile))

    def clean(self) -> None:
        """Every problem at once: the window, each phase, and each phase against the device's rated power."""
        errors: dict[str, str] = {}
        for name in ("earliest_start", "latest_end", "scheduled_start"):
            if getattr(self, name) is not None and timezone.is_naive(getattr(self, name)):
                errors[name] = "Must include a time zone offset."
        if self.device_id and self.device.device_type not in SHIFTABLE_TYPES:
            errors["device"] = "Cycles belong to dishwashers, washing machines and dryers."
        profile_ok = True
        try:
            self.power_profile = validate_power_profile(self.power_profile)
        except ValidationError as exc:
            errors.update({k: v[0] for k, v in exc.message_dict.items()})
            profile_ok = False
        if profile_ok and self.device_id and "device" not in errors:
            rated_kw = self.device.parameters.get("max_power_kw")
            for i, phase in enumerate(self.power_profile if rated_kw is not None else ()):
                if phase["max_power_w"] > rated_kw * 1000:
                    errors[f"power_profile[{i}].max_power_w"] = (
                        f"Exceeds the device's rated power ({rated_kw} kW = {rated_kw * 1000:g} W).")
        if self.earliest_start and self.latest_end and not errors.keys() & {"earliest_start", "latest_end"}:
            if self.latest_end <= self.earliest_start:
                errors["latest_end"] = "Must be after earliest_start."
            elif profile_ok and self.earliest_start + self.duration > self.latest_end:
                errors["power_profile"] = (f"The profile lasts {self.duration} but the window is only "
                                           f"{self.latest_end - self.earliest_start} long.")
            elif profile_ok and self.scheduled_start and not (
                self.earliest_start <= self.scheduled_start <= self.latest_end - self.duration
            ):
                errors["scheduled_start"] = "Must let the cycle run inside its window."
        if errors:
            raise ValidationError(errors)


class ComfortPreference(TimeStampedModel):
    """Per-device comfort: battery reserve and temperature band."""

    device = models.OneToOneField(Device, on_delete=models.CASCADE, related_name="comfort")
    battery_reserve_pct = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Battery: state of charge (%) always kept in reserve.",
    )
    temperature_min_c = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(95)])
    temperature_max_c = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(95)])

    def clean(self) -> None:
        if (self.temperature_min_c is None) != (self.temperature_max_c is None):
            raise ValidationError({"temperature_max_c": "Give both ends of the temperature band."})
        if self.temperature_min_c is not None and self.temperature_max_c <= self.temperature_min_c:
            raise ValidationError({"temperature_max_c": "Must be above temperature_min_c."})
        if self.device_id:
            dtype = self.device.device_type
            if self.battery_reserve_pct is not None and dtype != DeviceType.BATTERY:
                raise ValidationError({"battery_reserve_pct": "Only batteries have a reserve."})
            if self.temperature_min_c is not None and dtype not in THERMAL_TYPES:
                raise ValidationError({"temperature_min_c": "Only water heaters and heat pumps have a temperature band."})


class EVSession(TimeStampedModel):
    """An EV charging session: plugged in at arrival, must have its energy by departure."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="ev_sessions")
    arrival = models.DateTimeField()
    departure = models.DateTimeField()
    energy_kwh = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(200)])
    target_soc_pct = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(100)])
    initial_soc_pct = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(100)])
    vehicle_capacity_kwh = models.FloatField(null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(250)])
    vehicle_name = models.CharField(max_length=80, blank=True)
    # vehicle-to-home / vehicle-to-grid (issue 14 item 3), on a charger with max_discharge_kw > 0
    may_discharge = models.BooleanField(default=False, help_text="The car may power the home while plugged in.")
    min_soc_pct = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(100)],
                                    help_text="Discharging never takes the car below this SoC (e.g. 40 %).")
    export_allowed = models.BooleanField(default=False, help_text="Discharging may also feed the grid.")

    class Meta:
        ordering = ["arrival", "id"]
        indexes = [models.Index(fields=["device", "departure"])]

    def clean(self) -> None:
        errors: dict[str, str] = {}
        for name in ("arrival", "departure"):
            if getattr(self, name) is not None and timezone.is_naive(getattr(self, name)):
                errors[name] = "Must include a time zone offset."
        if self.device_id and self.device.device_type != DeviceType.EV_CHARGER:
            errors["device"] = "EV sessions belong to EV chargers."
        if self.arrival and self.departure and not errors.keys() & {"arrival", "departure"} \
                and self.departure <= self.arrival:
            errors["departure"] = "Must be after arrival."
        if self.energy_kwh is None:
            missing = [n for n in ("target_soc_pct", "initial_soc_pct", "vehicle_capacity_kwh") if getattr(self, n) is None]
            if missing:
                errors["energy_kwh"] = "Give energy_kwh, or target_soc_pct with initial_soc_pct and vehicle_capacity_kwh."
            elif self.target_soc_pct < self.initial_soc_pct:
                errors["target_soc_pct"] = "Must not be below initial_soc_pct."
        errors.update(self._v2g_errors())
        if errors:
            raise ValidationError(errors)

    def _v2g_errors(self) -> dict[str, str]:
        """Discharging needs a bidirectional charger and the car's state of charge (capacity and SoC now)."""
        if not self.may_discharge:
            return {}
        if self.device_id and not float(self.device.parameters.get("max_discharge_kw", 0) or 0) > 0:
            return {"may_discharge": "The charger cannot discharge (its max_discharge_kw is 0)."}
        if self.vehicle_capacity_kwh is None or self.initial_soc_pct is None:
            return {"may_discharge": "Give vehicle_capacity_kwh and initial_soc_pct to let the car discharge."}
        return {}

    @property
    def required_energy_kwh(self) -> float:
        if self.energy_kwh is not None:
            return self.energy_kwh
        return (self.target_soc_pct - self.initial_soc_pct) / 100.0 * self.vehicle_capacity_kwh


class SignalKind(models.TextChoices):
    IMPORT_PRICE = "import_price", "Import price (EUR/kWh)"
    EXPORT_PRICE = "export_price", "Export price (EUR/kWh)"
    CO2_INTENSITY = "co2_intensity", "CO2 intensity (g/kWh)"
    LOAD_FORECAST = "load_forecast", "Base load forecast (W)"
    PV_FORECAST = "pv_forecast", "PV forecast (W)"
    HEAT_DEMAND = "heat_demand", "Heat demand forecast (W thermal)"
    OUTDOOR_TEMPERATURE = "outdoor_temperature", "Outdoor temperature forecast (C)"  # space heating (issue 14)
    SOLAR_IRRADIANCE = "solar_irradiance", "Solar irradiance forecast (W/m2)"


SIGNAL_UNITS = {
    SignalKind.IMPORT_PRICE: "EUR/kWh",
    SignalKind.EXPORT_PRICE: "EUR/kWh",
    SignalKind.CO2_INTENSITY: "g/kWh",
    SignalKind.LOAD_FORECAST: "W",
    SignalKind.PV_FORECAST: "W",
    SignalKind.HEAT_DEMAND: "W",
    SignalKind.OUTDOOR_TEMPERATURE: "C",
    SignalKind.SOLAR_IRRADIANCE: "W/m2",
}
HOME_SIGNALS = {SignalKind.LOAD_FORECAST, SignalKind.PV_FORECAST, SignalKind.HEAT_DEMAND}


class SignalSeries(TimeStampedModel):
    """A regular time series: values[i] holds for [start + i*resolution, start + (i+1)*resolution).

    Prices and CO2 are per area (home optional: a home-specific series wins);
    forecasts are per home (and per device for PV and heat demand).
    """

    kind = models.CharField(max_length=24, choices=SignalKind.choices)
    home = models.ForeignKey(Home, null=True, blank=True, on_delete=models.CASCADE, related_name="signals")
    device = models.ForeignKey(Device, null=True, blank=True, on_delete=models.CASCADE, related_name="signals")
    area = models.CharField(max_length=32, blank=True, help_text="Bidding zone or country for area-wide signals.")
    start = models.DateTimeField()
    resolution_minutes = models.PositiveSmallIntegerField(choices=[(m, f"{m} min") for m in (5, 15, 30, 60)])
    values = models.JSONField()
    unit = models.CharField(max_length=16, editable=False)
    source = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["-start", "id"]
        indexes = [models.Index(fields=["kind", "area", "start"]), models.Index(fields=["home", "kind", "start"])]
        verbose_name_plural = "signal series"

    def __str__(self) -> str:
        return f"{self.kind} {self.area or self.home_id} {self.start:%Y-%m-%d %H:%M}"

    @property
    def end(self):
        return self.start + timedelta(minutes=self.resolution_minutes * len(self.values or []))

    def save(self, *args, **kwargs):
        self.unit = SIGNAL_UNITS[SignalKind(self.kind)]
        super().save(*args, **kwargs)

    def clean(self) -> None:
        require_aware("start", self.start)
        if self.kind in HOME_SIGNALS and not self.home_id:
            raise ValidationError({"home": f"A {self.kind} series belongs to a home."})
        if self.kind not in HOME_SIGNALS and not (self.home_id or self.area):
            raise ValidationError({"area": "Give an area (or a home) for prices and CO2."})
        if not isinstance(self.values, list) or not self.values:
            raise ValidationError({"values": "Must be a non-empty list of numbers."})
        if len(self.values) > 7 * 24 * 60 // 5:
            raise ValidationError({"values": "At most one week of values per series."})
        for i, v in enumerate(self.values):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValidationError({"values": f"values[{i}] is not a number."})
            if self.kind in HOME_SIGNALS | {SignalKind.CO2_INTENSITY} and v < 0:
                raise ValidationError({"values": f"values[{i}] must not be negative."})
        if self.start and self.resolution_minutes:
            epoch_minutes = int(self.start.timestamp()) // 60
            if int(self.start.timestamp()) % 60 or epoch_minutes % self.resolution_minutes:
                raise ValidationError({"start": "Must be aligned to the resolution."})


class Measurement(models.Model):
    """Telemetry: one measurement of a home (device null) or of one device.

    Written in bulk by `services.record_measurements` (which also maintains the roll-ups).
    On PostgreSQL the table is partitioned by UTC day and its primary key is (id, time)
    (devices.partitions); raw rows are kept TELEMETRY_RAW_RETENTION_DAYS.
    """

    id = models.BigAutoField(primary_key=True)
    # (home, time) and (device, time) below serve the foreign keys too. No constraint in the database:
    # checking it per row costs as much as the write; rows are still deleted with their home or device.
    home = models.ForeignKey(Home, on_delete=models.CASCADE, related_name="measurements", db_index=False,
                             db_constraint=False)
    device = models.ForeignKey(Device, null=True, blank=True, on_delete=models.CASCADE, related_name="measurements",
                               db_index=False, db_constraint=False)
    time = models.DateTimeField()
    power_w = models.FloatField(null=True, blank=True)
    energy_wh = models.FloatField(null=True, blank=True, help_text="Cumulative energy meter reading (Wh).")
    soc_pct = models.FloatField(null=True, blank=True)
    temperature_c = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["time"]
        indexes = [models.Index(fields=["home", "time"]), models.Index(fields=["device", "time"])]


ROLLUP_SLOT_MINUTES = 15


class MeasurementRollup(models.Model):
    """Telemetry of one home (device null) or device over one 15-minute UTC slot, kept for years.

    Sums and counts (not means) so that each written batch adds to its slots: the mean power
    of a slot is power_w_sum / power_samples whatever order the rows arrive in. Last state of
    charge and last meter reading keep the value with the latest measurement time. Partitioned
    by UTC month on PostgreSQL, primary key (id, slot_start).
    """

    id = models.BigAutoField(primary_key=True)
    home = models.ForeignKey(Home, on_delete=models.CASCADE, related_name="rollups", db_index=False)
    device = models.ForeignKey(Device, null=True, blank=True, on_delete=models.CASCADE, related_name="rollups",
                               db_index=False)
    slot_start = models.DateTimeField()
    samples = models.PositiveIntegerField(default=0)
    power_samples = models.PositiveIntegerField(default=0)
    power_w_sum = models.FloatField(default=0.0)
    power_w_min = models.FloatField(null=True, blank=True)
    power_w_max = models.FloatField(null=True, blank=True)
    soc_pct_last = models.FloatField(null=True, blank=True)
    soc_at = models.DateTimeField(null=True, blank=True)
    meter_wh_last = models.FloatField(null=True, blank=True, help_text="Last cumulative meter reading (Wh).")
    meter_at = models.DateTimeField(null=True, blank=True)
    temperature_samples = models.PositiveIntegerField(default=0)
    temperature_c_sum = models.FloatField(default=0.0)

    class Meta:
        ordering = ["slot_start"]
        constraints = [models.UniqueConstraint(fields=["home", "device", "slot_start"], nulls_distinct=False,
                                               name="devices_rollup_one_per_slot")]
        indexes = [models.Index(fields=["home", "slot_start"], name="devices_rollup_home_slot"),
                   models.Index(fields=["device", "slot_start"], name="devices_rollup_device_slot")]

    @property
    def mean_power_w(self) -> float | None:
        return self.power_w_sum / self.power_samples if self.power_samples else None

    @property
    def energy_wh(self) -> float | None:
        """Energy over the slot from its mean power (Wh); positive is consumed (imported at the meter)."""
        mean = self.mean_power_w
        return None if mean is None else mean * ROLLUP_SLOT_MINUTES / 60.0


class MeasurementDay(models.Model):
    """Telemetry of one home (device null) or device over one local day of the home, from its 15-minute
    roll-ups: what daily and monthly statistics read (a month of a home is 30 rows, not 2,880).

    Energies come from each slot's mean power x 15 min: import_wh sums the slots that consumed,
    export_wh the slots that fed in. Rebuilt for today and yesterday every 15 minutes (devices.services).
    """

    home = models.ForeignKey(Home, on_delete=models.CASCADE, related_name="telemetry_days", db_index=False)
    device = models.ForeignKey(Device, null=True, blank=True, on_delete=models.CASCADE, related_name="telemetry_days")
    day = models.DateField(help_text="Local day in the home's time zone.")
    samples = models.PositiveIntegerField(default=0)
    slots = models.PositiveSmallIntegerField(default=0, help_text="15-minute slots with a power reading.")
    energy_wh = models.FloatField(default=0.0)
    import_wh = models.FloatField(default=0.0)
    export_wh = models.FloatField(default=0.0)
    power_w_max = models.FloatField(null=True, blank=True)
    soc_pct_last = models.FloatField(null=True, blank=True)
    temperature_samples = models.PositiveIntegerField(default=0)
    temperature_c_sum = models.FloatField(default=0.0)
    slot_power_w = models.BinaryField(
        null=True, blank=True, editable=False,
        help_text="The day's 15-minute mean powers (W) from local midnight, big-endian float64, NaN where a slot "
                  "has no reading; written once the day is complete (DayCoverage says which days count).")

    class Meta:
        ordering = ["day"]
        constraints = [models.UniqueConstraint(fields=["home", "device", "day"], nulls_distinct=False,
                                               name="devices_telemetry_one_per_day")]
        indexes = [models.Index(fields=["home", "day"], name="devices_day_home_day")]


class DayCoverage(models.Model):
    """Up to which instant a home's complete local days have their 15-minute sheets (MeasurementDay.slot_power_w).

    Statistics read a month of a portfolio from those sheets, one row per home and day instead of 96
    roll-ups; from `complete_until` on they read the roll-ups. The day job raises it once a day is complete;
    the telemetry writer lowers it to the time of a late row, so a sheet missing that row is never read.
    `timezone` is the zone the sheets' days were cut in: another zone on the home means no sheet counts.
    """

    home = models.OneToOneField(Home, primary_key=True, on_delete=models.CASCADE, related_name="day_coverage")
    complete_until = models.DateTimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64)

    class Meta:
        verbose_name_plural = "day coverage"

    def __str__(self) -> str:
        return f"{self.home_id}: {self.complete_until}"


# --- issue 14: minimum state at a time --------------------------------------------------

class MinimumState(TimeStampedModel):
    """A battery or EV must hold at least `energy_kwh` at `at` (backup before a forecast storm, a trip).

    Battery: energy stored. EV charger: energy charged into the car since it was plugged in (the unit of
    its session's `energy_kwh`); it applies to the session plugged in at `at`.
    """

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="minimum_states")
    at = models.DateTimeField(help_text="The instant the energy must be there (with a time zone offset).")
    energy_kwh = models.FloatField(validators=[MinValueValidator(0), MaxValueValidator(1000)],
                                   help_text="Battery: kWh stored. EV: kWh charged since plug-in.")
    reason = models.CharField(max_length=120, blank=True, help_text="Shown to the household, e.g. 'storm backup'.")

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["device", "at"])]

    def __str__(self) -> str:
        return f"{self.energy_kwh:g} kWh in {self.device} at {self.at:%Y-%m-%d %H:%M}"

    def clean(self) -> None:
        require_aware("at", self.at)
        if not self.device_id:
            return
        kind = self.device.device_type
        if kind not in (DeviceType.BATTERY, DeviceType.EV_CHARGER):
            raise ValidationError({"device": "Only batteries and EV chargers hold a minimum state."})
        capacity = (self.device.parameters or {}).get("capacity_kwh")
        if kind == DeviceType.BATTERY and capacity is not None and self.energy_kwh is not None \
                and self.energy_kwh > float(capacity):
            raise ValidationError({"energy_kwh": f"Must not exceed the battery's capacity of {capacity:g} kWh."})


# ------------------------------------------------------------ shared circuits (issue 14, item 4)
class Circuit(TimeStampedModel):
    """A breaker or phase several devices of a home share: the planner keeps their summed power within
    `limit_kw` (beside the home's contracted power), e.g. two EV chargers on one 32 A breaker."""

    home = models.ForeignKey(Home, on_delete=models.CASCADE, related_name="circuits")
    name = models.CharField(max_length=120)
    limit_kw = models.FloatField(validators=[MinValueValidator(0.1), MaxValueValidator(1000)],
                                 help_text="The most the devices on it may draw together (kW).")
    devices = models.ManyToManyField(Device, related_name="circuits", blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["home", "name"], name="circuit_name_unique_per_home")]

    def __str__(self) -> str:
        return f"{self.name} ({self.limit_kw:g} kW)"

    def check_devices(self, devices) -> None:
        """Every device must belong to the circuit's home (a many-to-many is not seen by clean())."""
        foreign = [d.pk for d in devices if d.home_id != self.home_id]
        if foreign:
            raise ValidationError({"devices": f"Devices {foreign} belong to another home."})
