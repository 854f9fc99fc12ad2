"""The figures of the activity report ("L'impact des programmes"), computed from pathways.

Why: the national team publishes these figures every year to funders; computing them from
the same pathway facts the chantiers record, with the codes of the reference table
(`convergence-2024.json`), lets anyone check a published figure mechanically and see the
population and period behind each one. The comparisons "chargé·e mobilisé·e or not" are
descriptive: the definitions say so, since people are not assigned at random.
"""

from __future__ import annotations

from collections.abc import Callable

from reporting.indicators import Context, Group, Indicator, Kind, Measure, compare, count, share
from reporting.pathways import (
    accompanied,
    exited_in,
    had_health_event,
    mobilised,
    moved_to,
    street_history,
)
from reporting.records import (
    DYNAMIC_EXITS,
    EMERGENCY_SOCIAL_SERVICES,
    HOSTED,
    HOUSED,
    SHELTERED_OR_HOUSED,
    STREET,
    Person,
)

NOBODY = "aucun·e salarié·e accompagné·e pendant la période"
NO_EXIT = "aucune sortie pendant la période"
NO_HOSTED = "aucun·e salarié·e accompagné·e hébergé·e à l'entrée"
NO_STREET = "aucun·e salarié·e accompagné·e à la rue à l'entrée"

_ACCOMPANIED = (
    "salarié·es accompagné·es pendant la période (entré·es au plus tard son dernier jour, "
    "sans être sorti·es avant son premier jour)"
)
_DURING = "pendant le parcours, au cours de la période"
_DYNAMIC = (
    "une sortie dynamique (emploi durable, emploi de transition ou sortie positive : "
    "formation, autre structure d'insertion…)"
)
_DESCRIPTIVE = (
    "Écart en points entre les deux taux, avec leur rapport et l'effectif de chaque groupe ; "
    "comparaison descriptive, qui ne mesure pas à elle seule l'effet du·de la chargé·e."
)
_OFFICER = {"emploi": "emploi", "logement": "logement", "sante": "santé"}


def _accompanied(ctx: Context) -> list[Person]:
    return [p for p in ctx.data.people if accompanied(p, ctx.period)]


def _exited(ctx: Context) -> list[Person]:
    return [p for p in ctx.data.people if exited_in(p, ctx.period)]


def _hosted_at_entry(ctx: Context) -> list[Person]:
    return [p for p in _accompanied(ctx) if p.housing_at_entry in HOSTED]


def _street_at_entry(ctx: Context) -> list[Person]:
    return [p for p in _accompanied(ctx) if p.housing_at_entry == STREET]


def _dynamic_exit(p: Person) -> bool:
    return p.exit_category in DYNAMIC_EXITS


def officer_comparison(
    population: list[Person], domain: str, outcome: Callable[[Person], bool], ctx: Context
) -> Measure:
    """The outcome's rate with the domain's officer mobilised, against the rate without."""
    with_officer = [p for p in population if mobilised(p, domain, ctx.period)]
    without = [p for p in population if not mobilised(p, domain, ctx.period)]
    name = _OFFICER[domain]
    return compare(
        Group(
            "mobilised",
            f"Chargé·e de partenariat {name} mobilisé·e",
            sum(1 for p in with_officer if outcome(p)),
            len(with_officer),
        ),
        Group(
            "not_mobilised",
            f"Sans chargé·e de partenariat {name} mobilisé·e",
            sum(1 for p in without if outcome(p)),
            len(without),
        ),
    )


def _ind(
    programme: str,
    code: str,
    label: str,
    definition: str,
    kind: Kind,
    m: Callable[[Context], Measure],
) -> Indicator:
    return Indicator(code, programme, label, definition, kind, m)


def _accompanied_count(ctx: Context) -> Measure:
    return count(len(_accompanied(ctx)))


def _housed(ctx: Context) -> Callable[[Person], bool]:
    return lambda p: moved_to(p, {HOUSED}, ctx.period)


def _health_improved(ctx: Context) -> Callable[[Person], bool]:
    return lambda p: had_health_event(p, {"rights_opened", "coverage_improved"}, ctx.period)


def _coverage_only(ctx: Context) -> Callable[[Person], bool]:
    return lambda p: (
        had_health_event(p, {"coverage_improved"}, ctx.period)
        and not had_health_event(p, {"rights_opened"}, ctx.period)
    )


CVG: tuple[Indicator, ...] = (
    _ind(
        "cvg",
        "salaries_accompanied_2024",
        "Salarié·es accompagné·es",
        f"Nombre de {_ACCOMPANIED}, dans le programme Convergence.",
        "count",
        _accompanied_count,
    ),
    _ind(
        "cvg",
        "share_with_3_to_7_freins",
        "Salarié·es cumulant 3 à 7 freins à l'emploi",
        f"Parmi les {_ACCOMPANIED}, part de celles et ceux pour qui 3 à 7 freins à l'emploi "
        "(bornes comprises) ont été identifiés.",
        "rate",
        lambda ctx: share(_accompanied(ctx), lambda p: 3 <= p.freins <= 7, NOBODY),
    ),
    _ind(
        "cvg",
        "share_with_street_history",
        "Salarié·es ayant connu un parcours de rue",
        f"Parmi les {_ACCOMPANIED}, part de celles et ceux qui étaient à la rue à l'entrée "
        "ou avaient vécu au moins un mois à la rue avant d'entrer.",
        "rate",
        lambda ctx: share(_accompanied(ctx), street_history, NOBODY),
    ),
    _ind(
        "cvg",
        "exit_to_employment_or_training",
        "Sorties vers l'emploi et la formation",
        f"Parmi les salarié·es sorti·es du programme pendant la période, part de celles et "
        f"ceux dont la sortie est {_DYNAMIC}.",
        "rate",
        lambda ctx: share(_exited(ctx), _dynamic_exit, NO_EXIT),
    ),
    _ind(
        "cvg",
        "employment_uplift_when_emploi_officer_mobilised",
        "Accès à l'emploi quand le·la chargé·e de partenariat emploi est mobilisé·e",
        "Parmi les salarié·es sorti·es du programme pendant la période, taux de sorties "
        "dynamiques (emploi durable, de transition ou sortie positive) de celles et ceux dont "
        "le·la chargé·e de partenariat emploi s'est saisi·e pendant le parcours, comparé au "
        f"taux des autres. {_DESCRIPTIVE}",
        "difference",
        lambda ctx: officer_comparison(_exited(ctx), "emploi", _dynamic_exit, ctx),
    ),
    _ind(
        "cvg",
        "housing_access_among_hosted_at_entry",
        "Accès au logement des salarié·es hébergé·es à l'entrée",
        f"Parmi les {_ACCOMPANIED} qui étaient hébergé·es à l'entrée (hébergement d'urgence, "
        "chez un tiers ou en logement d'insertion), part de celles et ceux qui ont accédé à "
        f"un logement {_DURING}.",
        "rate",
        lambda ctx: share(_hosted_at_entry(ctx), _housed(ctx), NO_HOSTED),
    ),
    _ind(
        "cvg",
        "housing_uplift_when_logement_officer_mobilised",
        "Accès au logement quand le·la chargé·e de partenariat logement est mobilisé·e",
        "Parmi les salarié·es accompagné·es pendant la période qui étaient hébergé·es à "
        f"l'entrée, taux d'accès à un logement {_DURING} de celles et ceux dont le·la "
        "chargé·e de partenariat logement s'est saisi·e pendant le parcours, comparé au taux "
        f"des autres. {_DESCRIPTIVE}",
        "difference",
        lambda ctx: officer_comparison(_hosted_at_entry(ctx), "logement", _housed(ctx), ctx),
    ),
    _ind(
        "cvg",
        "health_rights_opened",
        "Ouverture de droits santé",
        f"Parmi les {_ACCOMPANIED}, part de celles et ceux qui ont eu une ouverture de "
        f"droits santé {_DURING}.",
        "rate",
        lambda ctx: share(
            _accompanied(ctx), lambda p: had_health_event(p, {"rights_opened"}, ctx.period), NOBODY
        ),
    ),
    _ind(
        "cvg",
        "health_coverage_improved_additionally",
        "Couverture santé améliorée (en plus des ouvertures de droits)",
        f"Parmi les {_ACCOMPANIED}, part de celles et ceux dont la couverture santé a été "
        f"améliorée {_DURING}, sans ouverture de droits santé sur la même période : "
        "elles et ils s'ajoutent aux ouvertures de droits.",
        "rate",
        lambda ctx: share(_accompanied(ctx), _coverage_only(ctx), NOBODY),
    ),
    _ind(
        "cvg",
        "health_uplift_when_sante_officer_mobilised",
        "Prise en charge santé quand le·la chargé·e de partenariat santé est mobilisé·e",
        "Parmi les salarié·es accompagné·es pendant la période, taux d'amélioration de la "
        f"prise en charge santé (ouverture de droits ou couverture améliorée {_DURING}) de "
        "celles et ceux dont le·la chargé·e de partenariat santé s'est saisi·e pendant le "
        f"parcours, comparé au taux des autres. {_DESCRIPTIVE}",
        "difference",
        lambda ctx: officer_comparison(_accompanied(ctx), "sante", _health_improved(ctx), ctx),
    ),
)

PHC: tuple[Indicator, ...] = (
    _ind(
        "phc",
        "salaries_accompanied_2024",
        "Salarié·es accompagné·es",
        f"Nombre de {_ACCOMPANIED}, dans le programme Premières Heures en Chantier.",
        "count",
        _accompanied_count,
    ),
    _ind(
        "phc",
        "share_street_or_street_history",
        "Salarié·es à la rue ou ayant connu un parcours de rue",
        f"Parmi les {_ACCOMPANIED}, part de celles et ceux qui étaient à la rue à l'entrée "
        "ou avaient vécu au moins un mois à la rue avant d'entrer.",
        "rate",
        lambda ctx: share(_accompanied(ctx), street_history, NOBODY),
    ),
    _ind(
        "phc",
        "share_street_over_2_years",
        "Salarié·es ayant plus de 2 ans de rue",
        f"Parmi toutes et tous les {_ACCOMPANIED}, part de celles et ceux qui avaient vécu "
        "plus de 24 mois à la rue à leur entrée.",
        "rate",
        lambda ctx: share(_accompanied(ctx), lambda p: p.street_months_at_entry > 24, NOBODY),
    ),
    _ind(
        "phc",
        "share_referred_by_emergency_social_services",
        "Salarié·es orienté·es par l'urgence sociale",
        f"Parmi les {_ACCOMPANIED}, part de celles et ceux orienté·es vers le chantier par une "
        "structure de l'urgence sociale (SIAO / 115 ou maraude).",
        "rate",
        lambda ctx: share(
            _accompanied(ctx), lambda p: p.referred_by in EMERGENCY_SOCIAL_SERVICES, NOBODY
        ),
    ),
    _ind(
        "phc",
        "share_without_resources_at_entry",
        "Salarié·es sans aucune ressource à l'entrée",
        f"Parmi les {_ACCOMPANIED}, part de celles et ceux qui n'avaient aucune ressource à "
        "leur entrée en parcours.",
        "rate",
        lambda ctx: share(_accompanied(ctx), lambda p: not p.resources_at_entry, NOBODY),
    ),
    _ind(
        "phc",
        "sheltered_or_housed_among_street_at_entry",
        "Mise à l'abri des salarié·es à la rue à l'entrée",
        f"Parmi les {_ACCOMPANIED} qui étaient à la rue à l'entrée, part de celles et ceux qui "
        "ont accédé à un hébergement (urgence, chez un tiers, logement d'insertion) ou à un "
        f"logement {_DURING}.",
        "rate",
        lambda ctx: share(
            _street_at_entry(ctx), lambda p: moved_to(p, SHELTERED_OR_HOUSED, ctx.period), NO_STREET
        ),
    ),
    _ind(
        "phc",
        "employment_or_training",
        "Accès à l'emploi ou à la formation",
        f"Parmi les {_ACCOMPANIED}, part de celles et ceux sorti·es pendant la période avec "
        f"{_DYNAMIC}.",
        "rate",
        lambda ctx: share(
            _accompanied(ctx), lambda p: exited_in(p, ctx.period) and _dynamic_exit(p), NOBODY
        ),
    ),
    _ind(
        "phc",
        "care_pathway",
        "Poursuite vers un parcours de soins",
        f"Parmi les {_ACCOMPANIED}, part de celles et ceux entré·es dans un parcours de soins "
        f"{_DURING}.",
        "rate",
        lambda ctx: share(
            _accompanied(ctx), lambda p: had_health_event(p, {"care_pathway"}, ctx.period), NOBODY
        ),
    ),
)

INDICATORS: tuple[Indicator, ...] = CVG + PHC
