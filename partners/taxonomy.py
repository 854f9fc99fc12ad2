"""Frein taxonomy: data·inclusion v1 *thématiques* slugs and the chargé·es' domains.

Why: every frein is classified with a public slug so that partners' offers (published with
the same slugs by data·inclusion) can be matched to it; the slug's prefix decides which
chargé·e de partenariats (emploi, santé, logement) owns it, or whether it is *transverse*.
"""

from __future__ import annotations

from dataclasses import dataclass

DOMAINS: tuple[str, ...] = ("emploi", "sante", "logement", "transverse")
OFFICER_DOMAINS: tuple[str, ...] = ("emploi", "sante", "logement")

DOMAIN_LABELS: dict[str, str] = {
    "emploi": "Emploi",
    "sante": "Santé",
    "logement": "Logement",
    "transverse": "Transverse",
}

# Prefix (the part before "--") -> domain. Order does not matter: prefixes are exact.
PREFIX_DOMAINS: dict[str, str] = {
    "logement-hebergement": "logement",
    "sante": "sante",
    "trouver-un-emploi": "emploi",
    "preparer-sa-candidature": "emploi",
    "choisir-un-metier": "emploi",
    "se-former": "emploi",
    "lecture-ecriture-calcul": "emploi",
    "mobilite": "emploi",
    "difficultes-financieres": "transverse",
    "difficultes-administratives-ou-juridiques": "transverse",
    "famille": "transverse",
    "numerique": "transverse",
    "equipement-et-alimentation": "transverse",
    "remobilisation": "transverse",
}


@dataclass(frozen=True, slots=True)
class Thematique:
    slug: str
    label: str
    domain: str


_RAW: tuple[tuple[str, str], ...] = (
    ("logement-hebergement", "Logement et hébergement"),
    ("logement-hebergement--mal-loges-sans-logis", "Mal logé ou sans logis"),
    ("logement-hebergement--etre-accompagne-pour-se-loger", "Être accompagné pour se loger"),
    ("logement-hebergement--probleme-avec-son-logement", "Problème avec son logement"),
    ("logement-hebergement--connaissance-de-ses-droits-et-interlocuteurs", "Connaître ses droits et ses interlocuteurs"),
    ("sante", "Santé"),
    ("sante--acces-aux-soins", "Accès aux soins"),
    ("sante--sante-mentale", "Santé mentale"),
    ("sante--addictions", "Addictions"),
    ("sante--constituer-un-dossier-mdph", "Constituer un dossier MDPH"),
    ("sante--obtenir-la-prise-en-charge-de-frais-medicaux", "Prise en charge des frais médicaux"),
    ("trouver-un-emploi", "Trouver un emploi"),
    ("preparer-sa-candidature", "Préparer sa candidature"),
    ("choisir-un-metier", "Choisir un métier"),
    ("se-former", "Se former"),
    ("lecture-ecriture-calcul", "Lecture, écriture, calcul"),
    ("lecture-ecriture-calcul--maitriser-le-francais", "Maîtriser le français"),
    ("lecture-ecriture-calcul--lutter-contre-lillettrisme", "Lutter contre l'illettrisme"),
    ("mobilite", "Mobilité"),
    ("difficultes-financieres", "Difficultés financières"),
    ("difficultes-administratives-ou-juridiques", "Difficultés administratives ou juridiques"),
    ("famille", "Famille"),
    ("famille--garde-denfants", "Garde d'enfants"),
    ("famille--violences-intrafamiliales", "Violences intrafamiliales"),
    ("numerique", "Numérique"),
    ("equipement-et-alimentation", "Équipement et alimentation"),
    ("remobilisation", "Remobilisation"),
)


class UnknownThematique(ValueError):
    """Raised for a slug that is not in the taxonomy (message in French)."""

    def __init__(self, slug: str) -> None:
        super().__init__(f"thématique inconnue : « {slug} »")
        self.slug = slug


def _domain_for(slug: str) -> str:
    prefix = slug.split("--", 1)[0]
    try:
        return PREFIX_DOMAINS[prefix]
    except KeyError as exc:
        raise UnknownThematique(slug) from exc


THEMATIQUES: dict[str, Thematique] = {
    slug: Thematique(slug, label, _domain_for(slug)) for slug, label in _RAW
}


def domain_of(slug: str) -> str:
    """Domain (emploi, sante, logement, transverse) of a known thématique slug."""
    try:
        return THEMATIQUES[slug].domain
    except KeyError as exc:
        raise UnknownThematique(slug) from exc


def label_of(slug: str) -> str:
    t = THEMATIQUES.get(slug)
    return t.label if t else slug


def slugs_of_domain(domain: str) -> list[str]:
    return [t.slug for t in THEMATIQUES.values() if t.domain == domain]
