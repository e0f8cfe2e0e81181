"""Read-side queries for grid flexibility: scoping, offers, aggregation, delivery."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Optional

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from devices.models import Home
from devices.telemetry import slot_energy
from energy_manager.api_input import parse_id

from .disaggregation import HomeEnvelope, merit_order
from .models import (Activation, ActivationShare, ActivationStatus, FlexibilityOffer, Portfolio, ServiceAccount,
                     ShareStatus)

OFFER_SERIES = ("baseline_kw", "min_kw", "max_kw", "price_up_eur_per_kw", "price_down_eur_per_kw")


def portfolios_for(principal) -> QuerySet[Portfolio]:
    """Portfolios a service account is linked to; staff users see all; anyone else none."""
    if isinstance(principal, ServiceAccount):
        return principal.portfolios.all()
    if getattr(principal, "is_staff", False):
        return Portfolio.objects.all()
    return Portfolio.objects.none()


def homes_for(principal) -> QuerySet[Home]:
    """Homes an operator principal may see: those in its portfolios."""
    if getattr(principal, "is_staff", False) and not isinstance(principal, ServiceAccount):
        return Home.objects.all()
    return Home.objects.filter(portfolios__in=portfolios_for(principal)).distinct()


def contributing_homes(homes: QuerySet[Home]) -> QuerySet[Home]:
    """Who contributes flexibility (the one rule): opted-in homes with at least one device the
    household lets the HEMS plan."""
    return homes.filter(global_optimizer_opt_in=True, devices__allow_hems=True).distinct()


def home_contributes(home: Home) -> bool:
    return contributing_homes(Home.objects.filter(pk=home.pk)).exists()


def offers_for(principal, delivery_day: date | None = None, portfolio: Portfolio | None = None) -> QuerySet[FlexibilityOffer]:
    homes = contributing_homes(homes_for(principal))
    if portfolio is not None:
        homes = homes.filter(portfolios=portfolio)
    qs = FlexibilityOffer.objects.filter(home__in=homes).select_related("home")
    if delivery_day is not None:
        qs = qs.filter(delivery_day=delivery_day)
    return qs.order_by("home_id", "delivery_day")


def latest_offer_for_home(home: Home) -> FlexibilityOffer | None:
    return home.flexibility_offers.order_by("-delivery_day").first()


def envelope_of(offer: FlexibilityOffer, first: int = 0, count: int | None = None) -> HomeEnvelope:
    end = offer.slots if count is None else first + count
    return HomeEnvelope(*(list(getattr(offer, n)[first:end]) for n in OFFER_SERIES))


def portfolio_offer(portfolio: Portfolio, delivery_day: date, offers: list[FlexibilityOffer]) -> dict | None:
    """Sum of the homes' offers on a common slot grid, with a merit-order price curve per slot.

    Homes of one portfolio share a delivery-day grid when they share a time zone; offers on
    another grid (a different zone) are left out and counted in `homes_on_other_grid`.
    """
    if not offers:
        return None
    ref = offers[0]
    same = [o for o in offers if o.start == ref.start and o.slots == ref.slots and o.resolution_minutes == ref.resolution_minutes]
    envelopes = {o.home_id: envelope_of(o) for o in same}
    n = ref.slots
    summed = {name: [sum(getattr(o, name)[t] for o in same) for t in range(n)] for name in ("baseline_kw", "min_kw", "max_kw")}
    return {
        "portfolio": portfolio.pk,
        "portfolio_code": portfolio.code,
        "delivery_day": delivery_day.isoformat(),
        "start": ref.start.isoformat(),
        "resolution_minutes": ref.resolution_minutes,
        "slots": n,
        "homes": len(same),
        "homes_on_other_grid": len(offers) - len(same),
        "frozen": all(o.frozen for o in same),
        "gate_closure": min(o.gate_closure for o in same).isoformat(),
        **summed,
        "merit_order": [merit_order(envelopes, t) for t in range(n)],
    }


def activations_for(principal) -> QuerySet[Activation]:
    qs = Activation.objects.select_related("portfolio", "home")
    if isinstance(principal, ServiceAccount):
        return qs.filter(service_account=principal)
    if getattr(principal, "is_staff", False):
        return qs
    return qs.none()


def measured_kw(home_ids: list[int], start: datetime, resolution_minutes: int, slots: int) -> list[float | None]:
    """Home-level telemetry (device null) averaged per home and slot, summed over homes; null = no data."""
    meter = slot_energy(home_ids, start, slots, resolution_minutes)
    dt_h = resolution_minutes / 60.0
    return [(imp - exp) / dt_h if n else None for imp, exp, n in zip(meter.import_kwh, meter.export_kwh, meter.reporting)]


def delivery(activation: Activation) -> dict:
    """Requested vs planned vs measured net import per slot of the activation."""
    shares = list(activation.shares.select_related("run"))
    n = activation.slots
    planned: list[float | None] = [None] * n
    for share in shares:
        series = share_planned_kw(share)
        if series is None:
            continue
        for t, v in enumerate(series):
            if v is not None:
                planned[t] = (planned[t] or 0.0) + v
    measured = measured_kw([s.home_id for s in shares], activation.start, activation.resolution_minutes, n)
    return {
        "slots": [
            {
                "start": s.isoformat(),
                "requested_min_kw": activation.requested_min_kw[t],
                "requested_max_kw": activation.requested_max_kw[t],
                "planned_kw": planned[t],
                "measured_kw": measured[t],
            }
            for t, s in enumerate(activation.slot_starts())
        ]
    }


def share_planned_kw(share: ActivationShare) -> list[float | None] | None:
    """Net import of the share's new plan over the activation's slots (stored when the plan landed)."""
    return share.planned_kw


def user_for_compat_id(user_id: str):
    """FlexiHome user_id -> Django user: the username, else (all digits) the primary key."""
    User = get_user_model()
    user = User.objects.filter(username=user_id).first()
    pk = parse_id(user_id)
    if user is None and pk is not None:
        user = User.objects.filter(pk=pk).first()
    return user


def home_of_user(user) -> Home | None:
    """The user's home for the compatible API: the first opted-in one, else the first."""
    homes = Home.objects.filter(owner=user).order_by("-global_optimizer_opt_in", "id")
    return homes.first()


def committed_shares(home: Home, start: datetime, end: datetime) -> list[dict]:
    """The bounds of the activation shares `home` was planned to follow that overlap [start, end)."""
    return committed_shares_of_homes([home.pk], start, end).get(home.pk, [])


def committed_shares_of_homes(home_ids: list[int], start: datetime, end: datetime) -> dict[int, list[dict]]:
    """`committed_shares` of many homes in one query: home id -> bounds ({start, resolution_minutes,
    min_kw, max_kw}) of its planned shares that overlap [start, end)."""
    shares = (ActivationShare.objects.filter(home_id__in=home_ids, status=ShareStatus.PLANNED,
                                             activation__start__lt=end, activation__start__gte=start - timedelta(days=2))
              .exclude(activation__status=ActivationStatus.FAILED).select_related("activation"))
    out: dict[int, list[dict]] = {}
    for s in shares:
        if s.activation.end > start:
            out.setdefault(s.home_id, []).append({
                "start": s.activation.start, "resolution_minutes": s.activation.resolution_minutes,
                "min_kw": s.min_kw, "max_kw": s.max_kw})
    return out


def activations_end(home: Home, now: datetime) -> Optional[datetime]:
    """When the last not-failed activation asking something of `home` ends, if after `now`."""
    recent = (Activation.objects.filter(Q(home=home) | Q(shares__home=home), start__gte=now - timedelta(days=2))
              .exclude(status=ActivationStatus.FAILED).distinct())
    return max((a.end for a in recent if a.end > now), default=None)
