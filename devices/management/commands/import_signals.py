"""Import prices or CO2 intensity from a file or a folder of files.

    python manage.py import_signals tests/inputs/fixtures/marginalpdbc_20260330.1
    python manage.py import_signals /srv/drop --move        # a drop folder: files move to imported/ or rejected/

Formats: entsoe (A44 XML), omie (marginalpdbc), csv, electricitymaps (history JSON); guessed
from the name and contents unless --format is given. A bad document writes nothing and the
command exits 2 with one line naming the line or element at fault.
"""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from devices.importers import PARSERS
from devices.signal_ingest import import_path


class Command(BaseCommand):
    help = "Import price or CO2 documents (ENTSO-E A44, OMIE, CSV, Electricity Maps) from a file or folder."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--format", choices=sorted(PARSERS), default=None)
        parser.add_argument("--area", default=None, help="Area to store under (overrides the document's zone).")
        parser.add_argument("--move", action="store_true", help="Move each file to imported/ or rejected/.")

    def handle(self, *args, path: Path, format: str | None, area: str | None, move: bool, **options):
        if not path.exists():
            raise CommandError(f"{path}: no such file or folder", returncode=2)
        outcomes = import_path(path, fmt=format, area=area, move=move)
        errors = [o.error for o in outcomes if o.error]
        for o in outcomes:
            if o.result is not None:
                self.stdout.write(f"{o.path.name}: {o.result.created} series stored, {o.result.replaced} replaced")
        if errors:
            raise CommandError("; ".join(errors), returncode=2)
