"""Chart specs carry the plan's numbers at local times; the API docs and charts load no file from elsewhere."""
from __future__ import annotations

import gzip
import re
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

from insights import charts


def _view(slots: int = 8) -> dict:
    start = datetime(2026, 7, 1, 22, 0, tzinfo=dt_timezone.utc)
    return {
        "slots": slots, "timezone": "Europe/Lisbon", "resolution_minutes": 15,
        "slot_starts": [(start + timedelta(minutes=15 * t)).isoformat() for t in range(slots)],
        "net_import_kw": [float(t) for t in range(slots)], "baseline_net_import_kw": [1.0] * slots,
        "import_price_eur_per_kwh": [0.1] * slots, "co2_g_per_kwh": [100.0] * slots,
        "devices": [
            {"name": "Washer", "kind": "cycle", "power_kw": [0, 2, 2, 0, 0, 0, 0, 0],
             "start": (start + timedelta(minutes=15)).isoformat(), "end": (start + timedelta(minutes=45)).isoformat()},
            {"name": "Battery", "kind": "battery", "power_kw": [0, 0, 0, 0, 1, 1, -1, 0],
             "soc_kwh": [5, 5, 5, 5, 5, 5.25, 5.5, 5.25, 5.25]},
        ],
    }


def test_plan_figures_hold_the_plan_at_local_times():
    figs = {f["id"]: f for f in charts.plan_figures(_view())}
    assert set(figs) == {"net-import", "device-power", "timeline", "state-of-charge"}
    net = figs["net-import"]["data"][0]
    assert net["x"][0] == "2026-07-01 23:00" and net["x"][2] == "2026-07-01 23:30"  # Lisbon is UTC+1 in July
    assert net["y"] == [float(t) for t in range(8)]
    assert figs["net-import"]["data"][2]["yaxis"] == "y2"  # price on its own axis
    washer = next(t for t in figs["timeline"]["data"] if t["y"] == ["Washer"])
    assert washer["base"] == ["2026-07-01 23:15"] and washer["x"] == [30 * 60 * 1000]
    soc = figs["state-of-charge"]["data"][0]
    assert len(soc["x"]) == 9 and soc["x"][-1] == "2026-07-02 01:00"
    cropped = {f["id"]: f for f in charts.plan_figures(_view(), first=4, last=8)}
    assert cropped["net-import"]["data"][0]["y"] == [4.0, 5.0, 6.0, 7.0]
    assert "timeline" in cropped and len(cropped["state-of-charge"]["data"][0]["x"]) == 5


def test_the_vendored_plotly_bundle_is_a_static_file_with_a_gzip_copy_and_draws_every_trace_we_use():
    from insights.templatetags.charts import PLOTLY_JS

    path = finders.find(PLOTLY_JS)
    assert path, PLOTLY_JS
    version = re.search(r"-(\d+\.\d+\.\d+)\.min\.js$", PLOTLY_JS).group(1)
    with open(path, "rb") as f:
        bundle = f.read()
    assert f"plotly.js (basic - minified) v{version}".encode() in bundle[:400], bundle[:400]
    with gzip.open(path + ".gz") as f:
        assert f.read() == bundle  # the copy WhiteNoise sends is the same file
    # The basic bundle has scatter, bar and pie: every trace the figures draw must be one of them.
    source = Path(charts.__file__).read_text(encoding="utf-8")
    traces = set(re.findall(r'"type": "(\w+)", (?:"mode"|"orientation"|"x")', source))
    assert traces and traces <= {"scatter", "bar", "pie"}, traces


@pytest.mark.django_db
def test_plotly_is_served_compressed_and_cached_for_good(client):
    from insights.templatetags.charts import PLOTLY_JS

    r = client.get(f"/static/{PLOTLY_JS}", HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert r.status_code == 200 and r["Content-Encoding"] == "gzip"
    assert int(r["Content-Length"]) < 500_000
    assert "immutable" in r["Cache-Control"] and "max-age=315360000" in r["Cache-Control"]


def test_histogram_counts_values_per_range():
    fig = charts.histogram_figure("h", "Savings", [0.0, 0.1, 0.1, 0.9, 1.0], "EUR", bins=2)
    (bars,) = fig["data"]
    assert bars["type"] == "bar" and bars["y"] == [3, 2] and bars["x"] == [0.25, 0.75] and bars["width"] == [0.5, 0.5]
    assert charts.histogram_figure("h", "Savings", [], "EUR")["data"][0]["y"] == []


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/", "/app/login/"])
def test_pages_load_scripts_and_styles_from_this_server_only(client, url):
    html = client.get(url).content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"""(?:src|href)\s*[:=]\s*['"]([^'"]+\.(?:js|css))""", html)
    external = [s for s in sources if re.match(r"^(https?:)?//", s)]
    assert external == [], external
    assets = [s for s in sources if s.startswith("/static/") and s.endswith((".js", ".css"))]
    assert assets, html[:500]
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
