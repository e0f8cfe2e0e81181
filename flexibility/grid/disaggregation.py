"""Split a portfolio's request on net import across its homes at least cost.

Pure functions, no Django. Each home offers, per slot, a baseline net import, a range
[min_kw, max_kw] it can hold, and linear prices per kW for moving up or down.

Why a merit-order greedy is optimal: slots are independent (the envelope is per slot
and prices are per slot), and a home's cost in one slot is convex piecewise linear in
its net import x: price_down * (baseline - x) below the baseline, price_up * (x - baseline)
above it (prices >= 0). To raise the total from sum(baseline) to T, lowering any home
would only have to be made up by raising another one more, at extra cost, so an optimal
split only raises homes; it is then a fractional knapsack, solved exactly by filling
the cheapest upward kW first. Lowering is symmetric.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Sequence

EPS = 1e-9


@dataclass(frozen=True)
class HomeEnvelope:
    """One home's offer over the request's slots (all lists the same length)."""

    baseline_kw: Sequence[float]
    min_kw: Sequence[float]
    max_kw: Sequence[float]
    price_up_eur_per_kw: Sequence[float]
    price_down_eur_per_kw: Sequence[float]


@dataclass
class HomeShare:
    target_kw: list[float | None]
    min_kw: list[float | None]
    max_kw: list[float | None]
    cost_eur: float = 0.0


@dataclass
class Split:
    shares: dict[Hashable, HomeShare]
    total_kw: list[float | None]
    cost_eur: float
    available_min_kw: list[float] = field(default_factory=list)
    available_max_kw: list[float] = field(default_factory=list)


class BeyondOffer(ValueError):
    """The request needs more than the homes offer in some slots."""

    def __init__(self, slots: list[int], available_min_kw: list[float], available_max_kw: list[float]):
        self.slots = slots
        self.available_min_kw = available_min_kw
        self.available_max_kw = available_max_kw
        super().__init__(f"The request is outside the offered range in {len(slots)} slot(s): {slots[:10]}")


def available_range(envelopes: dict[Hashable, HomeEnvelope], slots: int) -> tuple[list[float], list[float]]:
    lo = [sum(e.min_kw[t] for e in envelopes.values()) for t in range(slots)]
    hi = [sum(e.max_kw[t] for e in envelopes.values()) for t in range(slots)]
    return lo, hi


def _fill(order: list[Hashable], room: dict[Hashable, float], amount: float) -> dict[Hashable, float]:
    """Take `amount` from the cheapest rooms first."""
    moves: dict[Hashable, float] = {}
    for key in order:
        if amount <= EPS:
            break
        take = min(room[key], amount)
        if take > EPS:
            moves[key] = take
            amount -= take
    return moves


def disaggregate(
    request_min_kw: Sequence[float | None],
    request_max_kw: Sequence[float | None],
    envelopes: dict[Hashable, HomeEnvelope],
    tolerance_kw: float = 1e-6,
) -> Split:
    """Per slot, bring the sum of net imports inside [request_min, request_max] at least cost.

    A null bound leaves that side free; a setpoint has both bounds equal. Each home gets
    a target inside its own [min, max] and bounds for its re-plan whose sum keeps the
    total inside the request (slack is shared in proportion to each home's room).
    Raises BeyondOffer naming the slots that the homes cannot reach.
    """
    n = len(request_min_kw)
    if len(request_max_kw) != n:
        raise ValueError("request_min_kw and request_max_kw differ in length")
    keys = sorted(envelopes, key=str)
    for key in keys:
        env = envelopes[key]
        for name in ("baseline_kw", "min_kw", "max_kw", "price_up_eur_per_kw", "price_down_eur_per_kw"):
            if len(getattr(env, name)) != n:
                raise ValueError(f"Envelope of {key!r}: {name} has {len(getattr(env, name))} slots, expected {n}")
    avail_lo, avail_hi = available_range(envelopes, n)
    bad = [
        t for t in range(n)
        if (request_max_kw[t] is not None and request_max_kw[t] < avail_lo[t] - tolerance_kw)
        or (request_min_kw[t] is not None and request_min_kw[t] > avail_hi[t] + tolerance_kw)
    ]
    if bad or not keys:
        raise BeyondOffer(bad or list(range(n)), avail_lo, avail_hi)

    shares = {k: HomeShare([None] * n, [None] * n, [None] * n) for k in keys}
    totals: list[float | None] = [None] * n
    cost = 0.0
    for t in range(n):
        lo_req, hi_req = request_min_kw[t], request_max_kw[t]
        if lo_req is None and hi_req is None:
            continue
        x = {k: min(max(envelopes[k].baseline_kw[t], envelopes[k].min_kw[t]), envelopes[k].max_kw[t]) for k in keys}
        total = sum(x.values())
        if lo_req is not None and total < lo_req:
            up_price = {k: max(0.0, envelopes[k].price_up_eur_per_kw[t]) for k in keys}
            order = sorted(keys, key=lambda k: (up_price[k], str(k)))
            room = {k: envelopes[k].max_kw[t] - x[k] for k in keys}
            for k, d in _fill(order, room, lo_req - total).items():
                x[k] += d
                shares[k].cost_eur += up_price[k] * d
        elif hi_req is not None and total > hi_req:
            down_price = {k: max(0.0, envelopes[k].price_down_eur_per_kw[t]) for k in keys}
            order = sorted(keys, key=lambda k: (down_price[k], str(k)))
            room = {k: x[k] - envelopes[k].min_kw[t] for k in keys}
            for k, d in _fill(order, room, total - hi_req).items():
                x[k] -= d
                shares[k].cost_eur += down_price[k] * d
        total = sum(x.values())
        totals[t] = total
        _bounds(t, x, total, lo_req, hi_req, envelopes, shares)
    for share in shares.values():
        cost += share.cost_eur
    return Split(shares, totals, cost, avail_lo, avail_hi)


def _bounds(t, x, total, lo_req, hi_req, envelopes, shares) -> None:
    """Give each home bounds around its target whose sum stays within the request."""
    for k, v in x.items():
        shares[k].target_kw[t] = v
    if lo_req is not None:
        slack = max(0.0, total - lo_req)
        room = {k: max(0.0, x[k] - envelopes[k].min_kw[t]) for k in x}
        whole = sum(room.values())
        for k in x:
            give = slack * room[k] / whole if whole > EPS else 0.0
            shares[k].min_kw[t] = x[k] - min(give, room[k])
    if hi_req is not None:
        slack = max(0.0, hi_req - total)
        room = {k: max(0.0, envelopes[k].max_kw[t] - x[k]) for k in x}
        whole = sum(room.values())
        for k in x:
            give = slack * room[k] / whole if whole > EPS else 0.0
            shares[k].max_kw[t] = x[k] + min(give, room[k])


def merit_order(envelopes: dict[Hashable, HomeEnvelope], slot: int) -> dict[str, list[dict]]:
    """The portfolio's price curve in one slot: cumulative kW available at each price, cheapest first."""
    curves: dict[str, list[dict]] = {"up": [], "down": []}
    for direction, price_name in (("up", "price_up_eur_per_kw"), ("down", "price_down_eur_per_kw")):
        steps = []
        for env in envelopes.values():
            base = env.baseline_kw[slot]
            room = env.max_kw[slot] - base if direction == "up" else base - env.min_kw[slot]
            if room > EPS:
                steps.append((max(0.0, getattr(env, price_name)[slot]), room))
        cumulative = 0.0
        for price, room in sorted(steps):
            cumulative += room
            if curves[direction] and abs(curves[direction][-1]["price_eur_per_kw"] - price) <= EPS:
                curves[direction][-1]["cumulative_kw"] = cumulative
            else:
                curves[direction].append({"price_eur_per_kw": price, "cumulative_kw": cumulative})
    return curves
