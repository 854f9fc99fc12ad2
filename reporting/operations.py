"""How the network runs day to day: referrals by state and domain, delays, answers, slots.

Why: coordinators steer the teams with these figures (is triage keeping up, which partner
answers slowly or refuses often, is a housing contingent used, what is overdue). They read
referrals and pools, not pathways, and are shown for both programmes unless filtered.
Breakdowns (per state, domain, partner, offer, pool) are one result each, with a code
"<family>.<key>", so the CSV and the monthly series treat them like any other figure.
Instants are compared in UTC and dated by their UTC day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime

from reporting.indicators import (
    Context,
    Data,
    Indicator,
    Kind,
    Measure,
    aware,
    count,
    end_of,
    median_days,
    rate,
)
from reporting.records import Period, PoolRecord, Referral

# The lifecycle's states and labels (engine.domain.lifecycle): this package is pure and cannot
# import them; tests/unit/test_lifecycle.py checks the two agree.
STATES: dict[str, str] = {
    "new": "Nouvelle",
    "triaging": "En qualification",
    "referred": "Orientée",
    "waitlisted": "En attente de place",
    "proposed": "Place proposée",
    "accepted": "Acceptée",
    "in_progress": "En cours",
    "closed": "Clôturée",
    "refused": "Refusée",
    "expired": "Expirée",
    "cancelled": "Annulée",
    "transferred": "Transférée",
}
OPEN_STATES = frozenset(
    {"new", "triaging", "referred", "waitlisted", "proposed", "accepted", "in_progress"}
)
DOMAINS: dict[str, str] = {
    "emploi": "emploi",
    "sante": "santé",
    "logement": "logement",
    "transverse": "transverse",
}

NO_TRIAGE = "aucune orientation qualifiée pendant la période"
NO_ANSWER = "aucune réponse de partenaire pendant la période"
NO_PLACEMENT = "aucune place attribuée après une attente pendant la période"
NO_CAPACITY = "aucune place dans les contingents valables pendant la période"


def _day(dt: datetime) -> date:
    return aware(dt).date()


def _in(dt: datetime | None, period: Period) -> bool:
    return dt is not None and period.contains(_day(dt))


def is_open(r: Referral, at: datetime) -> bool:
    """Created by that instant and not yet ended then (its end instant, else its state)."""
    at = aware(at)
    if aware(r.created_at) > at:
        return False
    if r.ended_at is not None:
        return aware(r.ended_at) > at
    return r.state in OPEN_STATES


def is_overdue(r: Referral, at: datetime) -> bool:
    """Open at that instant with its due date already past."""
    return is_open(r, at) and r.due_at is not None and aware(r.due_at) < aware(at)


def _created(ctx: Context) -> list[Referral]:
    return [r for r in ctx.data.referrals if _in(r.created_at, ctx.period)]


def _answered(ctx: Context, keep: Callable[[Referral], bool]) -> list[Referral]:
    """Partner answers received in the period."""
    return [
        r
        for r in ctx.data.referrals
        if r.partner is not None and r.accepted is not None and _in(r.answered_at, ctx.period)
        if keep(r)
    ]


def _acceptance(keep: Callable[[Referral], bool]) -> Callable[[Context], Measure]:
    def measure(ctx: Context) -> Measure:
        answers = _answered(ctx, keep)
        return rate(sum(1 for r in answers if r.accepted), len(answers), NO_ANSWER)

    return measure


def _answer_delay(keep: Callable[[Referral], bool]) -> Callable[[Context], Measure]:
    def measure(ctx: Context) -> Measure:
        return median_days(
            [
                aware(r.answered_at) - aware(r.referred_at)
                for r in _answered(ctx, keep)
                if r.answered_at is not None and r.referred_at is not None
            ],
            NO_ANSWER,
        )

    return measure


def _triage_delay(ctx: Context) -> Measure:
    return median_days(
        [
            aware(r.triaged_at) - aware(r.created_at)
            for r in ctx.data.referrals
            if r.triaged_at is not None and _in(r.triaged_at, ctx.period)
        ],
        NO_TRIAGE,
    )


def _waitlist_delay(pool: str | None) -> Callable[[Context], Measure]:
    def measure(ctx: Context) -> Measure:
        return median_days(
            [
                aware(r.placed_at) - aware(r.waitlisted_at)
                for r in ctx.data.referrals
                if r.placed_at is not None
                and r.waitlisted_at is not None
                and _in(r.placed_at, ctx.period)
                and (pool is None or r.pool == pool)
            ],
            NO_PLACEMENT,
        )

    return measure


def _pools(ctx: Context, code: str | None) -> list[PoolRecord]:
    """Pools valid for at least one day of the period."""
    return [
        p
        for p in ctx.data.pools
        if p.period_start <= ctx.period.end
        and p.period_end >= ctx.period.start
        and (code is None or p.code == code)
    ]


def _pool_use(code: str | None, used: Callable[[PoolRecord], int]) -> Callable[[Context], Measure]:
    def measure(ctx: Context) -> Measure:
        pools = _pools(ctx, code)
        return rate(sum(used(p) for p in pools), sum(p.capacity for p in pools), NO_CAPACITY)

    return measure


def _pool_waiting(code: str) -> Callable[[Context], Measure]:
    return lambda ctx: count(sum(p.waiting for p in _pools(ctx, code)))


def _open(ctx: Context) -> Measure:
    return count(sum(1 for r in ctx.data.referrals if is_open(r, ctx.as_of)))


def _overdue(ctx: Context) -> Measure:
    opened = [r for r in ctx.data.referrals if is_open(r, ctx.as_of)]
    late = sum(1 for r in opened if is_overdue(r, ctx.as_of))
    return Measure(late, late, len(opened))


def _ind(
    code: str, label: str, definition: str, kind: Kind, m: Callable[[Context], Measure]
) -> Indicator:
    return Indicator(code, None, label, definition, kind, m)


_CREATED = "Orientations créées pendant la période"
_ANSWERS = "réponses (acceptation ou refus) reçues des partenaires pendant la période"
_FILL = (
    "(places attribuées et non libérées + places en proposition) / capacité, pour les "
    "contingents valables au moins un jour de la période, à la date de l'extraction"
)
_HELD = (
    "places attribuées et non libérées / capacité, pour les contingents valables au moins "
    "un jour de la période, à la date de l'extraction"
)


def by_state(state: str) -> Indicator:
    label = STATES.get(state, state)
    return _ind(
        f"referrals_by_state.{state}",
        f"Orientations créées — état « {label} »",
        f"{_CREATED} et qui sont aujourd'hui dans l'état « {label} ».",
        "count",
        lambda ctx: count(sum(1 for r in _created(ctx) if r.state == state)),
    )


def by_domain(domain: str) -> Indicator:
    label = DOMAINS.get(domain, domain)
    return _ind(
        f"referrals_by_domain.{domain}",
        f"Orientations créées — domaine {label}",
        f"{_CREATED} dans le domaine {label}.",
        "count",
        lambda ctx: count(sum(1 for r in _created(ctx) if r.domain == domain)),
    )


def partner_acceptance(partner: str) -> Indicator:
    return _ind(
        f"partner_acceptance.{partner}",
        f"Taux d'acceptation — partenaire {partner}",
        f"Parmi les {_ANSWERS} du partenaire {partner}, part des acceptations.",
        "rate",
        _acceptance(lambda r: r.partner == partner),
    )


def partner_answer_delay(partner: str) -> Indicator:
    return _ind(
        f"partner_answer_delay.{partner}",
        f"Délai médian de réponse — partenaire {partner}",
        f"Pour les {_ANSWERS} du partenaire {partner}, délai médian entre l'envoi de "
        "l'orientation et la réponse, en jours.",
        "median_days",
        _answer_delay(lambda r: r.partner == partner),
    )


def offer_acceptance(offer: str) -> Indicator:
    return _ind(
        f"offer_acceptance.{offer}",
        f"Taux d'acceptation — offre {offer}",
        f"Parmi les {_ANSWERS} sur l'offre {offer}, part des acceptations.",
        "rate",
        _acceptance(lambda r: r.offer == offer),
    )


def offer_answer_delay(offer: str) -> Indicator:
    return _ind(
        f"offer_answer_delay.{offer}",
        f"Délai médian de réponse — offre {offer}",
        f"Pour les {_ANSWERS} sur l'offre {offer}, délai médian entre l'envoi de "
        "l'orientation et la réponse, en jours.",
        "median_days",
        _answer_delay(lambda r: r.offer == offer),
    )


def pool_fill(code: str, name: str | None = None) -> Indicator:
    return _ind(
        f"pool_fill.{code}",
        f"Remplissage du contingent {name or code}",
        f"Contingent {name or code} : {_FILL}.",
        "rate",
        _pool_use(code, lambda p: p.held + p.proposed),
    )


def pool_held(code: str, name: str | None = None) -> Indicator:
    return _ind(
        f"pool_held.{code}",
        f"Places attribuées du contingent {name or code}",
        f"Contingent {name or code} : {_HELD}.",
        "rate",
        _pool_use(code, lambda p: p.held),
    )


def pool_waiting(code: str, name: str | None = None) -> Indicator:
    return _ind(
        f"pool_waiting.{code}",
        f"En attente sur le contingent {name or code}",
        f"Nombre d'orientations en attente d'une place du contingent {name or code}, à la "
        "date de l'extraction (contingent valable au moins un jour de la période).",
        "count",
        _pool_waiting(code),
    )


def pool_waitlist_delay(code: str, name: str | None = None) -> Indicator:
    return _ind(
        f"waitlist_median_days.{code}",
        f"Délai médian d'attente — contingent {name or code}",
        f"Pour les orientations ayant obtenu pendant la période une place du contingent "
        f"{name or code} après une attente, délai médian entre la mise en attente et "
        "l'attribution de la place, en jours.",
        "median_days",
        _waitlist_delay(code),
    )


STATIC: tuple[Indicator, ...] = (
    _ind(
        "referrals_created",
        "Orientations créées",
        "Nombre d'orientations créées pendant la période, tous états confondus.",
        "count",
        lambda ctx: count(len(_created(ctx))),
    ),
    *(by_state(s) for s in STATES),
    *(by_domain(d) for d in DOMAINS),
    _ind(
        "triage_median_days",
        "Délai médian de qualification",
        "Pour les orientations qualifiées pendant la période (sorties de l'état « Nouvelle »), "
        "délai médian entre leur création et leur qualification, en jours.",
        "median_days",
        _triage_delay,
    ),
    _ind(
        "partner_answer_delay",
        "Délai médian de réponse des partenaires",
        f"Pour les {_ANSWERS}, délai médian entre l'envoi de l'orientation au partenaire et "
        "sa réponse, en jours.",
        "median_days",
        _answer_delay(lambda r: True),
    ),
    _ind(
        "partner_acceptance",
        "Taux d'acceptation des partenaires",
        f"Parmi les {_ANSWERS}, part des acceptations.",
        "rate",
        _acceptance(lambda r: True),
    ),
    _ind(
        "pool_fill",
        "Remplissage des contingents",
        f"Tous contingents confondus : {_FILL}.",
        "rate",
        _pool_use(None, lambda p: p.held + p.proposed),
    ),
    _ind(
        "pool_held",
        "Places attribuées des contingents",
        f"Tous contingents confondus : {_HELD}.",
        "rate",
        _pool_use(None, lambda p: p.held),
    ),
    _ind(
        "waitlist_median_days",
        "Délai médian d'attente avant une place",
        "Pour les orientations ayant obtenu une place pendant la période après une attente, "
        "délai médian entre la mise en attente et l'attribution de la place, en jours.",
        "median_days",
        _waitlist_delay(None),
    ),
    _ind(
        "open_referrals",
        "Orientations ouvertes",
        "Nombre d'orientations ouvertes (ni clôturées, ni refusées, ni expirées, ni annulées, "
        "ni transférées) à la fin de la période ou à la date d'observation choisie.",
        "count",
        _open,
    ),
    _ind(
        "overdue_referrals",
        "Orientations en retard",
        "Nombre d'orientations ouvertes à la fin de la période (ou à la date d'observation "
        "choisie) dont l'échéance était déjà dépassée ; rapporté au nombre d'orientations "
        "ouvertes à ce moment.",
        "count",
        _overdue,
    ),
)

# Families whose members depend on the data: code prefix → indicator for one key.
FAMILIES: dict[str, Callable[[str, str | None], Indicator]] = {
    "referrals_by_state": lambda key, _name: by_state(key),
    "referrals_by_domain": lambda key, _name: by_domain(key),
    "partner_acceptance": lambda key, _name: partner_acceptance(key),
    "partner_answer_delay": lambda key, _name: partner_answer_delay(key),
    "offer_acceptance": lambda key, _name: offer_acceptance(key),
    "offer_answer_delay": lambda key, _name: offer_answer_delay(key),
    "pool_fill": pool_fill,
    "pool_held": pool_held,
    "pool_waiting": pool_waiting,
    "waitlist_median_days": pool_waitlist_delay,
}


def _sorted(keys: Iterable[str | None]) -> list[str]:
    return sorted({k for k in keys if k is not None})


def discovered(data: Data, period: Period) -> list[Indicator]:
    """The per-partner, per-offer and per-pool indicators the (filtered) data calls for.

    Partners and offers that answered during the period; pools valid during it.
    """
    ctx = Context(data, period, end_of(period))
    answers = _answered(ctx, lambda r: True)
    out: list[Indicator] = []
    for partner in _sorted(r.partner for r in answers):
        out += [partner_acceptance(partner), partner_answer_delay(partner)]
    for offer in _sorted(r.offer for r in answers):
        out += [offer_acceptance(offer), offer_answer_delay(offer)]
    names = {p.code: p.name for p in sorted(_pools(ctx, None), key=lambda p: p.code)}
    for code, name in names.items():
        out += [
            pool_fill(code, name),
            pool_held(code, name),
            pool_waiting(code, name),
            pool_waitlist_delay(code, name),
        ]
    return out


def family_member(code: str, data: Data) -> Indicator | None:
    """The indicator for a code "<family>.<key>", named after its pool when there is one."""
    family, sep, key = code.partition(".")
    factory = FAMILIES.get(family)
    if not sep or not key or factory is None:
        return None
    name = next((p.name for p in data.pools if p.code == key), None)
    return factory(key, name)
