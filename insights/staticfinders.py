"""A static-files finder for the plotly.js bundle that ships inside the plotly Python package.

Only that one file is exposed, as `vendor/plotly.min.js`; its version is the package's (pinned in
requirements/base.txt), so charts need no CDN and no npm build.
"""
from __future__ import annotations

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_JS = "vendor/plotly.min.js"
_PACKAGE_DATA = Path(plotly.__file__).resolve().parent / "package_data"


class _Storage(FileSystemStorage):
    """Lists just the bundle under its public name."""

    def __init__(self) -> None:
        super().__init__(location=str(_PACKAGE_DATA))
        self.prefix = "vendor"

    def listdir(self, path: str):
        return [], ["plotly.min.js"] if path in ("", ".") else []


class PlotlyFinder(BaseFinder):
    def check(self, **kwargs):
        if not (_PACKAGE_DATA / "plotly.min.js").is_file():
            from django.core.checks import Error

            return [Error(f"plotly.min.js is missing from {_PACKAGE_DATA}", id="insights.E001")]
        return []

    def find(self, path: str, find_all: bool = False, **kwargs):
        if path != PLOTLY_JS:
            return [] if find_all else None
        match = str(_PACKAGE_DATA / "plotly.min.js")
        return [match] if find_all else match

    def list(self, ignore_patterns):
        yield "plotly.min.js", _Storage()
