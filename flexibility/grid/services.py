"""Actions that write grid flexibility: service accounts, offers, activations, shares."""
from __future__ import annotations

import logging
import zoneinfo
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import Count, Max
from django.utils import timezone

from devices.models import Home
from energy_manager.errors import Conflict, NotFound, Unprocessable
from flexibility.optimizer import envelope, problem_from_dict
from flexibility.planning.models import OptimizationRun, RunStatus, RunTrigger, Schedule
from flexibility.planning.problem_builder import HomeInputs, MissingData, build_problem, input_hash, load_inputs
from flexibility.planning.selectors import grid_request_from_bounds
from flexibility.planning.services import (
    describe_exception, execute_run, fail_run, schedule_reoptimization, solve_problem, store_outcomes, store_result,
    submit_run,
)
from flexibility.planning.services.runs import ensure_forecasts_many
from flexibility.planning.slots import RESOLUTION_MIN, SLOT, local_day_horizon, slot_count

from . import selectors as sel
from . import signals
from .disaggregation import BeyondOffer, disaggregate
from .models import (
    Activation, ActivationMode, ActivationShare, ActivationStatus, FlexibilityOffer, Portfolio, ServiceAccount,
    ServiceRole, ShareStatus,
)
from .service_auth import hash_key, new_api_key

log = logging.getLogger(__name__)
EPS_KW = 1e-6
OFFER_CHUNK = 50  # homes per offer-building task
SHARE_CHUNK = 25  # activation shares re-planned per task


# --- Service accounts -------------------------------------------------------------

@transaction.atomic
def create_service_account(name: str, role: str = ServiceRole.AGGREGATOR, portfolios: list[Portfolio] = ()) -> tuple[ServiceAccount, str]:
    """Create an account and return its API key: shown once, only its hash is kept."""
    prefix, key = new_api_key()
    account = ServiceAccount(name=name, role=role, key_prefix=prefix, key_hash=hash_key(key))
    account.full_clean()
    account.save()
    account.portfolios.set(portfolios)
    return account, key


@transaction.atomic
def rotate_service_account_key(account: ServiceAccount) -> str:
    prefix, key = new_api_key()
    account.key_prefix, account.key_hash = prefix, hash_key(key)
    account.save(update_fields=["key_prefix", "key_hash"])
    return key


# --- Offers ------------------------------------------------------------------------

def delivery_window(home: Home, day: date) -> tuple[datetime, int]:
    """First slot (aware) and slot count of a local delivery day (92/96/100 on DST days)."""
    start, end = local_day_horizon(home, day)
    return start, slot_count(start, end)


def gate_closure(home: Home, day: date) -> datetime:
    """FLEX_GATE_CLOSURE_LOCAL_TIME on the day before delivery, in the home's time zone."""
    hh, mm = (int(p) for p in settings.FLEX_GATE_CLOSURE_LOCAL_TIME.split(":"))
    local = datetime.combine(day - timedelta(days=1), time(hh, mm), tzinfo=zoneinfo.ZoneInfo(home.timezone))
    return local.astimezone(zoneinfo.ZoneInfo("UTC"))


def _per_slot(envelope: dict, name: str) -> list[float]:
    """One per-slot series of envelope(problem).to_dict()."""
    return [float(v) for v in envelope[name]]


def offer_series_from_envelope(envelope: dict) -> dict[str, list[float]]:
    """Baseline and limits in kW, and the opportunity cost per kW of moving to each limit."""
    base = _per_slot(envelope, "baseline_kw")
    lo = [min(v, b) for v, b in zip(_per_slot(envelope, "min_kw"), base)]
    hi = [max(v, b) for v, b in zip(_per_slot(envelope, "max_kw"), base)]
    cost_lo = _per_slot(envelope, "cost_min_eur")
    cost_hi = _per_slot(envelope, "cost_max_eur")
    up = [max(0.0, c) / (h - b) if h - b > EPS_KW else 0.0 for c, h, b in zip(cost_hi, hi, base)]
    down = [max(0.0, c) / (b - l) if b - l > EPS_KW else 0.0 for c, l, b in zip(cost_lo, lo, base)]
    return {"baseline_kw": base, "min_kw": lo, "max_kw": hi, "price_up_eur_per_kw": up, "price_down_eur_per_kw": down}


@transaction.atomic
def save_offer(home: Home, day: date, envelope: dict, run=None, now: datetime | None = None) -> FlexibilityOffer:
    """Write (or refresh) the home's offer for `day`; a frozen offer is never changed."""
    now = now or timezone.now()
    offer = FlexibilityOffer.objects.select_for_update().filter(home=home, delivery_day=day).first()
    if offer is not None and (offer.frozen or now >= offer.gate_closure):
        if not offer.frozen:
            offer.frozen = True
            offer.save(update_fields=["frozen", "updated_at"])
        return offer
    offer = _offer_row(home, day, envelope, run, now, offer)
    offer.save()
    return offer


def build_offer(home_id: int, day: date, now: datetime | None = None) -> FlexibilityOffer | None:
    """Plan the delivery day's envelope for one home and store it as its offer (see `build_offers`)."""
    return build_offers([home_id], day, now).get(home_id)


def build_offers(home_ids: list[int], day: date, now: datetime | None = None) -> dict[int, FlexibilityOffer | None]:
    """Plan the delivery day's envelope of each home and store it as its offer, in one pass.

    The day-ahead run of each home for that day is read with one query: its stored plan is where the envelope
    starts (no second solve) when it still fits the problem.
    A home gets None when it does not contribute (not opted in, no device the HEMS may plan), its
    data cannot describe the day (MissingData, logged), or its envelope fails (logged, alone).
    """
    now = now or timezone.now()
    homes = list(sel.contributing_homes(Home.objects.filter(pk__in=home_ids)).select_related("tariff"))
    out: dict[int, FlexibilityOffer | None] = {pk: None for pk in home_ids}
    if not homes:
        return out
    existing = {o.home_id: o for o in FlexibilityOffer.objects.filter(home__in=homes, delivery_day=day)}
    windows = {h.pk: delivery_window(h, day) for h in homes}
    ends = {pk: start + SLOT * slots for pk, (start, slots) in windows.items()}
    runs: dict[int, OptimizationRun] = {}
    for run in (OptimizationRun.objects.filter(home__in=homes, trigger=RunTrigger.DAY_AHEAD, status=RunStatus.SUCCEEDED,
                                               horizon_start__in={s for s, _ in windows.values()})
                .select_related("schedule").order_by("home_id", "-finished_at")):
        if run.horizon_start == windows[run.home_id][0]:
            runs.setdefault(run.home_id, run)
    inputs = load_inputs(homes, min(s for s, _ in windows.values()), max(ends.values()))  # a fixed number of queries
    built: list[tuple[Home, dict, OptimizationRun | None]] = []
    for home in homes:
        offer = existing.get(home.pk)
        if offer is not None and (offer.frozen or now >= offer.gate_closure):
            built.append((home, {}, None))  # kept as it is (marked frozen when its gate has closed)
            continue
        try:
            env = _offer_envelope(home, day, windows[home.pk][0], ends[home.pk], runs.get(home.pk), now,
                                  inputs[home.pk])
        except Exception:  # one home's bad data never blocks the others' offers
            log.exception("No offer for home %s on %s", home.pk, day)
            continue
        if env is not None:
            built.append((home, env, runs.get(home.pk)))
    out.update(save_offers(day, built, now=now))
    return out


def save_offers(day: date, entries: list[tuple[Home, dict, OptimizationRun | None]],
                now: datetime | None = None) -> dict[int, FlexibilityOffer | None]:
    """Write (or refresh) the offers of many homes for `day` with a fixed number of queries: `save_offer`'s
    rules for each (a frozen offer is never changed), one home whose envelope does not fit fails alone
    (None, logged). Should another task insert one of these offers meanwhile, each home is saved on its own."""
    now = now or timezone.now()
    out: dict[int, FlexibilityOffer | None] = {}
    try:
        with transaction.atomic():
            locked = {o.home_id: o for o in FlexibilityOffer.objects.select_for_update().filter(
                home__in=[home for home, _, _ in entries], delivery_day=day)}
            new, changed, froze = [], [], []
            for home, env, run in entries:
                offer = locked.get(home.pk)
                if offer is not None and (offer.frozen or now >= offer.gate_closure):
                    if not offer.frozen:
                        offer.frozen, offer.updated_at = True, now
                        froze.append(offer)
                    out[home.pk] = offer
                    continue
                try:
                    offer = _offer_row(home, day, env, run, now, offer)
                except (KeyError, ValueError, ValidationError):  # an envelope that does not fit the day
                    log.exception("No offer for home %s on %s", home.pk, day)
                    out[home.pk] = None
                    continue
                (changed if offer.pk else new).append(offer)
                out[home.pk] = offer
            FlexibilityOffer.objects.bulk_create(new)
            FlexibilityOffer.objects.bulk_update(changed, ["start", "resolution_minutes", "slots", "gate_closure",
                                                           "frozen", "run", "updated_at", *sel.OFFER_SERIES])
            FlexibilityOffer.objects.bulk_update(froze, ["frozen", "updated_at"])
    except IntegrityError:  # an offer of one of these homes was inserted meanwhile: one at a time
        out = {}
        for home, env, run in entries:
            try:
                out[home.pk] = save_offer(home, day, env, run=run, now=now)
            except (KeyError, ValueError, ValidationError, IntegrityError):
                log.exception("No offer for home %s on %s", home.pk, day)
                out[home.pk] = None
    return out


def _offer_row(home: Home, day: date, envelope: dict, run, now: datetime,
               offer: FlexibilityOffer | None) -> FlexibilityOffer:
    """The offer row (new or `offer`) holding the envelope, validated; not saved."""
    start, slots = delivery_window(home, day)
    closure = gate_closure(home, day)
    series = offer_series_from_envelope(envelope)
    if len(series["baseline_kw"]) != slots:
        raise ValueError(f"Envelope has {len(series['baseline_kw'])} slots, the delivery day {slots}")
    offer = offer or FlexibilityOffer(home=home, delivery_day=day)
    offer.start, offer.resolution_minutes, offer.slots = start, RESOLUTION_MIN, slots
    offer.gate_closure, offer.frozen, offer.run, offer.updated_at = closure, now >= closure, run, now
    for name, values in series.items():
        setattr(offer, name, values)
    # The home and run are rows just read, and the one offer per home and day is held by the row lock
    # and the database's constraint: checking them again would cost three queries per offer.
    offer.full_clean(exclude=["home", "run"], validate_constraints=False)
    return offer


def _offer_envelope(home: Home, day: date, start: datetime, end: datetime, run, now: datetime,
                    inputs: HomeInputs) -> dict | None:
    """The home's envelope for the day (`envelope(...).to_dict()`), None when it has none (logged)."""
    try:
        problem = build_problem(home, start, end, now=now, inputs=inputs)
    except MissingData as exc:
        log.info("No offer for home %s on %s: %s", home.pk, day, exc)
        return None
    env = envelope(problem_from_dict(problem), plan=_stored_plan(run)).to_dict()
    stats = env.get("stats") or {}
    log.info("Offer for home %s on %s: envelope from %s plan in %s ms (%s)", home.pk, day,
             "its stored" if stats.get("plan") == "reused" else "a new", stats.get("plan_ms"), stats.get("method"))
    if env.get("status") not in ("OPTIMAL", "FEASIBLE") or not env.get("baseline_kw"):
        log.warning("No offer for home %s on %s: envelope %s (%s)", home.pk, day, env.get("status"),
                    "; ".join(env.get("explanation") or []))
        return None
    return env


def _stored_plan(run: OptimizationRun | None) -> dict | None:
    """The day-ahead run's plan as the optimizer's result dict, for the envelope to start from (no second
    solve); the optimizer checks that it fits the problem and solves again when it does not."""
    schedule = getattr(run, "schedule", None) if run is not None else None
    if schedule is None:
        return None
    return {"status": run.solver_status, "devices": schedule.devices, "stats": run.solver_stats,
            "backend": run.backend}


def enqueue_offer_builds(home_ids: list[int], day: date) -> int:
    """Ask for the offers of the contributing homes after commit: one task per OFFER_CHUNK homes
    (called with the homes of a day-ahead chunk once their plans are stored)."""
    ids = list(sel.contributing_homes(Home.objects.filter(pk__in=home_ids)).values_list("pk", flat=True))
    for i in range(0, len(ids), OFFER_CHUNK):
        chunk = ids[i:i + OFFER_CHUNK]
        transaction.on_commit(lambda chunk=chunk: signals.offer_build_due.send(
            sender=FlexibilityOffer, home_ids=chunk, delivery_day=day))
    return len(ids)


def freeze_due_offers(now: datetime | None = None) -> int:
    """Mark every offer whose gate has closed as frozen."""
    now = now or timezone.now()
    return FlexibilityOffer.objects.filter(frozen=False, gate_closure__lte=now).update(frozen=True, updated_at=now)


# --- Activations -------------------------------------------------------------------

class ActivationBeyondOffer(Unprocessable):
    """Well-formed, but the offers cannot deliver it: carries the maximum available per slot."""

    code = "beyond_offer"

    def __init__(self, message: str, slot_starts: list[datetime], available_min_kw: list[float], available_max_kw: list[float], slots: list[int]):
        self.available = {
            "start": [s.isoformat() for s in slot_starts],
            "min_kw": [round(v, 6) for v in available_min_kw],
            "max_kw": [round(v, 6) for v in available_max_kw],
            "slots_beyond": slots,
        }
        super().__init__(message, extra={"available": self.available})


def _offers_covering(homes, start: datetime, slots: int) -> list[FlexibilityOffer]:
    end = start + SLOT * slots
    candidates = FlexibilityOffer.objects.filter(
        home__in=sel.contributing_homes(homes), start__lte=start, start__gt=start - timedelta(hours=26)
    ).select_related("home")
    return [
        o for o in candidates
        if o.end >= end and int((start - o.start).total_seconds()) % (o.resolution_minutes * 60) == 0
    ]


@transaction.atomic
def create_activation(
    principal,
    *,
    start: datetime,
    requested_min_kw: list[float | None],
    requested_max_kw: list[float | None],
    mode: str,
    home: Home | None = None,
    portfolio: Portfolio | None = None,
    external_id: str = "",
    now: datetime | None = None,
) -> Activation:
    """Check the request against the offers, split it at least cost and queue each home's re-plan.

    404 outside the principal's portfolios, 409 once the delivery window has begun, 422 beyond
    what the offers allow (with the available range per slot).
    """
    now = now or timezone.now()
    slots = len(requested_min_kw)
    if home is not None:
        if not sel.homes_for(principal).filter(pk=home.pk).exists():
            raise NotFound("Home not found.")
        homes = Home.objects.filter(pk=home.pk)
    else:
        if not sel.portfolios_for(principal).filter(pk=portfolio.pk).exists():
            raise NotFound("Portfolio not found.")
        homes = portfolio.homes.all()
    end = start + SLOT * slots
    if start <= now:
        raise Conflict(
            f"The delivery window starting {start.isoformat()} has already begun or passed "
            f"(now {now.isoformat()}); activations must come before the first slot."
            if end > now else f"The delivery window ended at {end.isoformat()}."
        )
    offers = _offers_covering(homes, start, slots)
    if not offers:
        raise Unprocessable("No flexibility offer covers this window.")
    first = {o.home_id: int((start - o.start).total_seconds()) // (o.resolution_minutes * 60) for o in offers}
    envelopes = {o.home_id: sel.envelope_of(o, first[o.home_id], slots) for o in offers}
    try:
        split = disaggregate(requested_min_kw, requested_max_kw, envelopes)
    except BeyondOffer as err:
        starts = [start + i * SLOT for i in range(slots)]
        detail = "; ".join(
            f"{starts[t].isoformat()}: {err.available_min_kw[t]:.3f}..{err.available_max_kw[t]:.3f} kW" for t in err.slots[:8]
        )
        raise ActivationBeyondOffer(
            f"The request is beyond the offered flexibility in {len(err.slots)} slot(s). Available net import per slot "
            f"(min..max): {detail}{' ...' if len(err.slots) > 8 else ''}",
            starts, err.available_min_kw, err.available_max_kw, err.slots,
        ) from None
    offer_by_home = {o.home_id: o for o in offers}
    activation = Activation(
        service_account=principal if isinstance(principal, ServiceAccount) else None,
        requested_by=None if isinstance(principal, ServiceAccount) else principal,
        home=home, portfolio=portfolio, delivery_day=offers[0].delivery_day, mode=mode,
        start=start, resolution_minutes=RESOLUTION_MIN, slots=slots,
        requested_min_kw=list(requested_min_kw), requested_max_kw=list(requested_max_kw),
        external_id=external_id, cost_eur=split.cost_eur,
    )
    activation.full_clean()
    activation.save()
    shares = []
    for home_id, share in split.shares.items():
        env = envelopes[home_id]
        moves = any(
            v is not None and abs(v - b) > EPS_KW for v, b in zip(share.target_kw, env.baseline_kw)
        )
        shares.append(ActivationShare(
            activation=activation, home_id=home_id, offer=offer_by_home[home_id],
            target_kw=share.target_kw, min_kw=share.min_kw, max_kw=share.max_kw, cost_eur=share.cost_eur,
            status=ShareStatus.QUEUED if moves else ShareStatus.PLANNED,
            planned_kw=None if moves else list(env.baseline_kw),
            message="" if moves else "The current plan already meets this share.",
        ))
    ActivationShare.objects.bulk_create(shares, batch_size=500)
    queued = list(activation.shares.filter(status=ShareStatus.QUEUED).values_list("pk", flat=True))
    if not queued:
        _settle(activation)
    else:
        def announce() -> None:
            for i in range(0, len(queued), SHARE_CHUNK):
                signals.share_replan_due.send(sender=ActivationShare, share_pks=queued[i:i + SHARE_CHUNK])

        transaction.on_commit(announce)
    return activation


class SharesContradict(Conflict):
    """A share asks, in some slot, what the home's planned shares of other activations exclude."""


def share_grid_request(share: ActivationShare, offer: FlexibilityOffer,
                       committed: list[dict]) -> tuple[datetime, datetime, dict]:
    """The share as hard per-slot bounds on net import over the offer's delivery day, together with the
    home's shares already planned (`committed`, selectors.committed_shares): an earlier activation is not
    given up for a later one. Raises SharesContradict where the two ask for disjoint powers."""
    act = share.activation
    bounds = {"start": act.start, "resolution_minutes": act.resolution_minutes, "min_kw": share.min_kw,
              "max_kw": share.max_kw}
    own = grid_request_from_bounds([bounds], offer.start, offer.slots, offer.resolution_minutes, None)
    earlier = grid_request_from_bounds(committed, offer.start, offer.slots, offer.resolution_minutes, None)
    for t in range(offer.slots if own and earlier else 0):
        lo = [v for v in (own["min_net_import_kw"][t], earlier["min_net_import_kw"][t]) if v is not None]
        hi = [v for v in (own["max_net_import_kw"][t], earlier["max_net_import_kw"][t]) if v is not None]
        if lo and hi and max(lo) > min(hi) + 1e-9:
            at = offer.start + timedelta(minutes=offer.resolution_minutes * t)
            raise SharesContradict(
                f"At {at.isoformat()} the home already follows another activation ({_range_kw(earlier, t)}), "
                f"which this one ({_range_kw(own, t)}) excludes.")
    return offer.start, offer.end, grid_request_from_bounds([bounds, *committed], offer.start, offer.slots,
                                                            offer.resolution_minutes, None)


def _range_kw(request: dict, t: int) -> str:
    """A grid request's bounds on net import in slot t, in words."""
    lo, hi = request["min_net_import_kw"][t], request["max_net_import_kw"][t]
    if lo is not None and hi is not None:
        return f"{lo:g} kW" if lo == hi else f"{lo:g} to {hi:g} kW"
    return f"at least {lo:g} kW" if lo is not None else f"at most {hi:g} kW"


def replan_share(share_id: int) -> ActivationShare:
    """Task body: re-optimize the share's home with its bounds as hard constraints.

    The run is recorded through the runs service (without a solve message) and solved right here
    (execute_run), so the share is settled without waiting. Storing the result dispatches the new plan: commands
    for devices under automatic management, recommendations and a notification otherwise.
    """
    share = ActivationShare.objects.select_related("activation", "home", "offer").get(pk=share_id)
    if share.status != ShareStatus.QUEUED:
        return share
    if share.run_id is None:
        committed = sel.committed_shares(share.home, share.offer.start, share.offer.end)
        try:
            start, end, grid_request = share_grid_request(share, share.offer, committed)
        except SharesContradict as exc:
            return record_share_failure(share.pk, exc.message, ShareStatus.INFEASIBLE)
        try:
            with transaction.atomic():
                run, _ = submit_run(share.home, trigger=RunTrigger.ACTIVATION, horizon_start=start,
                                    horizon_end=end, grid_request=grid_request, force=True, enqueue=False)
                ActivationShare.objects.filter(pk=share.pk).update(run=run)
        except MissingData as exc:
            return record_share_failure(share.pk, str(exc))
    else:
        run = share.run
    execute_run(run.pk)
    return record_share_plan(share.pk, OptimizationRun.objects.get(pk=run.pk))


def replan_shares(share_ids: list[int]) -> dict[int, str]:
    """Task body: re-plan a chunk of shares as the day-ahead chunk plans its homes; returns each share's status.

    The homes' forecasts and rows are read for the whole chunk (a fixed number of queries), their runs
    written with one INSERT, each home solved here, the outcomes stored together (`store_outcomes`:
    schedules, commands, recommendations in bulk), the shares recorded with one UPDATE and the activation
    settled once. A share whose home lacks data fails alone with the reason; if storing the outcomes at once
    fails, each is stored on its own. A redelivered chunk finishes the shares whose run it already
    recorded one at a time (`replan_share`).
    """
    shares = list(ActivationShare.objects.filter(pk__in=share_ids, status=ShareStatus.QUEUED)
                  .select_related("activation", "home", "home__tariff", "offer"))
    out = {share.pk: replan_share(share.pk).status for share in shares if share.run_id is not None}
    runs = _record_share_runs([share for share in shares if share.run_id is None], out)
    solved = []
    for run in runs:
        try:
            solved.append((run, solve_problem(run)))
        except Exception as exc:  # an invalid problem or a solver crash: this home only
            log.exception("activation run %s of home %s failed", run.pk, run.home_id)
            fail_run(run.pk, f"Unexpected error: {describe_exception(exc)}")
    with transaction.atomic():
        held = set(OptimizationRun.objects.select_for_update().filter(
            pk__in=[run.pk for run, _ in solved], status=RunStatus.RUNNING).values_list("pk", flat=True))
        todo = [(run, result) for run, result in solved if run.pk in held]
        try:
            with transaction.atomic():
                store_outcomes(todo)
            todo = []
        except (OperationalError, InterfaceError):
            raise  # the database, not a home: the task retries
        except Exception:
            log.exception("storing %s activation runs at once failed; storing them one by one", len(todo))
    for run, result in todo:  # left only when storing them at once failed: each in its own transaction
        try:
            store_result(run.pk, result)
        except Exception as exc:
            log.exception("storing activation run %s of home %s failed", run.pk, run.home_id)
            fail_run(run.pk, f"Unexpected error: {describe_exception(exc)}")
    out.update(record_share_plans([run.pk for run in runs]))
    return out


def _record_share_runs(shares: list[ActivationShare], out: dict[int, str]) -> list[OptimizationRun]:
    """One INSERT of a running activation run per share whose problem could be built, the shares pointed at
    them; a share whose problem could not be built fails with the reason (in `out`). Returns the runs."""
    if not shares:
        return []
    committed = sel.committed_shares_of_homes([share.home_id for share in shares],
                                              min(share.offer.start for share in shares),
                                              max(share.offer.end for share in shares))
    requests = {}
    for share in shares:
        try:
            requests[share.pk] = share_grid_request(share, share.offer, committed.get(share.home_id, []))
        except SharesContradict as exc:
            out[share.pk] = record_share_failure(share.pk, exc.message, ShareStatus.INFEASIBLE).status
    shares = [share for share in shares if share.pk in requests]
    if not shares:
        return []
    horizons = {share.home_id: (share.home, *requests[share.pk][:2]) for share in shares}
    inputs = ensure_forecasts_many(horizons, refresh=False)
    rest = [home for pk, (home, _, _) in horizons.items() if pk not in inputs]
    if rest:  # just forecast: read again (a fixed number of queries)
        inputs.update(load_inputs(rest, min(horizons[h.pk][1] for h in rest), max(horizons[h.pk][2] for h in rest)))
    backend, limit = settings.OPTIMIZER_BACKEND, float(settings.OPTIMIZER_TIME_LIMIT_S)
    now = timezone.now()
    runs, linked = [], []
    for share in shares:
        start, end, grid_request = requests[share.pk]
        try:
            problem = build_problem(share.home, start, end, grid_request=grid_request, inputs=inputs.get(share.home_id))
        except Exception as exc:  # MissingData and any other bad data: this share only
            if not isinstance(exc, MissingData):
                log.exception("activation problem of home %s could not be built", share.home_id)
            reason = str(exc) if isinstance(exc, MissingData) else f"The home's data is invalid: {describe_exception(exc)}"
            out[share.pk] = record_share_failure(share.pk, reason).status
            continue
        run = OptimizationRun(
            home=share.home, trigger=RunTrigger.ACTIVATION, problem=problem, backend=backend, time_limit_s=limit,
            input_hash=input_hash(problem, backend, limit), horizon_start=start, horizon_end=end,
            status=RunStatus.RUNNING, attempts=1, started_at=now, last_enqueued_at=now)
        runs.append(run)
        linked.append(share)
    with transaction.atomic():
        OptimizationRun.objects.bulk_create(runs)
        for share, run in zip(linked, runs):
            share.run = run
        ActivationShare.objects.bulk_update(linked, ["run"])
    return runs


@transaction.atomic
def record_share_plans(run_ids: list[int]) -> dict[int, str]:
    """`record_share_plan` for the shares of many finished runs: one locked read, one UPDATE, each
    activation settled once. Returns each share's status."""
    shares = list(ActivationShare.objects.select_for_update(of=("self",)).filter(
        run_id__in=run_ids, status=ShareStatus.QUEUED).select_related("activation", "offer", "run", "run__schedule"))
    behind = _plans_left_behind(shares)
    for share in shares:
        _share_outcome(share, share.run, behind.get(share.pk))
    ActivationShare.objects.bulk_update(shares, ["planned_kw", "status", "message"])
    for activation in {share.activation_id: share.activation for share in shares}.values():
        _settle(activation)
    return {share.pk: share.status for share in shares}


@transaction.atomic
def record_share_failure(share_id: int, message: str, status: str = ShareStatus.FAILED) -> ActivationShare:
    share = ActivationShare.objects.select_for_update(of=("self",)).select_related("activation").get(pk=share_id)
    share.status, share.message = status, message
    share.save()
    _settle(share.activation)
    return share


@transaction.atomic
def record_share_plan(share_id: int, run) -> ActivationShare:
    """Store the outcome of the share's run and settle the activation once every share is done."""
    share = ActivationShare.objects.select_for_update(of=("self",)).select_related("activation", "offer").get(pk=share_id)
    share.run = run
    if run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        share.save()
        return share
    _share_outcome(share, run, _plans_left_behind([share]).get(share.pk))
    share.save()
    _settle(share.activation)
    return share


def _plans_left_behind(shares: list[ActivationShare]) -> dict[int, str]:
    """Shares (locked, still queued) whose plan was overtaken while it was made: since their problem was built,
    another share of the home was planned, or a later plan of the home was stored (which was built without
    this share). Each such home is re-planned with every commitment it keeps. Returns, per share pk, why the
    share contradicts a share planned meanwhile (the share is then infeasible), or "" (the share stands).

    The homes' rows are locked in id order, as storing a plan locks them: of two shares of one home recorded at
    once, or a share recorded while a plan is stored, the later one sees the earlier."""
    done = [share for share in shares if share.run.status == RunStatus.SUCCEEDED and hasattr(share.run, "schedule")]
    if not done:
        return {}
    homes = sorted({share.home_id for share in done})
    list(Home.objects.select_for_update().filter(pk__in=homes).order_by("pk").values_list("pk", flat=True))
    committed = sel.committed_shares_of_homes(homes, min(share.offer.start for share in done),
                                              max(share.offer.end for share in done))
    newest = dict(Schedule.objects.filter(home_id__in=homes).order_by().values("home_id")
                  .annotate(last=Max("pk")).values_list("home_id", "last"))
    out, replan = {}, set()
    for share in done:
        try:
            request = share_grid_request(share, share.offer, committed.get(share.home_id, []))[2]
        except SharesContradict as exc:
            out[share.pk] = exc.message
            replan.add(share.home_id)
            continue
        if request != share.run.problem.get("grid_request") or newest[share.home_id] != share.run.schedule.pk:
            out[share.pk] = ""
            replan.add(share.home_id)
    for home_id in replan:
        schedule_reoptimization(home_id, "two plans of the home were made at once, each without the other's "
                                         "activation")
    return out


def _share_outcome(share: ActivationShare, run: OptimizationRun, contradicts: str | None = None) -> None:
    """The share's status, message and planned net import from its finished run (not saved); `contradicts`
    names the share planned meanwhile that this one excludes (`_plans_left_behind`)."""
    if contradicts:
        share.status, share.message = ShareStatus.INFEASIBLE, contradicts
    elif run.status == RunStatus.SUCCEEDED and hasattr(run, "schedule"):
        act, schedule = share.activation, run.schedule
        first = int((act.start - schedule.start).total_seconds()) // (schedule.resolution_minutes * 60)
        share.planned_kw = [float(v) for v in schedule.net_import_kw[first:first + act.slots]]
        share.status, share.message = ShareStatus.PLANNED, ""
    elif run.status == RunStatus.INFEASIBLE:
        share.status, share.message = ShareStatus.INFEASIBLE, "; ".join(run.explanation or []) or "Infeasible."
    else:
        share.status, share.message = ShareStatus.FAILED, run.error or f"Run ended {run.status}."


def _settle(activation: Activation) -> None:
    # The row lock orders the shares' last steps: the last one to finish sees every other share's status.
    activation = Activation.objects.select_for_update().get(pk=activation.pk)
    counts = dict.fromkeys(ShareStatus.values, 0)
    counts.update(activation.shares.order_by().values_list("status").annotate(n=Count("pk")))
    if counts[ShareStatus.QUEUED]:
        return
    if counts[ShareStatus.PLANNED] == sum(counts.values()):
        activation.status = ActivationStatus.PLANNED
    elif counts[ShareStatus.PLANNED]:
        activation.status = ActivationStatus.PARTIAL
    else:
        activation.status = ActivationStatus.FAILED
    activation.planned_at = timezone.now()
    activation.save(update_fields=["status", "planned_at"])
