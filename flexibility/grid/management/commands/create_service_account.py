"""Create an operator, aggregator or data-provider service account and print its API key (shown once)."""
from django.core.management.base import BaseCommand, CommandError

from flexibility.grid.models import Portfolio, ServiceRole
from flexibility.grid.services import create_service_account


class Command(BaseCommand):
    help = "Create a service account (operator API, or signals for a data provider); prints the API key once."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--role", choices=ServiceRole.values, default=ServiceRole.AGGREGATOR)
        parser.add_argument("--portfolio", action="append", default=[], help="Portfolio code (repeatable).")

    def handle(self, *args, name, role, portfolio, **options):
        portfolios = list(Portfolio.objects.filter(code__in=portfolio))
        unknown = set(portfolio) - {p.code for p in portfolios}
        if unknown:
            raise CommandError(f"Unknown portfolio(s): {', '.join(sorted(unknown))}")
        account, key = create_service_account(name, role, portfolios)
        self.stdout.write(f"Service account {account.name} ({account.role}); API key (store it now): {key}")
