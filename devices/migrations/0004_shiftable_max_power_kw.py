"""Device parameters in one unit convention: shiftable appliances' max_power_w becomes max_power_kw."""
from django.db import migrations

SHIFTABLE = ("dishwasher", "washing_machine", "dryer")


def _rename(apps, old: str, new: str, factor: float) -> None:
    Device = apps.get_model("devices", "Device")
    for device in Device.objects.filter(device_type__in=SHIFTABLE).only("id", "parameters"):
        params = device.parameters or {}
        if old in params:
            value = params.pop(old)
            params[new] = None if value is None else round(value * factor, 6)
            Device.objects.filter(pk=device.pk).update(parameters=params)


def forwards(apps, schema_editor) -> None:
    _rename(apps, "max_power_w", "max_power_kw", 0.001)


def backwards(apps, schema_editor) -> None:
    _rename(apps, "max_power_kw", "max_power_w", 1000)


class Migration(migrations.Migration):
    dependencies = [("devices", "0003_alter_hub_hub_id")]
    operations = [migrations.RunPython(forwards, backwards)]
