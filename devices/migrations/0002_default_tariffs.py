from django.db import migrations


def create_default_tariffs(apps, schema_editor):
    from devices.tariffs import DEFAULT_TARIFFS, TARIFF_SOURCE

    Tariff = apps.get_model("devices", "Tariff")
    for t in DEFAULT_TARIFFS:
        if t["kind"] == "dynamic":
            continue  # dynamic tariffs need the fields of 0004, which creates them
        Tariff.objects.update_or_create(
            code=t["code"],
            defaults={"name": t["name"], "kind": t["kind"], "country": "PT", "periods": t["periods"], "source": TARIFF_SOURCE},
        )


class Migration(migrations.Migration):
    dependencies = [("devices", "0001_initial")]
    operations = [migrations.RunPython(create_default_tariffs, migrations.RunPython.noop)]
