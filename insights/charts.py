"""Plotly figure specs (plain dicts) for plans, statistics, offers and activations.

The same figures serve the household page and the operator's admin. plotly.js draws them in the
browser (insights/static/insights/charts.js); times are sent as the household's local wall-clock
times because plotly.js has no notion of time zones.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Optional, Sequence
from zoneinfo import ZoneInfo

import numpy as np

COLORS = {
    "net": "#1f6feb", "baseline": "#8b949e", "price": "#d29922", "co2": "#2da44e", "measured": "#cf222e",
    "band": "rgba(31,111,235,0.15)", "requested": "rgba(207,34,46,0.15)",
}
DEVICE_COLORS = ["#1f6feb", "#d29922", "#2da44e", "#8250df", "#cf222e", "#0a7ea4", "#bf8700", "#57606a"]


def local_times(starts: Sequence[Any], zone: str) -> list[str]:
    """ISO instants (or datetimes) -> local 'YYYY-MM-DD HH:MM' strings for a plotly date axis."""
    tz = ZoneInfo(zone)
    out = []
    for s in starts:
        when = datetime.fromisoformat(s) if isinstance(s, str) else s
        out.append(when.astimezone(tz).strftime("%Y-%m-%d %H:%M"))
    return out


def _layout(title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    layout = {
        "title": {"text": title, "font": {"size": 15}, "x": 0.01},
        "height": 320, "margin": {"l": 50, "r": 55, "t": 40, "b": 30},
        "legend": {"orientation": "h", "x": 0, "y": -0.12, "yanchor": "top"},
        "xaxis": {"type": "date", "tickformat": "%H:%M\n%a %d"},
        "yaxis": {"title": {"text": y_title}, "zeroline": True},
        "hovermode": "x unified", "paper_bgcolor": "white", "plot_bgcolor": "white",
    }
    layout.update(extra)
    return layout


def _step(x: list[str], y: Sequence[Optional[float]], name: str, color: str, **extra: Any) -> dict[str, Any]:
    """Per-slot values drawn as steps that hold over their slot."""
    trace = {"type": "scatter", "mode": "lines", "x": x, "y": list(y), "name": name,
             "line": {"shape": "hv", "color": color, "width": 2}}
    trace.update(extra)
    return trace


def plan_figures(view: dict[str, Any], first: int = 0, last: Optional[int] = None) -> list[dict[str, Any]]:
    """Figures of a schedule view (flexibility.schedule_view) over its slots [first, last)."""
    n = view["slots"]
    last = n if last is None else last
    zone = view["timezone"]
    x = local_times(view["slot_starts"][first:last], zone)
    figures = [_net_import_figure(view, x, first, last)]
    power = [d for d in view["devices"] if any(abs(p) > 1e-3 for p in d["power_kw"][first:last])]
    figures.append({"id": "device-power", "data": [
        _step(x, [round(p, 3) for p in d["power_kw"][first:last]], d["name"], DEVICE_COLORS[i % len(DEVICE_COLORS)])
        for i, d in enumerate(power)],
        "layout": _layout("Power per device", "kW")})
    timeline = _timeline_figure(view, first, last, x)
    if timeline is not None:
        figures.append(timeline)
    soc = _state_of_charge_figure(view, first, last, zone)
    if soc is not None:
        figures.append(soc)
    return figures


def _net_import_figure(view: dict[str, Any], x: list[str], first: int, last: int) -> dict[str, Any]:
    data = [
        _step(x, view["net_import_kw"][first:last], "Net import, plan (kW)", COLORS["net"], fill="tozeroy",
              fillcolor="rgba(31,111,235,0.12)"),
        _step(x, (view.get("baseline_net_import_kw") or [])[first:last], "Net import, unoptimized (kW)",
              COLORS["baseline"], line={"shape": "hv", "color": COLORS["baseline"], "dash": "dot", "width": 1.5}),
        _step(x, view["import_price_eur_per_kwh"][first:last], "Import price (EUR/kWh)", COLORS["price"], yaxis="y2"),
    ]
    extra = {"yaxis2": {"title": {"text": "EUR/kWh"}, "overlaying": "y", "side": "right", "rangemode": "tozero",
                        "showgrid": False}}
    if view.get("co2_g_per_kwh"):
        data.append(_step(x, view["co2_g_per_kwh"][first:last], "CO2 (g/kWh)", COLORS["co2"], yaxis="y3",
                          line={"shape": "hv", "color": COLORS["co2"], "width": 1.5, "dash": "dash"}))
        extra["yaxis3"] = {"overlaying": "y", "side": "right", "showticklabels": False, "showgrid": False,
                           "rangemode": "tozero"}
    return {"id": "net-import", "data": data, "layout": _layout("Net import against price and CO2", "kW", **extra)}


def _timeline_figure(view: dict[str, Any], first: int, last: int, x: list[str]) -> Optional[dict[str, Any]]:
    """Cycle blocks (planned and as set) and the slots each other device runs in, on one timeline."""
    zone = view["timezone"]
    step_ms = view["resolution_minutes"] * 60_000
    rows, traces = [], []
    for d in view["devices"]:
        power = d["power_kw"][first:last]
        if d["kind"] == "cycle" and d.get("start"):
            start, end = local_times([d["start"], d["end"]], zone)
            ms = (datetime.fromisoformat(d["end"]) - datetime.fromisoformat(d["start"])).total_seconds() * 1000
            traces.append({"type": "bar", "orientation": "h", "base": [start], "x": [ms], "y": [d["name"]],
                           "name": f"{d['name']} (plan)", "marker": {"color": COLORS["net"]},
                           "hovertemplate": f"{d['name']}: {start[-5:]}-{end[-5:]}<extra></extra>"})
            rows.append(d["name"])
        elif d["kind"] in ("ev", "thermal", "battery", "space_heating"):
            on = [t for t, p in enumerate(power) if abs(p) > 0.05]
            if not on:
                continue
            traces.append({"type": "bar", "orientation": "h", "base": [x[t] for t in on], "x": [step_ms] * len(on),
                           "y": [d["name"]] * len(on), "name": d["name"], "showlegend": False,
                           "marker": {"color": "#8250df" if d["kind"] != "battery" else "#2da44e"},
                           "hovertemplate": f"{d['name']} %{{base|%H:%M}}<extra></extra>"})
            rows.append(d["name"])
    if not traces:
        return None
    layout = _layout("When each device runs", "", barmode="overlay", showlegend=False)
    layout["yaxis"] = {"automargin": True, "categoryorder": "array", "categoryarray": list(dict.fromkeys(rows))}
    layout["height"] = 120 + 32 * len(set(rows))
    return {"id": "timeline", "data": traces, "layout": layout}


def _state_of_charge_figure(view: dict[str, Any], first: int, last: int, zone: str) -> Optional[dict[str, Any]]:
    """Battery, EV and hot-water energy (kWh) at each slot boundary."""
    step = timedelta(minutes=view["resolution_minutes"])
    start = datetime.fromisoformat(view["slot_starts"][0]) if isinstance(view["slot_starts"][0], str) \
        else view["slot_starts"][0]
    edges = local_times([start + t * step for t in range(first, last + 1)], zone)
    label = {"battery": "stored", "ev": "delivered", "thermal": "heat stored"}
    data = []
    for i, d in enumerate(view["devices"]):
        soc = d.get("soc_kwh")
        if not soc or d["kind"] not in label:
            continue
        data.append({"type": "scatter", "mode": "lines", "x": edges, "y": soc[first:last + 1],
                     "name": f"{d['name']} ({label[d['kind']]}, kWh)",
                     "line": {"color": DEVICE_COLORS[(i + 3) % len(DEVICE_COLORS)], "width": 2}})
    if not data:
        return None
    return {"id": "state-of-charge", "data": data, "layout": _layout("State of charge", "kWh")}


def statistics_figure(stats: dict[str, Any], title: str) -> dict[str, Any]:
    """Energy per bucket (bars) and cost and savings (lines) of a statistics answer."""
    x = [b["period"] for b in stats["buckets"]]
    get = lambda name: [b[name] for b in stats["buckets"]]  # noqa: E731
    data = [
        {"type": "bar", "x": x, "y": get("import_kwh"), "name": "Imported (kWh)", "marker": {"color": COLORS["net"]}},
        {"type": "bar", "x": x, "y": get("export_kwh"), "name": "Exported (kWh)", "marker": {"color": COLORS["co2"]}},
        {"type": "bar", "x": x, "y": get("pv_kwh"), "name": "PV (kWh)", "marker": {"color": COLORS["price"]}},
        {"type": "scatter", "mode": "lines+markers", "x": x, "y": get("cost_eur"), "name": "Cost (EUR)",
         "yaxis": "y2", "line": {"color": COLORS["measured"]}},
        {"type": "scatter", "mode": "lines+markers", "x": x, "y": get("planned_savings_eur"),
         "name": "Planned savings (EUR)", "yaxis": "y2", "line": {"color": COLORS["baseline"], "dash": "dot"}},
    ]
    layout = _layout(title, "kWh", barmode="group",
                     yaxis2={"title": {"text": "EUR"}, "overlaying": "y", "side": "right", "showgrid": False})
    layout["xaxis"] = {"type": "category"}
    return {"id": "statistics", "data": data, "layout": layout}


def forecast_figure(series: dict[str, Any]) -> dict[str, Any]:
    """A day's forecast against measured: the plan's net import and the base load forecast."""
    rows = series["slots"]
    x = local_times([r["start"] for r in rows], series["timezone"])
    col = lambda name: [r[name] for r in rows]  # noqa: E731
    data = [
        _step(x, col("planned_net_import_kw"), "Net import, plan (kW)", COLORS["net"]),
        _step(x, col("measured_net_import_kw"), "Net import, measured (kW)", COLORS["measured"]),
        _step(x, col("load_forecast_kw"), "Base load forecast (kW)", COLORS["baseline"],
              line={"shape": "hv", "color": COLORS["baseline"], "dash": "dot", "width": 1.5}),
        _step(x, col("consumption_kw"), "Consumption, measured (kW)", COLORS["price"]),
    ]
    return {"id": "forecast", "data": data, "layout": _layout(f"Forecast against measured, {series['day']}", "kW")}


def band_figure(fig_id: str, title: str, starts: Sequence[Any], zone: str, low: Sequence[Optional[float]],
                high: Sequence[Optional[float]], band_name: str, lines: dict[str, Sequence[Optional[float]]],
                resolution_minutes: int = 15, band_color: str = COLORS["band"]) -> dict[str, Any]:
    """A band per slot (an offer's limits, an activation's request) with lines inside it. A band of zero
    width (setpoints) is drawn as a dashed line. Each series repeats its last value at the end of the last
    slot, so that the last slot shows as wide as the others."""
    first = datetime.fromisoformat(starts[0]) if isinstance(starts[0], str) else starts[0]
    edges = [first + timedelta(minutes=resolution_minutes * t) for t in range(len(starts) + 1)]
    x = local_times(edges, zone)

    def closed(values: Sequence[Optional[float]]) -> list[Optional[float]]:
        return list(values) + [values[-1]] if values else []

    if all(lo == hi for lo, hi in zip(low, high)):
        data = [_step(x, closed(low), band_name, COLORS["measured"],
                      line={"shape": "hv", "color": COLORS["measured"], "dash": "dash", "width": 2})]
    else:
        data = [
            _step(x, closed(low), f"{band_name}: lower", "rgba(0,0,0,0)", showlegend=False),
            _step(x, closed(high), band_name, "rgba(0,0,0,0)", fill="tonexty", fillcolor=band_color),
        ]
    palette = [COLORS["net"], COLORS["price"], COLORS["co2"], COLORS["baseline"]]
    for i, (name, values) in enumerate(lines.items()):
        data.append(_step(x, closed(values), name, palette[i % len(palette)]))
    return {"id": fig_id, "data": data, "layout": _layout(title, "kW")}


def counts_figure(fig_id: str, title: str, counts: dict[str, int]) -> dict[str, Any]:
    """Bars of counts per label (e.g. a fleet run's runs per status)."""
    labels = sorted(counts)
    layout = _layout(title, "runs")
    layout["xaxis"] = {"type": "category"}
    return {"id": fig_id, "data": [{"type": "bar", "x": labels, "y": [counts[k] for k in labels], "name": title,
                                    "marker": {"color": COLORS["net"]}}], "layout": layout}


def histogram_figure(fig_id: str, title: str, values: Sequence[float], unit: str, bins: int = 20) -> dict[str, Any]:
    """How many values fall in each of `bins` equal ranges, as bars (the basic plotly.js bundle that the
    pages load has bars, not plotly's histogram trace)."""
    counts, edges = np.histogram(np.asarray(values, dtype=float), bins=bins) if len(values) else ([], [0.0])
    layout = _layout(title, "homes")
    layout["xaxis"] = {"title": {"text": unit}}
    layout["bargap"] = 0.02
    return {"id": fig_id, "data": [{
        "type": "bar", "x": [round((lo + hi) / 2, 6) for lo, hi in zip(edges[:-1], edges[1:])],
        "width": [round(hi - lo, 6) for lo, hi in zip(edges[:-1], edges[1:])], "y": [int(c) for c in counts],
        "name": title, "marker": {"color": COLORS["co2"]},
        "hovertemplate": "%{x}: %{y} homes<extra></extra>"}], "layout": layout}
