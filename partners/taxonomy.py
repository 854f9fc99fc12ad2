"""Frein taxonomy: data·inclusion v1 *thématiques* slugs and the chargé·es' domains.

Why: every frein is classified with a public slug so that partners' offers (published with
the same slugs by data·inclusion) can be matched to it; the slug's prefix (its v1
*catégorie*) decides which chargé·e de partenariats (emploi, santé, logement) owns it, or
whether it is *transverse*.

The list is the data·inclusion schema v1 referential (``Categorie`` and ``Thematique`` in
``data_inclusion/schema/v1/thematiques.py``), restricted to the categories the network works
with (DESIGN.md, "Freins → domains"). A category slug (e.g. ``sante``) is itself a valid
thématique: it records a frein whose precise sub-thématique is not known yet, and in an offer
it covers every sub-thématique of the category (see :func:`covers`).
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

SEPARATOR = "--"

# v1 category (the part before "--") -> domain. Categories of the v1 referential that the
# network does not use (creer-une-entreprise, souvrir-a-linternational) are left out.
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

    @property
    def category(self) -> str:
        """The v1 category slug this thématique belongs to (itself for a category)."""
        return self.slug.split(SEPARATOR, 1)[0]

    @property
    def is_category(self) -> bool:
        return SEPARATOR not in self.slug


# (slug, French label) in the referential's order: each category, then its sub-thématiques.
_RAW: tuple[tuple[str, str], ...] = (
    ("choisir-un-metier", "Choisir un métier"),
    ("choisir-un-metier--confirmer-son-choix-de-metier", "Confirmer son choix de métier"),
    (
        "choisir-un-metier--connaitre-les-opportunites-demploi",
        "Connaître les opportunités d’emploi",
    ),
    (
        "choisir-un-metier--decouvrir-un-metier-ou-un-secteur-dactivite",
        "Découvrir un métier ou un secteur d’activité",
    ),
    (
        "choisir-un-metier--identifier-ses-points-forts-et-ses-competences",
        "Identifier ses points forts et ses compétences",
    ),
    ("difficultes-administratives-ou-juridiques", "Difficultés administratives ou juridiques"),
    (
        "difficultes-administratives-ou-juridiques--accompagnement-aux-demarches-administratives",
        "Accompagnement aux démarches administratives",
    ),
    (
        "difficultes-administratives-ou-juridiques--accompagnement-pour-lacces-a-la-citoyennete",
        "Accompagnement pour l’accès à la citoyenneté",
    ),
    (
        "difficultes-administratives-ou-juridiques--accompagnement-pour-lacces-aux-droits",
        "Accompagnement pour l’accès aux droits",
    ),
    (
        "difficultes-administratives-ou-juridiques--beneficier-dune-mesure-daccompagnement-adapte",
        "Bénéficier d’une mesure d’accompagnement adapté",
    ),
    (
        "difficultes-administratives-ou-juridiques--connaitre-ses-droits-face-a-une-discrimination",
        "Connaître ses droits face à une discrimination",
    ),
    (
        "difficultes-administratives-ou-juridiques--prendre-en-compte-une-problematique-judiciaire",
        "Prendre en compte une problématique judiciaire",
    ),
    ("difficultes-financieres", "Difficultés financières"),
    (
        "difficultes-financieres--acquerir-une-autonomie-budgetaire",
        "Acquérir une autonomie budgétaire",
    ),
    (
        "difficultes-financieres--ameliorer-sa-gestion-budgetaire",
        "Améliorer sa gestion budgétaire",
    ),
    (
        "difficultes-financieres--mettre-en-place-une-mesure-de-protection-financiere",
        "Mettre en place une mesure de protection financière",
    ),
    (
        "difficultes-financieres--prevenir-une-degradation-de-la-situation-financiere",
        "Prévenir une dégradation de la situation financière",
    ),
    (
        "difficultes-financieres--situation-dendettement-surendettement",
        "Situation d’endettement ou de surendettement",
    ),
    ("equipement-et-alimentation", "Équipement et alimentation"),
    ("equipement-et-alimentation--aide-menagere", "Aide ménagère"),
    ("equipement-et-alimentation--alimentation", "Alimentation"),
    ("equipement-et-alimentation--electromenager", "Électroménager"),
    ("equipement-et-alimentation--habillement", "Habillement"),
    ("famille", "Famille"),
    ("famille--garde-denfants", "Garde d’enfants"),
    ("famille--prise-en-charge-personne-dependante", "Prise en charge d’une personne dépendante"),
    (
        "famille--soutien-a-la-parentalite-et-a-leducation",
        "Soutien à la parentalité et à l’éducation",
    ),
    ("famille--soutien-aidants", "Soutien aux aidants"),
    (
        "famille--surmonter-conflits-separation-violence",
        "Surmonter les conflits liés à la séparation ou à la violence",
    ),
    ("lecture-ecriture-calcul", "Lecture, écriture et calcul"),
    ("lecture-ecriture-calcul--maitriser-le-calcul", "Maîtriser le calcul"),
    ("lecture-ecriture-calcul--maitriser-le-francais", "Maîtriser le français"),
    ("logement-hebergement", "Logement et hébergement"),
    ("logement-hebergement--acheter-un-logement", "Acheter un logement"),
    ("logement-hebergement--changer-de-logement", "Changer de logement"),
    ("logement-hebergement--louer-un-logement", "Louer un logement"),
    (
        "logement-hebergement--rechercher-une-solution-dhebergement-temporaire",
        "Rechercher une solution d’hébergement temporaire",
    ),
    ("logement-hebergement--reduire-les-impayes-de-loyer", "Réduire les impayés de loyer"),
    ("logement-hebergement--se-maintenir-dans-le-logement", "Se maintenir dans le logement"),
    (
        "logement-hebergement--sinformer-sur-les-demarches-liees-a-lacces-au-logement",
        "S’informer sur les démarches liées à l’accès au logement",
    ),
    ("mobilite", "Mobilité"),
    ("mobilite--acceder-a-un-vehicule", "Accéder à un véhicule"),
    ("mobilite--entretenir-reparer-son-vehicule", "Entretenir et réparer son véhicule"),
    (
        "mobilite--etre-accompagne-dans-son-parcours-mobilite",
        "Être accompagné dans son parcours mobilité",
    ),
    ("mobilite--financer-ma-mobilite", "Financer ma mobilité"),
    ("mobilite--preparer-un-permis", "Préparer un permis"),
    (
        "mobilite--mobilite-douce-partagee-collective",
        "Utiliser des services de mobilité douce, partagée ou collective",
    ),
    ("numerique", "Numérique"),
    ("numerique--acceder-a-des-services-en-ligne", "Accéder à des services en ligne"),
    ("numerique--acceder-a-une-connexion-internet", "Accéder à une connexion Internet"),
    ("numerique--acquerir-un-equipement", "Acquérir un équipement"),
    (
        "numerique--maitriser-les-fondamentaux-du-numerique",
        "Maîtriser les fondamentaux du numérique",
    ),
    ("preparer-sa-candidature", "Préparer sa candidature"),
    ("preparer-sa-candidature--developper-son-reseau", "Développer son réseau"),
    (
        "preparer-sa-candidature--organiser-ses-demarches-de-recherche-demploi",
        "Organiser ses démarches de recherche d’emploi",
    ),
    (
        "preparer-sa-candidature--realiser-un-cv-et-ou-une-lettre-de-motivation",
        "Réaliser un CV et/ou une lettre de motivation",
    ),
    ("preparer-sa-candidature--valoriser-ses-competences", "Valoriser ses compétences"),
    ("remobilisation", "Remobilisation"),
    (
        "remobilisation--activites-sportives-et-culturelles",
        "Activités sportives et culturelles",
    ),
    ("remobilisation--benevolat-action-citoyenne", "Bénévolat et action citoyenne"),
    ("remobilisation--bien-etre-confiance-en-soi", "Bien-être et confiance en soi"),
    ("remobilisation--lien-social", "Lien social"),
    ("sante", "Santé"),
    ("sante--acces-aux-soins", "Accès aux soins"),
    ("sante--addictions", "Addictions"),
    ("sante--constituer-un-dossier-mdph-invalidite", "Constituer un dossier MDPH pour invalidité"),
    ("sante--sante-mentale", "Santé mentale"),
    ("sante--sante-sexuelle", "Santé sexuelle"),
    ("se-former", "Se former"),
    ("se-former--monter-son-dossier-de-formation", "Monter son dossier de formation"),
    ("se-former--trouver-sa-formation", "Trouver sa formation"),
    ("trouver-un-emploi", "Trouver un emploi"),
    (
        "trouver-un-emploi--convaincre-un-recruteur-en-entretien",
        "Convaincre un recruteur en entretien",
    ),
    (
        "trouver-un-emploi--faire-des-candidatures-spontanees",
        "Faire des candidatures spontanées",
    ),
    ("trouver-un-emploi--maintien-dans-lemploi", "Maintien dans l’emploi"),
    ("trouver-un-emploi--repondre-a-des-offres-demploi", "Répondre à des offres d’emploi"),
    (
        "trouver-un-emploi--suivre-ses-candidatures-et-relancer-les-employeurs",
        "Suivre ses candidatures et relancer les employeurs",
    ),
)

# Slugs of older referentials (data·inclusion v0, or earlier versions of this file) that
# reporting tools may still export, mapped to their v1 equivalent. Accepted on import and
# rewritten, never stored.
LEGACY_SLUGS: dict[str, str] = {
    "logement-hebergement--mal-loges-sans-logis": (
        "logement-hebergement--rechercher-une-solution-dhebergement-temporaire"
    ),
    "logement-hebergement--etre-accompagne-pour-se-loger": (
        "logement-hebergement--sinformer-sur-les-demarches-liees-a-lacces-au-logement"
    ),
    "logement-hebergement--probleme-avec-son-logement": (
        "logement-hebergement--se-maintenir-dans-le-logement"
    ),
    "logement-hebergement--connaissance-de-ses-droits-et-interlocuteurs": (
        "logement-hebergement--sinformer-sur-les-demarches-liees-a-lacces-au-logement"
    ),
    "sante--constituer-un-dossier-mdph": "sante--constituer-un-dossier-mdph-invalidite",
    "sante--obtenir-la-prise-en-charge-de-frais-medicaux": "sante--acces-aux-soins",
    "lecture-ecriture-calcul--lutter-contre-lillettrisme": (
        "lecture-ecriture-calcul--maitriser-le-francais"
    ),
    "famille--violences-intrafamiliales": "famille--surmonter-conflits-separation-violence",
}


class UnknownThematique(ValueError):
    """Raised for a slug that is not in the taxonomy (message in French)."""

    def __init__(self, slug: str) -> None:
        super().__init__(f"thématique inconnue : « {slug} »")
        self.slug = slug


def _domain_for(slug: str) -> str:
    prefix = slug.split(SEPARATOR, 1)[0]
    try:
        return PREFIX_DOMAINS[prefix]
    except KeyError as exc:
        raise UnknownThematique(slug) from exc


THEMATIQUES: dict[str, Thematique] = {
    slug: Thematique(slug, label, _domain_for(slug)) for slug, label in _RAW
}

CATEGORIES: dict[str, Thematique] = {s: t for s, t in THEMATIQUES.items() if t.is_category}


def domain_of(slug: str) -> str:
    """Domain (emploi, sante, logement, transverse) of a known thématique slug.

    Why: routing sends the frein to the chargé·e of this domain in the person's territory.
    """
    try:
        return THEMATIQUES[slug].domain
    except KeyError as exc:
        raise UnknownThematique(slug) from exc


def label_of(slug: str) -> str:
    """French label of a slug, or the slug itself when unknown (never fails in a page)."""
    t = THEMATIQUES.get(slug)
    return t.label if t else slug


def slugs_of_domain(domain: str) -> list[str]:
    """All slugs (categories and sub-thématiques) of one domain, in referential order."""
    return [t.slug for t in THEMATIQUES.values() if t.domain == domain]


def canonical_slug(slug: str) -> str:
    """The v1 slug for ``slug`` (trimmed, lower-cased, legacy slugs rewritten).

    Why: imports come from tools that may lag behind the referential; one place decides
    what an incoming slug means. Raises :class:`UnknownThematique` when it means nothing.
    """
    s = slug.strip().lower()
    s = LEGACY_SLUGS.get(s, s)
    if s not in THEMATIQUES:
        raise UnknownThematique(slug.strip())
    return s


def covers(pattern: str, slug: str) -> bool:
    """Whether an offer's thématique ``pattern`` covers a frein's ``slug``.

    Why: partners publish either precise sub-thématiques or a whole category; a category
    covers all its sub-thématiques (``sante`` covers ``sante--addictions``) but a
    sub-thématique covers only itself.
    """
    return slug == pattern or (SEPARATOR not in pattern and slug.startswith(pattern + SEPARATOR))
