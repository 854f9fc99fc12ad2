"""The frein taxonomy: v1 slugs, domains, legacy slugs and category coverage."""

from __future__ import annotations

import re

import pytest

from partners.taxonomy import (
    CATEGORIES,
    DOMAIN_LABELS,
    DOMAINS,
    LEGACY_SLUGS,
    OFFICER_DOMAINS,
    THEMATIQUES,
    UnknownThematique,
    canonical_slug,
    covers,
    domain_of,
    label_of,
    slugs_of_domain,
)

# DESIGN.md, "Freins → domains"
DESIGN_DOMAINS = {
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


@pytest.mark.parametrize(("category", "domain"), sorted(DESIGN_DOMAINS.items()))
def test_each_design_category_exists_with_its_domain(category: str, domain: str) -> None:
    assert domain_of(category) == domain
    subs = [s for s in THEMATIQUES if s.startswith(category + "--")]
    assert subs, f"no sub-thématique for {category}"
    assert {domain_of(s) for s in subs} == {domain}


def test_categories_are_exactly_the_design_ones() -> None:
    assert set(CATEGORIES) == set(DESIGN_DOMAINS)


def test_every_sub_thematique_has_its_category() -> None:
    for slug, t in THEMATIQUES.items():
        assert t.category in CATEGORIES, slug
        assert t.is_category == (slug == t.category)


def test_slugs_have_the_v1_shape() -> None:
    shape = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*(--[a-z0-9]+(-[a-z0-9]+)*)?$")
    for slug, t in THEMATIQUES.items():
        assert shape.match(slug), slug
        assert t.label and t.label[0].isupper(), slug


@pytest.mark.parametrize(
    "slug",
    [
        "sante--sante-mentale",
        "sante--constituer-un-dossier-mdph-invalidite",
        "difficultes-financieres--situation-dendettement-surendettement",
        "lecture-ecriture-calcul--maitriser-le-francais",
        "logement-hebergement--rechercher-une-solution-dhebergement-temporaire",
        "famille--surmonter-conflits-separation-violence",
        "mobilite--mobilite-douce-partagee-collective",
    ],
)
def test_known_v1_slugs_are_present(slug: str) -> None:
    assert slug in THEMATIQUES


def test_categories_outside_the_network_are_left_out() -> None:
    with pytest.raises(UnknownThematique):
        domain_of("creer-une-entreprise--developper-son-entreprise")


def test_domains_partition_the_taxonomy() -> None:
    seen: set[str] = set()
    for domain in DOMAINS:
        slugs = slugs_of_domain(domain)
        assert slugs, domain
        assert not seen.intersection(slugs)
        seen.update(slugs)
    assert seen == set(THEMATIQUES)
    assert set(OFFICER_DOMAINS) < set(DOMAINS)
    assert set(DOMAIN_LABELS) == set(DOMAINS)
    assert slugs_of_domain("inconnu") == []


def test_unknown_slug_raises_a_french_error() -> None:
    with pytest.raises(UnknownThematique) as info:
        domain_of("logement")
    assert str(info.value) == "thématique inconnue : « logement »"
    assert info.value.slug == "logement"


def test_label_of() -> None:
    assert label_of("sante--sante-mentale") == "Santé mentale"
    assert label_of("pas-un-slug") == "pas-un-slug"


def test_legacy_slugs_point_to_v1_slugs() -> None:
    for old, new in LEGACY_SLUGS.items():
        assert old not in THEMATIQUES
        assert new in THEMATIQUES
        assert domain_of(new) == DESIGN_DOMAINS[old.split("--")[0]]


def test_canonical_slug() -> None:
    assert canonical_slug("  Sante--Addictions ") == "sante--addictions"
    assert canonical_slug("famille--violences-intrafamiliales") == (
        "famille--surmonter-conflits-separation-violence"
    )
    with pytest.raises(UnknownThematique) as info:
        canonical_slug(" sante--inconnu ")
    assert info.value.slug == "sante--inconnu"


def test_a_category_covers_its_sub_thematiques_only() -> None:
    assert covers("sante", "sante--addictions")
    assert covers("sante", "sante")
    assert covers("sante--addictions", "sante--addictions")
    assert not covers("sante--addictions", "sante")
    assert not covers("sante--addictions", "sante--sante-mentale")
    assert not covers("se-former", "sante--addictions")
    # a prefix of a category name is not a category
    assert not covers("famille", "familles--x")
