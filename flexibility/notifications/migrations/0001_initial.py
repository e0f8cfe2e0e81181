"""Takes over Notification from the flexibility app (flexibility 0001), table unchanged.

State only (SeparateDatabaseAndState); its content type moves to "notifications".
"""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


MODELS = ["notification"]


def _move_content_types(from_label: str, to_label: str):
    def move(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        ContentType.objects.filter(app_label=from_label, model__in=MODELS).update(app_label=to_label)
    return move


MOVE_CONTENT_TYPES = _move_content_types("flexibility", "notifications")
MOVE_CONTENT_TYPES_BACK = _move_content_types("notifications", "flexibility")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('flexibility', '0007_move_grid_and_notifications_out'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('devices', '0003_alter_hub_hub_id'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Notification',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(max_length=32)),
                        ('message', models.TextField()),
                        ('data', models.JSONField(blank=True, default=dict)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('dismissed_at', models.DateTimeField(blank=True, null=True)),
                        ('home', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to='devices.home')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'flexibility_notification',
                        'ordering': ['-created_at', '-id'],
                        'indexes': [models.Index(fields=['user', 'dismissed_at'], name='flexibility_user_id_a15c50_idx')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(MOVE_CONTENT_TYPES, MOVE_CONTENT_TYPES_BACK),
    ]
