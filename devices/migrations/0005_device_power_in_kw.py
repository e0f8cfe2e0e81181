"""Device parameters in one unit convention (power in kW): max_power_w and standing_loss_w become kW."""
from django.db import migrations

SHIFTABLE = ("dishwasher", "washing_machine", "dryer")
THERMAL = ("water_heater", "heat_pump")


def _rename(apps, types: tuple[str, ...], old: str, new: str, factor: float) -> None:
    Device = apps.get_model("devices", "Device")
    for device in Device.objects.filter(device_type__in=types).only("id", "parameters"):
        params = device.parameters or {}
        if old in params:
            value = params.pop(old)
            params[new] = None if value is None else round(value * factor, 6)
            Device.objects.filter(pk=device.pk).update(parameters=params)


def forwards(apps, schema_editor) -> None:
    _rename(apps, SHIFTABLE, "max_power_w", "max_power_kw", 0.001)
    _rename(apps, THERMAL, "standing_loss_w", "standing_loss_kw", 0.001)


def backwards(apps, schema_editor) -> None:
    _rename(apps, SHIFTABLE, "max_power_kw", "max_power_w", 1000)
    _rename(apps, THERMAL, "standing_loss_kw", "standing_loss_w", 1000)


class Migration(migrations.Migration):
    dependencies = [("devices", "0004_dynamic_tariffs")]
    operations = [migrations.RunPython(forwards, backwards)]
