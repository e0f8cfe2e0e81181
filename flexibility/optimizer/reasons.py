"""Why the plan does what it does, per device, in short sentences a household reads.

`plan_reasons(problem, result)` compares the optimized plan with the unoptimized
baseline (baseline.py: cycles at their set start, EV charging on arrival, battery
idle, thermostat heating) and says, for each device, what moved where, at which
prices, and what that device's own change saves. A device's saving is marginal:
the plan's cost with that one device put back on its baseline profile, minus the
plan's cost. So a washing machine's saving is the washing machine's, not the plan's.

Works on the JSON contract (FORMAT.md) so that stored runs can be explained again;
times are the household's local times (the problem's `timezone` unless given).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional, Sequence
from zoneinfo import ZoneInfo

from .compile import compile_problem
from .problem import Problem
from .problem_io import problem_from_dict
from .solve import baseline_with_devices

ACTIVE_KW = 0.05  # below this a device counts as idle in a slot
MAX_BLOCKS = 2  # time ranges named in one sentence
MERGE_GAP_SLOTS = 1  # idle gaps this short do not split a time range


def grid_cost_eur(net_import_kw: Sequence[float], import_price: Sequence[float], export_price: Sequence[float],
                  dt_h: float) -> float:
    """Import cost minus export revenue of a net-import series (negative = export)."""
    return sum((max(x, 0.0) * pi - max(-x, 0.0) * pe) * dt_h
               for x, pi, pe in zip(net_import_kw, import_price, export_price))


def plan_reasons(problem: dict, result: dict, timezone: Optional[str] = None,
                 device_names: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """Per-device reasons and savings of a solved plan, plus the baseline's net import per slot.

    Returns {"reasons": [{"item", "device", "kind", "name", "saving_eur", "text"}],
             "baseline_net_import_kw": [...]}. `device_names` maps appliance ids to display names.
    """
    p = problem_from_dict(problem)
    given = result.get("baseline") or {}
    if given.get("devices") is not None and given.get("net_import_kw") is not None:  # solve() made them
        base_net, base_devices = given["net_import_kw"], given["devices"]
    else:  # a stored schedule explained again
        base_ev, base_devices = baseline_with_devices(compile_problem(p))
        base_net = base_ev.net_import_kw
    ctx = _Context(p, result, base_net, ZoneInfo(timezone or p.grid.timezone))
    names = device_names or {}
    out = []
    for item_id, planned in (result.get("devices") or {}).items():
        base = base_devices.get(item_id)
        if base is None:
            continue
        kind = planned.get("kind")
        name = names.get(planned.get("device", ""), planned.get("name") or item_id)
        saving = ctx.marginal_saving(planned.get("power_kw") or [], base.get("power_kw") or [])
        text = _SENTENCES.get(kind, _generic)(ctx, p, item_id, name, planned, base, saving)
        if text:
            out.append({"item": item_id, "device": planned.get("device", ""), "kind": kind, "name": name,
                        "saving_eur": round(saving, 2), "text": text})
    return {"reasons": out, "baseline_net_import_kw": [round(x, 4) for x in base_net]}


class _Context:
    def __init__(self, p: Problem, result: dict, baseline_net: list[float], zone: ZoneInfo):
        self.p = p
        self.n = p.grid.slots
        self.dt = p.grid.dt_h
        self.zone = zone
        self.imp = list(p.site.import_price_eur_per_kwh)
        self.exp = list(p.site.export_price_eur_per_kwh)
        self.co2 = list(p.site.co2_g_per_kwh)
        self.net = list(result.get("net_import_kw") or baseline_net)
        self.baseline_net = baseline_net
        self.cost = grid_cost_eur(self.net, self.imp, self.exp, self.dt)

    def marginal_saving(self, planned_kw: Sequence[float], baseline_kw: Sequence[float]) -> float:
        if len(planned_kw) != self.n or len(baseline_kw) != self.n:
            return 0.0
        without = [x - a + b for x, a, b in zip(self.net, planned_kw, baseline_kw)]
        return grid_cost_eur(without, self.imp, self.exp, self.dt) - self.cost

    def hm(self, when: datetime) -> str:
        return when.astimezone(self.zone).strftime("%H:%M")

    def slot_hm(self, t: int) -> str:
        return self.hm(self.p.grid.slot_start(t))

    def blocks(self, slots: Sequence[int]) -> list[tuple[int, int]]:
        """Runs of slots as (first, last + 1); short idle gaps inside a run are bridged."""
        out: list[tuple[int, int]] = []
        for t in sorted(slots):
            if out and t - out[-1][1] <= MERGE_GAP_SLOTS:
                out[-1] = (out[-1][0], t + 1)
            else:
                out.append((t, t + 1))
        return out

    def ranges(self, slots: Sequence[int]) -> str:
        """'01:00-03:00 and 04:30-05:00' (the longest few, in time order)."""
        blocks = self.blocks(slots)
        shown = sorted(sorted(blocks, key=lambda b: b[0] - b[1])[:MAX_BLOCKS])
        parts = [f"{self.slot_hm(a)}-{self.slot_hm(b)}" for a, b in shown]
        more = len(blocks) - len(shown)
        text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        return text + (f" (+{more} shorter)" if more > 0 else "")

    def mean_price(self, weights: Sequence[float]) -> Optional[float]:
        total = sum(w for w in weights if w > 0)
        if total <= 0:
            return None
        return sum(w * pr for w, pr in zip(weights, self.imp) if w > 0) / total


def _eur(x: float) -> str:
    return f"{x:.2f} EUR"


def _saves(saving: float) -> str:
    if saving >= 0.005:
        return f"saves {_eur(saving)}"
    if saving <= -0.005:
        return f"costs {_eur(-saving)} more"
    return "no saving"


def _cycle(ctx: _Context, p: Problem, item: str, name: str, planned: dict, base: dict, saving: float) -> str:
    if not planned.get("start"):
        return f"{name} is not planned: it does not fit."
    new = datetime.fromisoformat(planned["start"])
    old = datetime.fromisoformat(base["start"]) if base.get("start") else new
    if abs((new - old).total_seconds()) < 60 * p.grid.resolution_min / 2:
        return f"{name} runs at {ctx.hm(new)} as set: no cheaper time fits its window."
    price_new = ctx.mean_price(planned.get("power_kw") or [])
    price_old = ctx.mean_price(base.get("power_kw") or [])
    prices = ""
    if price_new is not None and price_old is not None:
        prices = f": {price_new:.2f} EUR/kWh instead of {price_old:.2f}"
    return f"{name} moved from {ctx.hm(old)} to {ctx.hm(new)}{prices}, {_saves(saving)}."


def _battery(ctx: _Context, p: Problem, item: str, name: str, planned: dict, base: dict, saving: float) -> str:
    charge = planned.get("charge_kw") or [max(x, 0.0) for x in planned.get("power_kw") or []]
    discharge = planned.get("discharge_kw") or [max(-x, 0.0) for x in planned.get("power_kw") or []]
    charging = [t for t, x in enumerate(charge) if x > ACTIVE_KW]
    discharging = [t for t, x in enumerate(discharge) if x > ACTIVE_KW]
    if not charging and not discharging:
        return f"{name} stays idle: storing energy would not pay for its losses today."
    parts = []
    if charging:
        from_pv = [t for t in charging if ctx.net[t] <= ACTIVE_KW]
        from_grid = [t for t in charging if ctx.net[t] > ACTIVE_KW]
        if from_pv:
            parts.append(f"charges from PV {ctx.ranges(from_pv)}")
        if from_grid:
            grid_set = set(from_grid)
            price = ctx.mean_price([charge[t] if t in grid_set else 0.0 for t in range(ctx.n)])
            parts.append(f"{'' if from_pv else 'charges '}from the grid {ctx.ranges(from_grid)} at {price:.2f} EUR/kWh")
    if discharging:
        top = max(ctx.imp)
        peak = [t for t in discharging if ctx.imp[t] >= top - 1e-9] if top > min(ctx.imp) + 0.01 else []
        covers = f"covers {ctx.ranges(discharging)}"
        if peak and set(peak) == set(discharging):
            parts.append(f"covers the {ctx.ranges(peak)} peak at {top:.2f} EUR/kWh")
        elif peak:
            parts.append(f"{covers}, including the {ctx.ranges(peak)} peak at {top:.2f} EUR/kWh")
        else:
            parts.append(f"{covers} at {ctx.mean_price(discharge):.2f} EUR/kWh")
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{name} {text}, {_saves(saving)}."


def _ev(ctx: _Context, p: Problem, item: str, name: str, planned: dict, base: dict, saving: float) -> str:
    session = next((e for e in p.ev_sessions if e.id == item), None)
    power = planned.get("power_kw") or []
    energy = float(planned.get("energy_kwh") or 0.0)
    charging = [t for t, x in enumerate(power) if x > ACTIVE_KW]
    by = f" by {ctx.hm(session.departure)}" if session is not None else ""
    if not charging:
        return f"{name} does not need to charge in this plan."
    price = ctx.mean_price(power)
    base_price = ctx.mean_price(base.get("power_kw") or [])
    available = [t for t in range(ctx.n) if session is None or
                 (p.grid.slot_start(t) >= session.arrival and p.grid.slot_start(t + 1) <= session.departure)]
    cheapest = sorted(ctx.imp[t] for t in available)[:len(charging)]
    how = ""
    if cheapest and price is not None and price <= sum(cheapest) / len(cheapest) + 1e-6:
        how = " using the cheapest hours"
    prices = f" at {price:.2f} EUR/kWh" if price is not None else ""
    if prices and base_price is not None and abs(base_price - price) >= 0.005:
        prices += f" instead of {base_price:.2f} on arrival"
    return (f"{name} reaches {energy:.1f} kWh{by}{how}, {ctx.ranges(charging)}{prices}{_discharging(ctx, planned)}, "
            f"{_saves(saving)}.")


def _discharging(ctx: _Context, planned: dict) -> str:
    """V2G (issue 14 item 3): when the car gives energy back, and how much."""
    d = planned.get("discharge_kw") or []
    slots = [t for t, x in enumerate(d) if x > ACTIVE_KW]
    if not slots:
        return ""
    return f", and gives {sum(d) * ctx.p.grid.dt_h:.1f} kWh back {ctx.ranges(slots)}"


def _thermal(ctx: _Context, p: Problem, item: str, name: str, planned: dict, base: dict, saving: float) -> str:
    power = planned.get("power_kw") or []
    heating = [t for t, x in enumerate(power) if x > ACTIVE_KW]
    if not heating:
        return f"{name} stays off: the tank holds enough heat."
    price = ctx.mean_price(power)
    base_price = ctx.mean_price(base.get("power_kw") or [])
    instead = f" instead of {base_price:.2f} with a plain thermostat" if base_price is not None and price is not None \
        and abs(base_price - price) >= 0.005 else ""
    return f"{name} heats {ctx.ranges(heating)} at {price:.2f} EUR/kWh{instead}, {_saves(saving)}."


def _pv(ctx: _Context, p: Problem, item: str, name: str, planned: dict, base: dict, saving: float) -> str:
    pv = next((x for x in p.pv if x.id == item), None)
    if pv is None:
        return ""
    produced = sum(pv.forecast_kw) * ctx.dt
    if produced < 0.05:
        return f"{name} produces nothing in this plan's hours."
    exported = sum(max(-x, 0.0) for x in ctx.net) * ctx.dt
    used = max(0.0, produced - exported)
    curtailed = sum(planned.get("curtailed_kw") or []) * ctx.dt
    cut = f"; {curtailed:.1f} kWh is cut because export does not pay" if curtailed >= 0.05 else ""
    return f"{name} produces about {produced:.1f} kWh; the plan uses {used:.1f} kWh of it at home{cut}."


def _generic(ctx: _Context, p: Problem, item: str, name: str, planned: dict, base: dict, saving: float) -> str:
    return f"{name}: {_saves(saving)}."


_SENTENCES = {"cycle": _cycle, "battery": _battery, "ev": _ev, "thermal": _thermal, "pv": _pv}

