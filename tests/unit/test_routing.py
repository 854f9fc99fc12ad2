"""Intake routing: owners, caps, stickiness, partner suggestions and explanations.

Unit tests name the business situations; property tests (hypothesis) check the
invariants over random networks.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from matching.facts import PersonFacts
from matching.routing import (
    Coordinator,
    Decision,
    FreinIn,
    OfferInfo,
    Officer,
    Router,
    Suggestion,
)
from matching.rules import RoutingRules, load_rules, parse_rules
from partners.eligibility_rules import Rule
from partners.taxonomy import domain_of

TODAY = date(2025, 3, 12)
RULES = load_rules()
ADULT = Rule(field="age", op="gte", value=18, label="Réservé aux personnes majeures.")
NATIONAL = 999

LYON_SANTE_A = Officer(12, "lyon", "sante", 120, 40)
LYON_SANTE_B = Officer(13, "lyon", "sante", 120, 60)
ISERE_SANTE = Officer(20, "isere", "sante", 120, 0)
ISERE_LOGEMENT = Officer(21, "isere", "logement", 120, 0)
COORDINATORS = [Coordinator(100, "lyon"), Coordinator(101, "isere")]
ADDICTIONS_FRANCE = OfferInfo(
    1, 1, "Addictions France", "CSAPA", ("sante--addictions",), frozenset({"lyon"}), False
)
CNAM = OfferInfo(2, 2, "CNAM", "Examen de santé", ("sante",), None, True, (ADULT,))
EMMAUS_CONNECT = OfferInfo(
    3, 3, "Emmaüs Connect", "Atelier numérique", ("numerique",), None, False, (ADULT,), True
)


def person(pid: int = 1, territory: str | None = "lyon", **kw: Any) -> PersonFacts:
    kw.setdefault("age", 30)
    return PersonFacts(person_id=pid, programme="cvg", territory=territory, **kw)


def frein(fid: int, slug: str, facts: PersonFacts, sticky: int | None = None) -> FreinIn:
    return FreinIn(fid, slug, facts, TODAY - timedelta(days=15), sticky)


def router(
    officers: list[Officer] | None = None,
    offers: list[OfferInfo] | None = None,
    rules: RoutingRules = RULES,
    national: int | None = NATIONAL,
) -> Router:
    return Router(
        [LYON_SANTE_A, LYON_SANTE_B, ISERE_SANTE, ISERE_LOGEMENT] if officers is None else officers,
        COORDINATORS,
        [ADDICTIONS_FRANCE, CNAM, EMMAUS_CONNECT] if offers is None else offers,
        rules,
        national_queue_user_id=national,
        territory_labels={"lyon": "Lyon", "isere": "Isère"},
    )


def route_one(r: Router, f: FreinIn) -> Decision:
    (decision,) = r.route_batch([f], TODAY)
    return decision


# ------------------------------------------------------------------ owners


def test_sante_frein_in_lyon_goes_to_least_loaded_sante_officer() -> None:
    d = route_one(router(), frein(1, "sante--addictions", person()))
    assert (d.owner_kind, d.owner_user_id, d.domain) == ("officer", 12, "sante")
    assert d.reasons == [{"code": "least_loaded", "officer": 12, "load": 40, "cap": 120}]
    assert d.explanation_fr == (
        "Frein santé (Addictions) du territoire Lyon : confié à la personne chargée de "
        "partenariats santé la moins chargée (40/120). "
        "2 partenaires proposés : Addictions France, CNAM."
    )
    assert d.priority == 2  # two full weeks waiting
    assert [line.code for line in d.breakdown] == ["waiting"]


def test_least_loaded_is_relative_to_cap() -> None:
    small_cap = Officer(12, "lyon", "sante", 60, 30)  # 50 %
    big_cap = Officer(13, "lyon", "sante", 120, 50)  # 42 %
    d = route_one(router([small_cap, big_cap]), frein(1, "sante", person()))
    assert d.owner_user_id == 13


def test_ties_go_to_lowest_user_id() -> None:
    a, b = Officer(31, "lyon", "sante", 100, 10), Officer(30, "lyon", "sante", 50, 5)
    d = route_one(router([a, b]), frein(1, "sante", person()))
    assert d.owner_user_id == 30


def test_loads_update_within_batch() -> None:
    a, b = Officer(1, "lyon", "sante", 10, 0), Officer(2, "lyon", "sante", 10, 0)
    freins = [frein(i, "sante", person(pid=i)) for i in range(4)]
    owners = [d.owner_user_id for d in router([a, b]).route_batch(freins, TODAY)]
    assert owners == [1, 2, 1, 2]


def test_isere_emploi_frein_goes_to_coordinator() -> None:
    d = route_one(router(), frein(1, "trouver-un-emploi", person(territory="isere")))
    assert (d.owner_kind, d.owner_user_id, d.domain) == ("coordinator", 101, "emploi")
    assert d.reasons[0]["code"] == "no_officer"
    assert "aucune personne chargée de partenariats emploi" in d.explanation_fr


def test_hors_territoire_goes_to_national_queue() -> None:
    d = route_one(router(), frein(1, "sante--addictions", person(territory=None)))
    assert (d.owner_kind, d.owner_user_id) == ("national", NATIONAL)
    assert d.reasons[0]["code"] == "no_territory"
    assert "hors territoire" in d.explanation_fr
    # Only national offers can be proposed outside the territories.
    assert [s.offer_id for s in d.suggestions] == [2]


def test_national_queue_without_user_has_no_owner_id() -> None:
    d = route_one(router(national=None), frein(1, "sante", person(territory=None)))
    assert (d.owner_kind, d.owner_user_id) == ("national", None)


def test_territory_without_coordinator_nor_officer_goes_national() -> None:
    d = route_one(router(), frein(1, "sante", person(territory="drome")))
    assert (d.owner_kind, d.owner_user_id) == ("national", NATIONAL)
    assert d.reasons[0]["code"] == "no_coordinator"


# ------------------------------------------------------------------ transverse


def test_transverse_goes_directly_to_eligible_partner() -> None:
    d = route_one(router(), frein(1, "numerique", person()))
    assert (d.owner_kind, d.owner_user_id, d.partner_offer_id) == ("partner", None, 3)
    assert d.domain == "transverse"
    assert "orienté directement vers Emmaüs Connect" in d.explanation_fr


def test_transverse_goes_to_coordinator_when_person_not_eligible() -> None:
    d = route_one(router(), frein(1, "numerique", person(age=None)))
    assert (d.owner_kind, d.owner_user_id, d.partner_offer_id) == ("coordinator", 100, None)
    assert d.rejected == ((3, "information manquante : âge"),)


def test_transverse_goes_to_coordinator_when_no_partner_covers_territory() -> None:
    local = OfferInfo(
        4, 4, "Local", "Atelier", ("numerique",), frozenset({"isere"}), False, (), True
    )
    d = route_one(router(offers=[local]), frein(1, "numerique", person()))
    assert (d.owner_kind, d.owner_user_id) == ("coordinator", 100)
    assert d.reasons[0]["code"] == "transverse"


def test_direct_flag_does_not_bypass_officers_for_non_transverse_frein() -> None:
    direct_sante = OfferInfo(5, 5, "Santé directe", "X", ("sante",), None, False, (), True)
    d = route_one(router(offers=[direct_sante]), frein(1, "sante", person()))
    assert d.owner_kind == "officer"


def test_rules_file_can_name_a_direct_partner() -> None:
    rules = parse_rules('[routage.directs]\n"sante--addictions" = "Addictions France"\n')
    d = route_one(router(rules=rules), frein(1, "sante--addictions", person()))
    assert (d.owner_kind, d.partner_offer_id) == ("partner", 1)


def test_rules_file_can_override_a_domain() -> None:
    rules = parse_rules('[routage.domaines]\nnumerique = "logement"\n')
    d = route_one(router(offers=[], rules=rules), frein(1, "numerique", person(territory="isere")))
    assert (d.domain, d.owner_kind, d.owner_user_id) == ("logement", "officer", 21)


def test_unknown_thematique_goes_to_coordinator() -> None:
    d = route_one(router(), frein(1, "cuisine--patisserie", person()))
    assert (d.owner_kind, d.owner_user_id) == ("coordinator", 100)
    assert d.reasons[0]["code"] == "unknown_thematique"


# ------------------------------------------------------------------ stickiness and caps


def test_same_person_same_domain_sticks_within_batch() -> None:
    a, b = Officer(1, "lyon", "sante", 10, 0), Officer(2, "lyon", "sante", 10, 0)
    p = person(pid=7)
    decisions = router([a, b]).route_batch(
        [frein(1, "sante--addictions", p), frein(2, "sante--acces-aux-soins", p)], TODAY
    )
    assert [d.owner_user_id for d in decisions] == [1, 1]
    assert decisions[1].reasons[0]["code"] == "sticky"
    assert "suit déjà cette personne" in decisions[1].explanation_fr


def test_sticky_owner_from_open_referrals_wins_over_balance() -> None:
    d = route_one(router(), frein(1, "sante", person(), sticky=13))  # 13 is busier than 12
    assert (d.owner_user_id, d.reasons[0]["code"]) == (13, "sticky")


def test_sticky_owner_of_another_territory_is_ignored() -> None:
    d = route_one(router(), frein(1, "sante", person(), sticky=20))
    assert d.owner_user_id == 12


def test_sticky_owner_at_cap_yields_to_colleague_with_room() -> None:
    full, free = Officer(1, "lyon", "sante", 5, 5), Officer(2, "lyon", "sante", 5, 3)
    d = route_one(router([full, free]), frein(1, "sante", person(), sticky=1))
    assert d.owner_user_id == 2
    assert d.reasons[0]["code"] == "sticky_owner_full"


def test_sticky_owner_kept_over_cap_when_everyone_is_full() -> None:
    a, b = Officer(1, "lyon", "sante", 5, 6), Officer(2, "lyon", "sante", 5, 5)
    d = route_one(router([a, b]), frein(1, "sante", person(), sticky=1))
    assert (d.owner_user_id, d.reasons[0]["code"]) == (1, "sticky_all_at_cap")


def test_all_at_cap_goes_to_least_loaded_over_cap_by_default() -> None:
    a, b = Officer(1, "lyon", "sante", 5, 7), Officer(2, "lyon", "sante", 5, 5)
    d = route_one(router([a, b]), frein(1, "sante", person()))
    assert (d.owner_kind, d.owner_user_id) == ("officer", 2)
    assert d.reasons == [{"code": "all_at_cap", "officer": 2, "load": 5, "cap": 5}]
    assert "au-delà de son plafond" in d.explanation_fr


def test_all_at_cap_goes_to_coordinator_when_rules_say_so() -> None:
    rules = parse_rules('[routage]\nau_plafond = "coordination"\n')
    a = Officer(1, "lyon", "sante", 5, 5)
    d = route_one(router([a], rules=rules), frein(1, "sante", person()))
    assert (d.owner_kind, d.owner_user_id) == ("coordinator", 100)
    assert d.reasons[0]["code"] == "all_at_cap_to_coordinator"


def test_route_batch_restarts_from_given_loads_and_chunks_carry_them() -> None:
    a, b = Officer(1, "lyon", "sante", 10, 0), Officer(2, "lyon", "sante", 10, 0)
    r = router([a, b])
    one = [frein(1, "sante", person(pid=1))]
    two = [frein(2, "sante", person(pid=2))]
    assert r.route_batch(one, TODAY)[0].owner_user_id == 1
    assert r.route_batch(two, TODAY)[0].owner_user_id == 1  # fresh batch, same loads
    chunked = [d.owner_user_id for chunk in r.route_chunks([one, two], TODAY) for d in chunk]
    assert chunked == [1, 2]


# ------------------------------------------------------------------ suggestions


def test_offer_ranking_specificity_then_local_then_open_then_id() -> None:
    offers = [
        OfferInfo(10, 1, "P1", "national prefix", ("sante",), None, False),
        OfferInfo(11, 2, "P2", "local prefix", ("sante",), frozenset({"lyon"}), False),
        OfferInfo(12, 3, "P3", "national exact slots", ("sante--addictions",), None, True),
        OfferInfo(13, 4, "P4", "national exact", ("sante--addictions",), None, False),
        OfferInfo(14, 5, "P5", "local exact", ("sante--addictions",), frozenset({"lyon"}), False),
        OfferInfo(9, 6, "P6", "national exact bis", ("sante--addictions",), None, False),
        OfferInfo(15, 7, "P7", "elsewhere", ("sante--addictions",), frozenset({"isere"}), False),
        OfferInfo(16, 8, "P8", "other thematique", ("sante--sante-mentale",), None, False),
    ]
    rules = parse_rules("[routage]\nsuggestions = 10\n")
    d = route_one(router(offers=offers, rules=rules), frein(1, "sante--addictions", person()))
    assert [s.offer_id for s in d.suggestions] == [14, 9, 13, 12, 11, 10]
    assert d.suggestions[0] == Suggestion(14, 1, 211)
    assert [s.rank for s in d.suggestions] == [1, 2, 3, 4, 5, 6]


def test_only_top_n_suggested_and_ineligible_offers_listed_with_reason() -> None:
    offers = [
        OfferInfo(i, i, f"P{i}", "o", ("sante",), None, False, (ADULT,) if i == 1 else ())
        for i in range(1, 6)
    ]
    d = route_one(router(offers=offers), frein(1, "sante", person(age=16)))
    assert [s.offer_id for s in d.suggestions] == [2, 3, 4]
    assert d.rejected == ((1, "Réservé aux personnes majeures."),)
    assert "3 partenaires proposés : P2, P3, P4." in d.explanation_fr


def test_no_suggestion_is_said() -> None:
    d = route_one(router(offers=[]), frein(1, "sante", person()))
    assert d.suggestions == ()
    assert d.explanation_fr.endswith("Aucun partenaire éligible à proposer.")


# ------------------------------------------------------------------ properties

TERRITORIES = ["a", "b", "c"]
SLUGS = [
    "sante",
    "sante--addictions",
    "logement-hebergement",
    "trouver-un-emploi",
    "numerique",
    "famille--garde-denfants",
]


@st.composite
def networks(
    draw: st.DrawFn,
) -> tuple[list[Officer], list[Coordinator], list[OfferInfo], list[FreinIn], str]:
    officers = []
    uid = 1
    for t in TERRITORIES:
        for d in ("emploi", "sante", "logement"):
            for _ in range(draw(st.integers(0, 3))):
                officers.append(
                    Officer(uid, t, d, draw(st.integers(0, 4)), draw(st.integers(0, 5)))
                )
                uid += 1
    coordinators = [
        Coordinator(500 + i, t)
        for i, t in enumerate(TERRITORIES)
        if draw(st.booleans()) or t == "a"
    ]
    offers = []
    for oid in range(draw(st.integers(0, 6))):
        coverage = draw(st.none() | st.frozensets(st.sampled_from(TERRITORIES), min_size=1))
        offers.append(
            OfferInfo(
                oid,
                oid % 3,
                f"P{oid % 3}",
                f"O{oid}",
                tuple(draw(st.lists(st.sampled_from(SLUGS), min_size=1, max_size=2))),
                coverage,
                draw(st.booleans()),
                (ADULT,) if draw(st.booleans()) else (),
                draw(st.booleans()),
            )
        )
    persons = [
        PersonFacts(
            person_id=pid,
            programme="cvg",
            territory=draw(st.none() | st.sampled_from(TERRITORIES)),
            age=draw(st.none() | st.integers(16, 60)),
            housing=draw(st.sampled_from(["street", "housed"])),
        )
        for pid in range(draw(st.integers(1, 6)))
    ]
    freins = [
        FreinIn(
            fid,
            draw(st.sampled_from(SLUGS)),
            draw(st.sampled_from(persons)),
            TODAY - timedelta(days=draw(st.integers(0, 300))),
            draw(st.none() | st.integers(1, max(uid, 2))),
        )
        for fid in range(draw(st.integers(0, 30)))
    ]
    policy = draw(st.sampled_from(["moins_charge", "coordination"]))
    return officers, coordinators, offers, freins, policy


def build(net: Any) -> tuple[Router, list[FreinIn]]:
    officers, coordinators, offers, freins, policy = net
    rules = parse_rules(f'[routage]\nau_plafond = "{policy}"\n')
    return Router(officers, coordinators, offers, rules, national_queue_user_id=NATIONAL), freins


@settings(max_examples=150, deadline=None)
@given(networks())
def test_routing_invariants(net: Any) -> None:
    officers, coordinators, offers, _, _ = net
    r, freins = build(net)
    decisions = r.route_batch(freins, TODAY)

    # Exactly one decision per frein, in order, each with one owner and an explanation.
    assert [d.frein_id for d in decisions] == [f.frein_id for f in freins]
    by_id = {o.user_id: o for o in officers}
    coordinator_of = {}
    for c in coordinators:
        coordinator_of.setdefault(c.territory, c.user_id)
    offer_ids = {o.offer_id for o in offers}
    load = {o.user_id: o.load for o in officers}
    held: dict[tuple[int, str], int] = {}
    for f, d in zip(freins, decisions, strict=True):
        assert d.explanation_fr.strip()
        assert d.reasons and all(reason.get("code") for reason in d.reasons)
        territory = f.facts.territory
        if d.owner_kind == "officer":
            officer = by_id[d.owner_user_id]  # type: ignore[index]
            assert (officer.territory, officer.domain) == (territory, d.domain)
            assert d.partner_offer_id is None
            colleagues = [o for o in officers if (o.territory, o.domain) == (territory, d.domain)]
            # Never over cap while a colleague of the same territory and domain has room.
            if load[officer.user_id] >= officer.cap:
                assert all(load[o.user_id] >= o.cap for o in colleagues)
            # Stickiness: the same chargé·e unless they were full and someone had room.
            key = (f.facts.person_id, d.domain)
            previous = held.get(key)
            if previous is None and f.sticky_owner in {o.user_id for o in colleagues}:
                previous = f.sticky_owner
            if previous is not None and previous != officer.user_id:
                assert load[previous] >= by_id[previous].cap
                assert load[officer.user_id] < officer.cap
            assert d.reasons[0]["load"] == load[officer.user_id]
            load[officer.user_id] += 1
            held[key] = officer.user_id
        elif d.owner_kind == "coordinator":
            assert territory is not None
            assert d.owner_user_id == coordinator_of[territory]
            assert d.partner_offer_id is None
        elif d.owner_kind == "national":
            assert d.owner_user_id == NATIONAL
            assert territory is None or territory not in coordinator_of
        else:
            assert d.owner_kind == "partner"
            assert d.owner_user_id is None and d.partner_offer_id in offer_ids
        # Suggestions are eligible, cover the territory, match the thématique, ranked 1..n.
        assert [s.rank for s in d.suggestions] == list(range(1, len(d.suggestions) + 1))
        rejected = {offer_id for offer_id, _ in d.rejected}
        for s in d.suggestions:
            offer = next(o for o in offers if o.offer_id == s.offer_id)
            assert s.offer_id not in rejected
            assert offer.coverage is None or territory in offer.coverage
            assert not (ADULT in offer.rules and (f.facts.age is None or f.facts.age < 18))


@settings(max_examples=60, deadline=None)
@given(networks())
def test_routing_is_deterministic(net: Any) -> None:
    first_router, freins = build(net)
    second_router, _ = build(net)
    first = first_router.route_batch(freins, TODAY)
    assert second_router.route_batch(freins, TODAY) == first
    assert first_router.route_batch(freins, TODAY) == first  # warm caches, same answer


@settings(max_examples=60, deadline=None)
@given(networks())
def test_officers_of_domain_get_their_domain_only(net: Any) -> None:
    r, freins = build(net)
    per_officer: dict[int, set[str]] = defaultdict(set)
    for f, d in zip(freins, r.route_batch(freins, TODAY), strict=True):
        if d.owner_kind == "officer":
            per_officer[d.owner_user_id].add(domain_of(f.thematique))  # type: ignore[index]
    officers = {o.user_id: o for o in net[0]}
    for user_id, domains in per_officer.items():
        assert domains == {officers[user_id].domain}
