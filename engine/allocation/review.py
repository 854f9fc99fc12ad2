"""Read models of the allocation pages: the pools with their live counts, the proposals under
review (filtered, paginated), the recent runs, and the fairness of a run in plain French.

Why here: the pages only render. Counts are live — units held by validated proposals, units
held back by open proposals, and what is left — so a validation or a decline shows at once
on ``/places`` and ``/attributions``; the solver's vocabulary (min-cost flow, justified envy,
bounds) is turned into sentences people understand, and kept for a "technical details" block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import false, func, or_, select
from sqlalchemy.orm import Session

from engine.access.permissions import can, referral_scope
from engine.allocation.commission import commissions
from engine.domain.labels import (
    RUN_WITHOUT_ACCOUNT_LABEL,
    decline_reason_label,
    fr_number,
    plural,
    unit_count,
)
from engine.store import models as m

PROPOSAL_PAGE = 20  # proposals on one page of the review
RECENT_RUNS = 10  # runs in the history
# The review's status filter: URL value -> (proposal statuses, French label).
STATUS_FILTERS: dict[str, tuple[tuple[str, ...], str]] = {
    "a_valider": (("proposed",), "À valider"),
    "validees": (("validated",), "Validées"),
    "declinees": (("declined", "expired"), "Déclinées ou expirées"),
    "toutes": (("proposed", "validated", "declined", "expired"), "Toutes"),
}
DEFAULT_STATUS = "a_valider"
SOLUTION_LABELS: dict[str, str] = {
    "optimal": "optimale (prouvée)",
    "feasible": "réalisable (non prouvée optimale)",
    "infeasible": "impossible",
    "unknown": "inconnue",
    "failed": "en échec",
    "running": "en cours",
}
RUN_STATUS_WORDS: dict[str, str] = {
    "optimal": "Terminée",
    "feasible": "Terminée (limite de temps atteinte)",
    "infeasible": "Sans solution",
    "unknown": "Sans solution (limite de temps)",
    "failed": "En échec",
    "running": "En cours",
}
# Why someone with more points waited while someone with fewer got a place (the solver's
# "justified envy" causes), in words.
WAIT_CAUSES: dict[str, str] = {
    "floor": "pour garantir à un autre territoire sa part minimale",
    "pin": "parce que des places étaient déjà proposées lors d'une attribution précédente",
    "consumption": "parce que leur ménage demandait plusieurs places à la fois",
    "weights": "à cause des critères d'adéquation au dispositif",
    "shortfall": "faute de temps de calcul suffisant",
    "exclusion": "parce qu'une autre orientation de la même personne excluait ce dispositif",
    "stability": "parce que le mécanisme stable respecte les choix exprimés par chacun",
}


def territory_names(session: Session) -> dict[str, str]:
    """Territory code -> name ("isere" -> "Isère")."""
    return dict(session.execute(select(m.Territory.code, m.Territory.name)).all())


_CODES_IN_PARENS = re.compile(r"\(([a-z0-9-]+(?:, [a-z0-9-]+)*)\)")


def with_territory_names(text: str, names: dict[str, str]) -> str:
    """A pool's name (or a sentence naming it) with its territory codes in words:
    "CDC Habitat (paris, seine-saint-denis)" -> "CDC Habitat (Paris, Seine-Saint-Denis)"."""

    def words(match: re.Match[str]) -> str:
        codes = match.group(1).split(", ")
        if all(c in names or c == "national" for c in codes):
            # Inside a pool's name "Convergence" goes without saying: "(Paris, Isère)".
            words = [names.get(c, "national").removeprefix("Convergence ") for c in codes]
            return "(" + ", ".join(words) + ")"
        return match.group(0)

    return _CODES_IN_PARENS.sub(words, text)


def _user_territory(session: Session, user: m.StaffUser) -> str | None:
    if user.role == "national_admin" or user.territory_id is None:
        return None
    return session.scalar(select(m.Territory.code).where(m.Territory.id == user.territory_id))


# --- pools --------------------------------------------------------------------------------


@dataclass
class PoolRow:
    id: int
    code: str
    name: str
    partner: str
    scope: list[str] | None
    period_start: Any
    period_end: Any
    capacity: int
    used: int  # units held by validated proposals (active assignments)
    waiting: int
    unit_kind: str
    proposed: int = 0  # units held back by open proposals, not yet validated
    scope_names: list[str] | None = None  # territory names of the scope (None: national)
    cutoff: int | None = None  # the last run's cut-off score, on the review page

    @property
    def held(self) -> int:
        return self.used

    @property
    def free(self) -> int:
        """Units neither held nor proposed: what the next run can still propose."""
        return max(0, self.capacity - self.used - self.proposed)

    def units(self, n: int) -> str:
        """``n`` units of this pool in words ("3 logements")."""
        return unit_count(n, self.unit_kind)


def pools_overview(
    session: Session,
    user: m.StaffUser,
    *,
    territory: str | None = None,
    pool_id: int | None = None,
) -> list[PoolRow]:
    """Counted pools the user's territory can draw on, with live counts: capacity, held
    (validated), proposed (open proposals), free, waiting. ``territory`` keeps the pools
    covering that territory, ``pool_id`` one pool."""
    used = (
        select(m.SlotUnit.pool_id, func.count().label("n"))
        .join(m.SlotAssignment, m.SlotAssignment.unit_id == m.SlotUnit.id)
        .where(m.SlotAssignment.active)
        .group_by(m.SlotUnit.pool_id)
        .subquery()
    )
    proposed = (
        select(m.AllocationProposal.pool_id, func.sum(m.AllocationProposal.units).label("n"))
        .where(m.AllocationProposal.status == "proposed")
        .group_by(m.AllocationProposal.pool_id)
        .subquery()
    )
    waiting = (
        select(m.Referral.pool_id, func.count().label("n"))
        .where(m.Referral.state == "waitlisted", m.Referral.pool_id.is_not(None))
        .group_by(m.Referral.pool_id)
        .subquery()
    )
    stmt = (
        select(
            m.SlotPool,
            m.Partner.name,
            func.coalesce(used.c.n, 0),
            func.coalesce(proposed.c.n, 0),
            func.coalesce(waiting.c.n, 0),
        )
        .join(m.Offer, m.Offer.id == m.SlotPool.offer_id)
        .join(m.Partner, m.Partner.id == m.Offer.partner_id)
        .outerjoin(used, used.c.pool_id == m.SlotPool.id)
        .outerjoin(proposed, proposed.c.pool_id == m.SlotPool.id)
        .outerjoin(waiting, waiting.c.pool_id == m.SlotPool.id)
        .order_by(m.SlotPool.name, m.SlotPool.id)
    )
    if pool_id is not None:
        stmt = stmt.where(m.SlotPool.id == pool_id)
    code = _user_territory(session, user)
    names = territory_names(session)
    out = []
    for pool, partner, n_used, n_proposed, n_wait in session.execute(stmt).all():
        if user.role != "national_admin" and not (
            pool.scope is None or (code is not None and code in pool.scope)
        ):
            continue
        if territory is not None and not (pool.scope is None or territory in pool.scope):
            continue
        out.append(
            PoolRow(
                id=pool.id,
                code=pool.code,
                name=with_territory_names(pool.name, names),
                partner=partner,
                scope=pool.scope,
                period_start=pool.period_start,
                period_end=pool.period_end,
                capacity=pool.capacity,
                used=int(n_used),
                waiting=int(n_wait),
                unit_kind=pool.unit_kind,
                proposed=int(n_proposed),
                scope_names=None
                if pool.scope is None
                else sorted(names.get(c, c) for c in pool.scope),
            )
        )
    return out


# --- fairness in words --------------------------------------------------------------------


def _pct(ratio: float) -> str:
    return f"{int(ratio * 100 + 1e-9)} %"


def fairness_sentences(
    *,
    worst_share: float | None,
    alpha: float | None,
    floors_unmet: int = 0,
    waited: int = 0,
    causes: dict[str, int] | None = None,
    conditional: bool = False,
    least_served: str | None = None,
) -> list[str]:
    """The fairness of a run as people say it: how much of its proportional share the least
    served territory received, and whether anyone was passed over by someone with fewer
    points (and why). ``conditional``: a simulation ("aurait reçu"); ``least_served``: that
    territory and the places it shared ("Isère, pour Logement CDC (Paris, Isère)")."""
    received = "aurait reçu" if conditional else "a reçu"
    lines: list[str] = []
    minimum = f" (minimum visé : {_pct(alpha)})" if alpha else ""
    if worst_share is None:
        lines.append(
            "Aucun dispositif n'était demandé par plusieurs territoires : il n'y avait pas de "
            "partage de places entre territoires à équilibrer."
        )
    elif worst_share >= 0.995:
        lines.append(
            f"Chaque territoire {received} toute sa part proportionnelle des places partagées."
        )
    elif alpha is not None and worst_share + 1e-9 >= alpha:
        lines.append(
            f"Chaque territoire {received} au moins {_pct(worst_share)} de sa part "
            f"proportionnelle des places partagées{minimum}."
        )
    else:
        who = f" ({least_served})" if least_served else ""
        lines.append(
            f"Le territoire le moins servi{who} {received} {_pct(worst_share)} de sa part "
            f"proportionnelle des places partagées{minimum}."
        )
        if floors_unmet:
            lines.append(
                f"Il manquait {plural(floors_unmet, 'place')} pour garantir ce minimum à "
                "chaque territoire."
            )
    if waited == 0:
        lines.append(
            "Priorité respectée : personne n'est passé·e après une personne ayant moins de "
            "points pour une place à laquelle il ou elle avait droit."
        )
    else:
        verb = "est passée" if waited < 2 else "sont passées"
        head = (
            f"{plural(waited, 'personne')} {verb} après une personne ayant moins de points "
            "pour une place à laquelle elles avaient droit"
        )
        why = [
            f"{fr_number(n)} {WAIT_CAUSES.get(c, 'pour une autre raison')}"
            for c, n in sorted((causes or {}).items())
        ]
        lines.append(head + (" : " + " ; ".join(why) if why else "") + ".")
    return lines


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s".replace(".", ",")


def technical_details(run: m.AllocationRun) -> list[tuple[str, str]]:
    """What the solver did, for those who ask (the page folds it away)."""
    stats = run.stats or {}
    params = run.parameters or {}
    causes: dict[str, int] = {}
    for case in stats.get("envy_cases", []) or []:
        cause = str(case.get("cause"))
        causes[cause] = causes.get(cause, 0) + 1
    envy = int(stats.get("envy", len(stats.get("envy_cases", []) or [])) or 0)
    envy_detail = ", ".join(f"{c} : {n}" for c, n in sorted(causes.items()))
    gap = "—"
    if run.objective is not None and run.bound is not None and run.bound:
        gap = f"{abs(run.bound - run.objective) / abs(run.bound):.4%}".replace(".", ",")
    rows = [
        ("Solveur", run.solver or "—"),
        ("Solution", SOLUTION_LABELS.get(run.status, run.status)),
        ("Objectif", fr_number(run.objective) if run.objective is not None else "—"),
        ("Borne", fr_number(run.bound) if run.bound is not None else "—"),
        ("Écart à la borne", gap),
        ("Temps de calcul", _seconds(run.time_s)),
        ("Limite de temps", _seconds(params.get("time_limit_s"))),
        ("Paramètre alpha (planchers territoriaux)", str(params.get("alpha", "—"))),
        (
            "Taux de remplissage minimal (worst_fill_ratio)",
            "—"
            if stats.get("worst_fill_ratio") is None
            else _pct(float(stats["worst_fill_ratio"])),
        ),
        (
            "Part équitable minimale (worst_share_ratio)",
            "—"
            if stats.get("worst_share_ratio") is None
            else _pct(float(stats["worst_share_ratio"])),
        ),
        ("Cas d'envie justifiée", f"{envy}" + (f" ({envy_detail})" if envy_detail else "")),
        ("Candidats, options", f"{stats.get('candidates', '—')}, {stats.get('options', '—')}"),
        ("Empreinte des données", (run.inputs_digest or "—")[:16]),
    ]
    return rows


def least_served(territory: Any, pool: Any, names: dict[str, str]) -> str | None:
    """ "Isère, pour Logement CDC (Paris, Isère)": where the least served territory's share was
    measured (``worst_share_territory`` and ``_pool`` of a run's stats, runs since 2026-12)."""
    if not territory:
        return None
    who = names.get(str(territory), "hors territoire" if territory == "hors territoire" else None)
    if who is None:
        return None
    return f"{who}, pour {with_territory_names(str(pool), names)}" if pool else who


def run_fairness(run: m.AllocationRun, names: dict[str, str] | None = None) -> list[str]:
    stats = run.stats or {}
    causes: dict[str, int] = {}
    for case in stats.get("envy_cases", []) or []:
        cause = str(case.get("cause"))
        causes[cause] = causes.get(cause, 0) + 1
    alpha = (run.parameters or {}).get("alpha", stats.get("territory_floor_alpha"))
    return fairness_sentences(
        worst_share=stats.get("worst_share_ratio"),
        alpha=float(alpha) if alpha is not None else None,
        floors_unmet=int(stats.get("floors_unmet") or 0),
        waited=int(stats.get("envy", sum(causes.values())) or 0),
        causes=causes,
        conditional=run.dry_run,
        least_served=least_served(
            stats.get("worst_share_territory"), stats.get("worst_share_pool"), names or {}
        ),
    )


@dataclass
class SimulationSummary:
    lines: list[str]
    technical: list[tuple[str, str]]


def simulation_summary(
    report: Any, territory_name: str | None = None, names: dict[str, str] | None = None
) -> SimulationSummary:
    """A dry run (``engine.allocation.run.AllocationReport``) in plain French; ``names``
    (territory code -> name) puts pool names in words."""
    total = sum(report.proposals_by_pool.values())
    where = f" ({territory_name})" if territory_name else ""
    lines = [f"Simulation{where} : rien n'a été enregistré ni envoyé."]
    if report.status not in ("optimal", "feasible"):
        lines.append("Le calcul n'a pas abouti : aucune place ne serait proposée.")
    if total == 0:
        offered = "Aucune nouvelle place ne serait proposée"
    else:
        verb = "serait proposée" if total < 2 else "seraient proposées"
        offered = f"{plural(total, 'nouvelle place', 'nouvelles places')} {verb}"
    staying = plural(report.waiting, "personne resterait", "personnes resteraient")
    lines.append(f"{offered} ; {staying} en attente.")
    for name, n in sorted(report.proposals_by_pool.items()):
        lines.append(f"{with_territory_names(name, names or {})} : {plural(n, 'proposition')}.")
    from engine.allocation.run import DEFAULT_ALPHA, commission_lines

    lines += commission_lines(
        getattr(report, "commission_units", {}) or {},
        getattr(report, "commission_listed", {}) or {},
        names,
        conditional=True,
    )

    lines += fairness_sentences(
        worst_share=report.worst_share_ratio,
        alpha=DEFAULT_ALPHA,
        waited=report.envy,
        causes=report.envy_causes,
        conditional=True,
        least_served=least_served(
            getattr(report, "worst_share_territory", None),
            getattr(report, "worst_share_pool", None),
            names or {},
        ),
    )
    technical = [
        ("Solveur", report.solver),
        ("Solution", SOLUTION_LABELS.get(report.status, report.status)),
        ("Temps de calcul", _seconds(report.time_s)),
        ("Cas d'envie justifiée", str(report.envy)),
    ]
    if report.message:
        technical.append(("Message du solveur", report.message))
    return SimulationSummary(lines, technical)


# --- run history --------------------------------------------------------------------------


@dataclass
class RunRow:
    id: int
    label: str  # "Attribution" or "Simulation"
    dry_run: bool
    started_at: datetime
    who: str
    parameters: str
    status: str
    objective: str
    proposed: int
    validated: int | None  # None for a simulation (nothing to validate)


def recent_runs(session: Session, user: m.StaffUser, *, limit: int = RECENT_RUNS) -> list[RunRow]:
    """The latest runs the user's territory is concerned by, simulations included; counts of
    proposals are those of the user's scope."""
    R = m.AllocationRun
    stmt = select(R).order_by(R.id.desc()).limit(limit)
    code = _user_territory(session, user)
    if user.role != "national_admin":
        stmt = stmt.where(or_(R.territory_code.is_(None), R.territory_code == code))
    runs = list(session.scalars(stmt))
    if not runs:
        return []
    P = m.AllocationProposal
    counts: dict[tuple[int, str], int] = {
        (run_id, status): int(n)
        for run_id, status, n in session.execute(
            select(P.run_id, P.status, func.count())
            .join(m.Referral, m.Referral.id == P.referral_id)
            .where(P.run_id.in_([r.id for r in runs]), referral_scope(user))
            .group_by(P.run_id, P.status)
        ).all()
    }
    people = dict(
        session.execute(
            select(m.StaffUser.id, m.StaffUser.display_name).where(
                m.StaffUser.id.in_({r.created_by for r in runs} - {None})
            )
        ).all()
    )
    names = territory_names(session)
    out = []
    for r in runs:
        params = r.parameters or {}
        bits = [names.get(r.territory_code, r.territory_code) if r.territory_code else None]
        bits[0] = bits[0] or "Tous les territoires"
        if params.get("alpha") is not None:
            bits.append(f"part minimale par territoire {_pct(float(params['alpha']))}")
        if params.get("time_limit_s") is not None:
            bits.append(f"limite de calcul {_seconds(float(params['time_limit_s']))}")
        if r.dry_run:
            proposed = sum(int(p.get("proposed") or 0) for p in (r.stats or {}).get("by_pool", []))
            validated = None
        else:
            # Ranks 2..k of a commission's lists were never offered (or never reached).
            proposed = sum(
                n
                for (rid, st), n in counts.items()
                if rid == r.id and st not in ("shortlisted", "withdrawn")
            )
            validated = counts.get((r.id, "validated"), 0)
        out.append(
            RunRow(
                id=r.id,
                label="Simulation" if r.dry_run else "Attribution",
                dry_run=r.dry_run,
                started_at=r.started_at,
                who=people.get(r.created_by, RUN_WITHOUT_ACCOUNT_LABEL)
                if r.created_by
                else RUN_WITHOUT_ACCOUNT_LABEL,
                parameters=" · ".join(b for b in bits if b),
                status=RUN_STATUS_WORDS.get(r.status, r.status),
                objective=fr_number(r.objective) if r.objective is not None else "—",
                proposed=proposed,
                validated=validated,
            )
        )
    return out


# --- proposals under review ---------------------------------------------------------------


@dataclass
class ProposalRow:
    proposal: m.AllocationProposal
    reference: str
    thematique: str
    territory: str | None
    pool_name: str
    unit_kind: str = "place"
    decline_note: str | None = None  # the precision of an "other" decline
    names: dict[str, str] = field(default_factory=dict)  # territory code -> name

    @property
    def status_label(self) -> str:
        return {
            "proposed": "Place proposée, à valider",
            "validated": "Place attribuée (proposition validée)",
            "declined": "Proposition déclinée",
            "expired": "Proposition expirée sans décision",
        }.get(self.proposal.status, self.proposal.status)

    @property
    def commission_url(self) -> str | None:
        """A commission's rank is decided on the commission's page, not here."""
        p = self.proposal
        if p.rank is None:
            return None
        return f"/attributions/commissions/{p.run_id}/{p.pool_id}#unite-{p.unit_no}"

    @property
    def explanation(self) -> str:
        """The run's sentence, saying "proposée" until the coordinator validated it."""
        text = self.proposal.explanation or ""
        verb = "Place attribuée" if self.proposal.status == "validated" else "Place proposée"
        return with_territory_names(text.replace("Place attribuée", verb, 1), self.names)

    @property
    def decline_label(self) -> str | None:
        label = decline_reason_label(self.proposal.decline_reason)
        if self.proposal.decline_reason == "other":
            return f"Autre : {self.decline_note}" if self.decline_note else "Autre motif"
        return label

    @property
    def units(self) -> str:
        return unit_count(self.proposal.units, self.unit_kind)


@dataclass
class ReviewFilters:
    territory: str | None = None  # territory code
    pool_id: int | None = None
    status: str = DEFAULT_STATUS
    page: int = 1


@dataclass
class AllocationReview:
    run: m.AllocationRun | None
    proposals: list[ProposalRow]
    by_pool: list[PoolRow]
    total: int = 0
    offset: int = 0
    runs: list[RunRow] = field(default_factory=list)
    fairness: list[str] = field(default_factory=list)
    technical: list[tuple[str, str]] = field(default_factory=list)
    territory_options: list[tuple[str, str]] = field(default_factory=list)
    pool_options: list[tuple[int, str]] = field(default_factory=list)
    filters: ReviewFilters = field(default_factory=ReviewFilters)
    open_total: int = 0  # open proposals in scope, whatever the filters
    commissions: list[Any] = field(default_factory=list)  # commission.CommissionSummary
    mechanisms: str | None = None  # the optimum and the stable matching side by side


def review_options(
    session: Session, user: m.StaffUser
) -> tuple[list[tuple[str, str]], list[tuple[int, str]]]:
    """The filters' choices, limited to the user's scope: territories (code, name) and pools
    (id, name)."""
    code = _user_territory(session, user)
    stmt = select(m.Territory.code, m.Territory.name).order_by(m.Territory.name)
    if user.role != "national_admin":
        stmt = stmt.where(m.Territory.code == code) if code else stmt.where(false())
    territories = [(c, n) for c, n in session.execute(stmt).all()]
    pools = [(p.id, p.name) for p in pools_overview(session, user)]
    return territories, pools


def allocation_review(
    session: Session, user: m.StaffUser, filters: ReviewFilters | None = None
) -> AllocationReview:
    """Open proposals (any run) and the latest real run's decided ones that fall in the user's
    scope and the filters, one page of them; the live pool table, the run's fairness in
    words and the recent runs."""
    if not can(user, "review_allocation"):
        raise PermissionError("réservé à la coordination")
    f = filters or ReviewFilters()
    territories, pools = review_options(session, user)
    if f.territory not in {c for c, _ in territories}:
        f.territory = None
    if f.pool_id not in {i for i, _ in pools}:
        f.pool_id = None
    if f.status not in STATUS_FILTERS:
        f.status = DEFAULT_STATUS
    run = session.scalar(
        select(m.AllocationRun)
        .where(m.AllocationRun.dry_run.is_(False), m.AllocationRun.status != "running")
        .order_by(m.AllocationRun.id.desc())
        .limit(1)
    )
    P, R = m.AllocationProposal, m.Referral
    in_review = (
        P.status == "proposed" if run is None else or_(P.status == "proposed", P.run_id == run.id)
    )
    where = [in_review, referral_scope(user), P.status.in_(STATUS_FILTERS[f.status][0])]
    if f.territory is not None:
        tid = session.scalar(select(m.Territory.id).where(m.Territory.code == f.territory))
        where.append(R.territory_id == tid)
    if f.pool_id is not None:
        where.append(P.pool_id == f.pool_id)
    total = (
        session.scalar(
            select(func.count()).select_from(P).join(R, R.id == P.referral_id).where(*where)
        )
        or 0
    )
    open_total = (
        session.scalar(
            select(func.count())
            .select_from(P)
            .join(R, R.id == P.referral_id)
            .where(P.status == "proposed", referral_scope(user))
        )
        or 0
    )
    pages = max(1, -(-total // PROPOSAL_PAGE))
    f.page = min(max(1, f.page), pages)
    offset = (f.page - 1) * PROPOSAL_PAGE
    rows = session.execute(
        select(
            P,
            m.Salarie.reference,
            R.thematique,
            m.Territory.name,
            m.SlotPool.name,
            m.SlotPool.unit_kind,
        )
        .join(R, R.id == P.referral_id)
        .join(m.Salarie, m.Salarie.id == R.salarie_id)
        .join(m.SlotPool, m.SlotPool.id == P.pool_id)
        .outerjoin(m.Territory, m.Territory.id == R.territory_id)
        .where(*where)
        .order_by(P.status != "proposed", P.priority.desc(), P.id)
        .offset(offset)
        .limit(PROPOSAL_PAGE)
    ).all()
    names = territory_names(session)
    proposals = [
        ProposalRow(p, ref, th, terr, with_territory_names(pool, names), kind, names=names)
        for p, ref, th, terr, pool, kind in rows
    ]
    _decline_notes(session, proposals)
    by_pool = pools_overview(session, user, territory=f.territory, pool_id=f.pool_id)
    if run is not None:
        cutoffs = {p.get("pool_id"): p.get("cutoff") for p in (run.stats or {}).get("by_pool", [])}
        for row in by_pool:
            row.cutoff = cutoffs.get(row.id)
    return AllocationReview(
        run=run,
        proposals=proposals,
        by_pool=by_pool,
        total=total,
        offset=offset,
        runs=recent_runs(session, user),
        fairness=run_fairness(run, names) if run is not None else [],
        technical=technical_details(run) if run is not None else [],
        territory_options=territories,
        pool_options=pools,
        filters=f,
        open_total=open_total,
        commissions=commissions(session, user),
        mechanisms=mechanisms_sentence(run) if run is not None else None,
    )


def mechanisms_sentence(run: m.AllocationRun) -> str | None:
    """The optimum and the stable matching side by side, when the run computed both (runs
    with stated preferences or the stable mechanism): "Optimum : 1 234 points, 56 personnes ;
    appariement stable : … ; coût de la stabilité : … ; paires bloquantes de l'optimum : …".

    Points are the solver's weights divided by the fit factor (priority × (fit max + 1) + fit
    bonus, see ``run.lexicographic_weights``): the grid's points, the small fit bonuses
    rounded away."""
    figures = (run.stats or {}).get("mechanisms")
    if not isinstance(figures, dict):
        return None
    try:
        opt_w, st_w = int(figures["optimal_weight"]), int(figures["stable_weight"])
        opt_n, st_n = int(figures["optimal_served"]), int(figures["stable_served"])
        pairs = int(figures.get("optimal_blocking_pairs") or 0)
    except (KeyError, TypeError, ValueError):
        return None
    fit = (run.parameters or {}).get("fit") or {}
    factor = 1 + sum(int(v) for v in fit.values() if isinstance(v, int))
    opt_p, st_p = opt_w // factor, st_w // factor
    ratio = figures.get("weight_ratio")
    cost = f"{plural(opt_p - st_p, 'point')}"
    if isinstance(ratio, int | float):
        cost += f" ({(1 - float(ratio)) * 100:.1f} %)".replace(".", ",")
    fewer = opt_n - st_n
    if fewer == 0:
        cost += " et autant de personnes servies"
    else:
        served = "servie" if abs(fewer) < 2 else "servies"
        side = "en moins" if fewer > 0 else "de plus"
        cost += f" et {plural(abs(fewer), 'personne')} {served} {side}"
    return (
        f"Optimum : {plural(opt_p, 'point')}, {plural(opt_n, 'personne')} ; "
        f"appariement stable : {plural(st_p, 'point')}, {plural(st_n, 'personne')} ; "
        f"coût de la stabilité : {cost} ; "
        f"paires bloquantes de l'optimum : {fr_number(pairs)}."
    )


def _decline_notes(session: Session, rows: list[ProposalRow]) -> None:
    """The precision given with an "other" decline: the note of its event."""
    wanted = {r.proposal.referral_id: r for r in rows if r.proposal.decline_reason == "other"}
    if not wanted:
        return
    E = m.ReferralEvent
    for rid, note in session.execute(
        select(E.referral_id, E.note)
        .where(E.referral_id.in_(list(wanted)), E.action == "decline_proposal")
        .order_by(E.id)
    ).all():
        if note and note.startswith("Autre motif : "):
            wanted[rid].decline_note = note.removeprefix("Autre motif : ")
