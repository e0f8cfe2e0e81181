"""Grid flexibility and notifications moved to their own apps (grid, notifications).

State only: the tables stay where they are (the new models keep them with db_table); the other
apps' 0001 migrations take the models over.
"""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('flexibility', '0006_freeze_offers_beat'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='activationshare',
                    name='activation',
                ),
                migrations.RemoveField(
                    model_name='activationshare',
                    name='home',
                ),
                migrations.RemoveField(
                    model_name='activationshare',
                    name='offer',
                ),
                migrations.RemoveField(
                    model_name='activationshare',
                    name='run',
                ),
                migrations.RemoveField(
                    model_name='flexibilityoffer',
                    name='home',
                ),
                migrations.RemoveField(
                    model_name='flexibilityoffer',
                    name='run',
                ),
                migrations.RemoveField(
                    model_name='notification',
                    name='home',
                ),
                migrations.RemoveField(
                    model_name='notification',
                    name='user',
                ),
                migrations.RemoveField(
                    model_name='portfolio',
                    name='homes',
                ),
                migrations.RemoveField(
                    model_name='serviceaccount',
                    name='portfolios',
                ),
                migrations.DeleteModel(
                    name='Activation',
                ),
                migrations.DeleteModel(
                    name='ActivationShare',
                ),
                migrations.DeleteModel(
                    name='FlexibilityOffer',
                ),
                migrations.DeleteModel(
                    name='Notification',
                ),
                migrations.DeleteModel(
                    name='Portfolio',
                ),
                migrations.DeleteModel(
                    name='ServiceAccount',
                ),
            ],
            database_operations=[],
        ),
    ]
