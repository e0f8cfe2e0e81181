"""Takes over the grid flexibility models from the flexibility app (flexibility 0002/0003), tables unchanged.

State only (SeparateDatabaseAndState): the tables exist already; their content types move to "grid" so
admin permissions and log entries carry over.
"""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


MODELS = ["portfolio", "serviceaccount", "flexibilityoffer", "activation", "activationshare"]


def _move_content_types(from_label: str, to_label: str):
    def move(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        ContentType.objects.filter(app_label=from_label, model__in=MODELS).update(app_label=to_label)
    return move


MOVE_CONTENT_TYPES = _move_content_types("flexibility", "grid")
MOVE_CONTENT_TYPES_BACK = _move_content_types("grid", "flexibility")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('devices', '0003_alter_hub_hub_id'),
        ('flexibility', '0007_move_grid_and_notifications_out'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Activation',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('start', models.DateTimeField(help_text='Start of the first slot.')),
                        ('resolution_minutes', models.PositiveSmallIntegerField(default=15)),
                        ('slots', models.PositiveIntegerField()),
                        ('delivery_day', models.DateField()),
                        ('mode', models.CharField(choices=[('setpoint', 'Setpoints of net import'), ('bounds', 'Bounds on net import')], max_length=16)),
                        ('requested_min_kw', models.JSONField()),
                        ('requested_max_kw', models.JSONField()),
                        ('status', models.CharField(choices=[('planning', 'Re-planning homes'), ('planned', 'Planned and dispatched'), ('partial', 'Some homes could not follow'), ('failed', 'No home could follow')], default='planning', max_length=16)),
                        ('external_id', models.CharField(blank=True, help_text="The caller's reference (e.g. data point).", max_length=120)),
                        ('cost_eur', models.FloatField(default=0.0, help_text="Opportunity cost of the split, from the offers' prices.")),
                        ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                        ('planned_at', models.DateTimeField(blank=True, null=True)),
                        ('home', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='activations', to='devices.home')),
                        ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'flexibility_activation',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='FlexibilityOffer',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('start', models.DateTimeField(help_text='Start of the first slot.')),
                        ('resolution_minutes', models.PositiveSmallIntegerField(default=15)),
                        ('slots', models.PositiveIntegerField()),
                        ('delivery_day', models.DateField(help_text='Local calendar day of the home.')),
                        ('gate_closure', models.DateTimeField(help_text='After this instant the offer is frozen.')),
                        ('frozen', models.BooleanField(default=False)),
                        ('baseline_kw', models.JSONField()),
                        ('min_kw', models.JSONField()),
                        ('max_kw', models.JSONField()),
                        ('price_up_eur_per_kw', models.JSONField()),
                        ('price_down_eur_per_kw', models.JSONField()),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('home', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='flexibility_offers', to='devices.home')),
                        ('run', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='offers', to='flexibility.optimizationrun')),
                    ],
                    options={
                        'db_table': 'flexibility_flexibilityoffer',
                        'ordering': ['delivery_day', 'home_id'],
                    },
                ),
                migrations.CreateModel(
                    name='ActivationShare',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('target_kw', models.JSONField(help_text='Allocated net import per activation slot (null = free).')),
                        ('min_kw', models.JSONField(help_text='Hard lower bound per activation slot (null = none).')),
                        ('max_kw', models.JSONField(help_text='Hard upper bound per activation slot (null = none).')),
                        ('cost_eur', models.FloatField(default=0.0)),
                        ('status', models.CharField(choices=[('queued', 'Queued for re-planning'), ('planned', 'Planned and dispatched'), ('infeasible', 'The home cannot follow its share'), ('failed', 'Re-planning failed')], default='queued', max_length=16)),
                        ('planned_kw', models.JSONField(blank=True, help_text='Net import of the new plan per activation slot.', null=True)),
                        ('message', models.TextField(blank=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('activation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='shares', to='grid.activation')),
                        ('home', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='activation_shares', to='devices.home')),
                        ('run', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='activation_shares', to='flexibility.optimizationrun')),
                        ('offer', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='shares', to='grid.flexibilityoffer')),
                    ],
                    options={
                        'db_table': 'flexibility_activationshare',
                        'ordering': ['activation_id', 'home_id'],
                    },
                ),
                migrations.CreateModel(
                    name='Portfolio',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('code', models.SlugField(max_length=64, unique=True)),
                        ('name', models.CharField(max_length=120)),
                        ('description', models.TextField(blank=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('homes', models.ManyToManyField(blank=True, related_name='portfolios', to='devices.home')),
                    ],
                    options={
                        'db_table': 'flexibility_portfolio',
                        'ordering': ['code'],
                    },
                ),
                migrations.AddField(
                    model_name='activation',
                    name='portfolio',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='activations', to='grid.portfolio'),
                ),
                migrations.CreateModel(
                    name='ServiceAccount',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=120, unique=True)),
                        ('role', models.CharField(choices=[('system_operator', 'System operator (DSO/TSO)'), ('aggregator', 'Aggregator')], default='aggregator', max_length=24)),
                        ('key_prefix', models.CharField(editable=False, max_length=16, unique=True)),
                        ('key_hash', models.CharField(editable=False, max_length=64)),
                        ('is_active', models.BooleanField(default=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('last_used_at', models.DateTimeField(blank=True, null=True)),
                        ('portfolios', models.ManyToManyField(blank=True, related_name='service_accounts', to='grid.portfolio')),
                    ],
                    options={
                        'db_table': 'flexibility_serviceaccount',
                        'ordering': ['name'],
                    },
                ),
                migrations.AddField(
                    model_name='activation',
                    name='service_account',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='activations', to='grid.serviceaccount'),
                ),
                migrations.AddIndex(
                    model_name='flexibilityoffer',
                    index=models.Index(fields=['delivery_day', 'home'], name='flexibility_deliver_a66754_idx'),
                ),
                migrations.AddConstraint(
                    model_name='flexibilityoffer',
                    constraint=models.UniqueConstraint(fields=('home', 'delivery_day'), name='one_offer_per_home_per_day'),
                ),
                migrations.AddConstraint(
                    model_name='activationshare',
                    constraint=models.UniqueConstraint(fields=('activation', 'home'), name='one_share_per_home_per_activation'),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(MOVE_CONTENT_TYPES, MOVE_CONTENT_TYPES_BACK),
    ]
