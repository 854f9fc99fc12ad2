"""Intake routing: who handles each new frein, and which partners to propose.

Why: every frein must reach exactly one owner — the chargé·e de partenariats of its domain
in the person's territory, load-balanced, sticky per person and domain, within caseload
caps — with ranked, *eligible* partner suggestions and reasons a person can read. The
network (thématiques → domains → chargé·es per territory, thématiques → offers by
coverage) is a networkx graph built once; routing reads tables derived from it.

Decisions, in order (each one is recorded as a structured reason and a French sentence):

1. A frein whose thématique is sent directly to a partner — a transverse frein and an
   offer that `accepts_direct`, or a thématique the rules file names in `routage.directs` —
   goes to the best-ranked such offer covering the territory, if the person is eligible
   (owner kind "partner").
2. No territory (chantier "hors territoire") → the national queue.
3. Transverse, or a thématique unknown to the taxonomy → the territory's coordinator.
4. No chargé·e of the domain in the territory (Isère has no emploi officer) → coordinator.
5. Otherwise a chargé·e: the one already following this person in this domain (`sticky`,
   within the batch or via `FreinIn.sticky_owner`) if under cap; else the least loaded
   relative to cap (load/cap, ties by lowest user id). When *every* chargé·e of the domain
   is at cap, the sticky one keeps it, else — policy `routage.au_plafond` — the least
   loaded takes it over cap ("moins_charge", the default: the frein stays with someone
   of the right domain, and the coordinator sees the overload in the reasons) or the
   coordinator does ("coordination").
   A territory without coordinator falls back to the national queue.

Offer ranking (documented, deterministic): eligible offers covering the territory whose
thématiques match the frein (same slug, or a prefix: an offer on "sante" matches a frein
"sante--addictions"); score = 100 × specificity (2 exact, 1 prefix) + 10 if local
(coverage lists territories) + 1 if not slot-based (open services first: counted slots go
through allocation and are the last resort); offers *à vérifier* (`OfferInfo.review`: a
service of the national referential not updated for 12 months or of low quality) come after
every fresh one whatever their score; ties by offer id. The top N are suggested;
ineligible offers are listed with the French reason of their first failed rule.

Speed: candidate offers are precomputed per (territory, thématique), from an index of the
offers by thématique and territory (tens of thousands of imported services stay cheap);
offers without rules are eligible for everybody, so an outcome walks only the offers with
rules and the first suggestions; eligibility outcomes
are memoized per (territory, thématique, values of the fields the rules read); grid
scores are memoized by `matching.grid.Grid`; officer states are shared per (territory,
domain). `route_batch` is a pure function of the router and its input: loads start from
the given `Officer.load` on every call (use `route_chunks` to carry loads across chunks).
The garbage collector is paused during the loop (no cycles are created). Measured by
`bench/bench_routing_pure.py`: ~150k freins/s on one core (1M in ~6.5 s on a busy 2-core
machine). Territories are independent (loads, stickiness and coordinators are per
territory), so a caller needing more can shard freins by territory across processes and
get exactly the same decisions.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, NamedTuple

import networkx as nx

from matching.eligibility import RuleSet, profile_getter
from matching.facts import PersonFacts
from matching.grid import Grid, Line, PersonPart
from matching.rules import RoutingRules
from partners.eligibility_rules import Rule
from partners.taxonomy import (
    DOMAIN_LABELS,
    SEPARATOR,
    THEMATIQUES,
    UnknownThematique,
    covers,
    domain_of,
)

OwnerKind = Literal["officer", "coordinator", "national", "partner"]

# ---------------------------------------------------------------- input data


@dataclass(frozen=True, slots=True)
class Officer:
    """A chargé·e de partenariats of one domain in one territory, with open referrals."""

    user_id: int
    territory: str
    domain: str
    cap: int
    load: int


@dataclass(frozen=True, slots=True)
class Coordinator:
    """A territory coordinator (fallback owner)."""

    user_id: int
    territory: str


@dataclass(frozen=True, slots=True)
class OfferInfo:
    """One offer of a partner: what it covers, where, for whom."""

    offer_id: int
    partner_id: int
    partner_name: str
    name: str
    thematiques: tuple[str, ...]  # exact slugs or prefixes
    coverage: frozenset[str] | None  # None = national
    slot_based: bool
    rules: tuple[Rule, ...] = ()
    accepts_direct: bool = False  # transverse freins may be sent to it directly
    review: bool = False  # "à vérifier": ranked after every fresh offer


@dataclass(frozen=True, slots=True)
class FreinIn:
    """A new frein to route, with the facts of its person."""

    frein_id: int
    thematique: str
    facts: PersonFacts
    identified_at: date
    sticky_owner: int | None = None  # chargé·e already holding an open referral (same domain)


# ---------------------------------------------------------------- output data


class Suggestion(NamedTuple):
    offer_id: int
    rank: int  # 1 = best
    score: int


class Rejection(NamedTuple):
    offer_id: int
    reason: str  # French: the first rule the person fails


@dataclass(slots=True)
class Decision:
    """Where one frein goes and why. `suggestions`/`rejected`/`breakdown` are shared tuples."""

    frein_id: int
    domain: str
    owner_kind: OwnerKind
    owner_user_id: int | None
    partner_offer_id: int | None
    priority: int
    breakdown: tuple[Line, ...]
    suggestions: tuple[Suggestion, ...]
    rejected: tuple[Rejection, ...]
    reasons: list[dict[str, Any]]
    explanation_fr: str


# ---------------------------------------------------------------- internals

EXACT, PREFIX = 2, 1


def match_specificity(frein_slug: str, offer_thematique: str) -> int:
    """2 if the offer names the frein's slug, 1 if a prefix of it, 0 if unrelated."""
    if frein_slug == offer_thematique:
        return EXACT
    return PREFIX if covers(offer_thematique, frein_slug) else 0


class _OfficerState:
    __slots__ = ("user_id", "cap", "load", "initial_load")

    def __init__(self, officer: Officer) -> None:
        self.user_id = officer.user_id
        self.cap = officer.cap
        self.load = officer.load
        self.initial_load = officer.load

    @property
    def ratio(self) -> float:
        return self.load / self.cap if self.cap > 0 else math.inf


@dataclass(slots=True)
class _Outcome:
    """Eligibility of one facts profile against a group's candidate offers (memoized)."""

    suggestions: tuple[Suggestion, ...]
    rejected: tuple[Rejection, ...]
    direct: OfferInfo | None
    suffix: str  # French sentence about suggestions
    fixed: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)


class _Candidate(NamedTuple):
    offer: OfferInfo
    ruleset: RuleSet
    score: int
    direct: bool
    ruled: bool  # has rules: may be ineligible


@dataclass(slots=True)
class _Group:
    """Everything routing needs for one (territory, thématique)."""

    territory: str | None
    slug: str
    domain: str
    known: bool
    candidates: tuple[_Candidate, ...]
    ruled: tuple[_Candidate, ...]  # the candidates with rules, in rank order
    directs: tuple[_Candidate, ...]  # the direct candidates, in rank order
    has_direct: bool
    profile: Callable[[PersonFacts], object]
    officers: list[_OfficerState]
    by_id: dict[int, _OfficerState]
    coordinator: int | None
    prefix: str  # "Frein santé (Addictions) du territoire Lyon : "
    domain_label: str  # "santé"
    officer_label: str  # "la personne chargée de partenariats santé"
    route: tuple[OwnerKind, int | None, str] | None  # owner when no chargé·e is chosen
    outcomes: dict[object, _Outcome] = field(default_factory=dict)


def _plural_partners(names: list[str]) -> str:
    if not names:
        return "Aucun partenaire éligible à proposer."
    if len(names) == 1:
        return f"1 partenaire proposé : {names[0]}."
    return f"{len(names)} partenaires proposés : {', '.join(names)}."


# ---------------------------------------------------------------- the router


class Router:
    """Routes batches of new freins over one snapshot of the network. Build once per run."""

    def __init__(
        self,
        officers: Iterable[Officer],
        coordinators: Iterable[Coordinator],
        offers: Iterable[OfferInfo],
        rules: RoutingRules,
        national_queue_user_id: int | None = None,
        territory_labels: Mapping[str, str] | None = None,
        grid: Grid | None = None,
    ) -> None:
        self.rules = rules
        self.national_queue_user_id = national_queue_user_id
        self.territory_labels = dict(territory_labels or {})
        self.grid = grid or Grid(rules.grid)
        self._suggestion_count = rules.routing.suggestions
        self._cap_to_coordinator = rules.routing.at_cap == "coordination"
        self._offers = {offer.offer_id: offer for offer in offers}
        no_rules = RuleSet(())
        self._rulesets = {
            oid: RuleSet(offer.rules) if offer.rules else no_rules
            for oid, offer in self._offers.items()
        }
        self._by_slug = self._index_offers()
        self.graph = self._build_graph(list(officers), list(coordinators))
        self._pools: dict[tuple[str, str], list[_OfficerState]] = {}
        for node, data in self.graph.nodes(data=True):
            if node[0] == "officer":
                officer: Officer = data["officer"]
                key = (officer.territory, officer.domain)
                self._pools.setdefault(key, []).append(_OfficerState(officer))
        for pool in self._pools.values():
            pool.sort(key=lambda state: state.user_id)  # ties go to the lowest user id
        self._coordinator: dict[str, int] = {}
        for node, data in self.graph.nodes(data=True):
            if node[0] == "coordinator":
                territory = data["territory"]
                current = self._coordinator.get(territory)
                if current is None or node[1] < current:  # several: the lowest id, stable
                    self._coordinator[territory] = node[1]
        self._groups_by_territory: dict[str | None, dict[str, _Group]] = {}
        self._by_territory: dict[
            tuple[str, str],
            tuple[list[tuple[OfferInfo, int]], dict[str, list[tuple[OfferInfo, int]]]],
        ] = {}

    # ------------------------------------------------------------ graph

    def _build_graph(self, officers: list[Officer], coordinators: list[Coordinator]) -> nx.DiGraph:
        """thématique → domain → officer (per territory); thématique → offer; territory → staff."""
        g = nx.DiGraph()
        for slug in THEMATIQUES:
            self._add_thematique(g, slug)
        for officer in officers:
            node = ("officer", officer.user_id)
            g.add_node(node, officer=officer)
            g.add_edge(("domain", officer.domain), node)
            g.add_edge(("territory", officer.territory), node)
        for coordinator in coordinators:
            node = ("coordinator", coordinator.user_id)
            g.add_node(node, territory=coordinator.territory)
            g.add_edge(("territory", coordinator.territory), node)
        for offer in self._offers.values():
            node = ("offer", offer.offer_id)
            g.add_node(node, offer=offer)
            for territory in sorted(offer.coverage or ()):
                g.add_edge(("territory", territory), node)
        for slug in list(THEMATIQUES):
            self._link_offers(g, slug)
        return g

    def _add_thematique(self, g: nx.DiGraph, slug: str) -> None:
        domain = self.rules.domain_of(slug)  # the one decision (see RoutingRules.domain_of)
        try:
            known = bool(domain_of(slug))
        except UnknownThematique:
            known = self.rules.domain_override(slug) is not None
        g.add_node(("thematique", slug), known=known)
        g.add_edge(("thematique", slug), ("domain", domain))

    def _index_offers(self) -> dict[str, dict[int, int]]:
        """slug -> {offer id: specificity} for the taxonomy's slugs: one pass over the offers
        instead of one per slug (an offer on a category covers its sub-thématiques)."""
        index: dict[str, dict[int, int]] = {}
        subs: dict[str, list[str]] = {}
        for slug in THEMATIQUES:
            if SEPARATOR in slug:
                subs.setdefault(slug.split(SEPARATOR, 1)[0], []).append(slug)
        for offer in self._offers.values():
            for t in offer.thematiques:
                hits = index.setdefault(t, {})
                hits[offer.offer_id] = EXACT
                if SEPARATOR not in t:
                    for sub in subs.get(t, ()):
                        found = index.setdefault(sub, {})
                        if found.get(offer.offer_id, 0) < PREFIX:
                            found[offer.offer_id] = PREFIX
        return index

    def _link_offers(self, g: nx.DiGraph, slug: str) -> None:
        if slug in THEMATIQUES:
            for offer_id, specificity in sorted(self._by_slug.get(slug, {}).items()):
                g.add_edge(("thematique", slug), ("offer", offer_id), specificity=specificity)
            return
        for offer in self._offers.values():  # a slug outside the taxonomy (lazily added)
            specificity = max((match_specificity(slug, t) for t in offer.thematiques), default=0)
            if specificity:
                g.add_edge(("thematique", slug), ("offer", offer.offer_id), specificity=specificity)

    # ------------------------------------------------------------ groups

    def _group(self, territory: str | None, slug: str) -> _Group:
        node = ("thematique", slug)
        if node not in self.graph:  # a slug outside the taxonomy: add it lazily
            self._add_thematique(self.graph, slug)
            self._link_offers(self.graph, slug)
        known = bool(self.graph.nodes[node]["known"])
        domain = next(n[1] for n in self.graph.successors(node) if n[0] == "domain")
        direct_partner = self.rules.direct_partner(slug)
        candidates: list[_Candidate] = []
        for offer, specificity in self._slug_offers(node, territory):
            score = 100 * specificity + (10 if offer.coverage is not None else 0)
            score += 0 if offer.slot_based else 1
            direct = (offer.accepts_direct and domain == "transverse") or (
                direct_partner is not None and offer.partner_name == direct_partner
            )
            candidates.append(
                _Candidate(offer, self._rulesets[offer.offer_id], score, direct, bool(offer.rules))
            )
        candidates.sort(key=lambda c: (c.offer.review, -c.score, c.offer.offer_id))
        fields = tuple(dict.fromkeys(f for c in candidates for f in c.ruleset.fields))
        profile = profile_getter(fields)
        pool = self._pools.get((territory, domain), []) if territory is not None else []
        domain_label = DOMAIN_LABELS.get(domain, domain).lower()
        thematique = THEMATIQUES.get(slug)
        what = f"Frein {domain_label} ({thematique.label if thematique else slug})"
        if territory is None:
            where = "hors territoire"
        else:
            where = f"du territoire {self.territory_labels.get(territory, territory)}"
        coordinator = self._coordinator.get(territory) if territory is not None else None
        national = self.national_queue_user_id
        route: tuple[OwnerKind, int | None, str] | None = None
        if territory is None:
            route = ("national", national, "no_territory")
        elif domain == "transverse" or not known or not pool:
            if coordinator is None:
                route = ("national", national, "no_coordinator")
            elif not known:
                route = ("coordinator", coordinator, "unknown_thematique")
            elif domain == "transverse":
                route = ("coordinator", coordinator, "transverse")
            else:
                route = ("coordinator", coordinator, "no_officer")
        group = _Group(
            territory=territory,
            slug=slug,
            domain=domain,
            known=known,
            candidates=tuple(candidates),
            ruled=tuple(c for c in candidates if c.ruled),
            directs=tuple(c for c in candidates if c.direct),
            has_direct=any(c.direct for c in candidates),
            profile=profile,
            officers=pool,
            by_id={o.user_id: o for o in pool},
            coordinator=coordinator,
            prefix=f"{what} {where} : ",
            domain_label=domain_label,
            officer_label=f"la personne chargée de partenariats {domain_label}",
            route=route,
        )
        return group

    def _slug_offers(
        self, node: tuple[str, str], territory: str | None
    ) -> list[tuple[OfferInfo, int]]:
        """(offer, specificity) of a thématique node's offers covering ``territory``, read from
        the graph once per thématique and split by territory (national ones in every list)."""
        split = self._by_territory.get(node)
        if split is None:
            national: list[tuple[OfferInfo, int]] = []
            local: dict[str, list[tuple[OfferInfo, int]]] = {}
            edges = self.graph.edges
            for succ in self.graph.successors(node):
                if succ[0] != "offer":
                    continue
                offer: OfferInfo = self.graph.nodes[succ]["offer"]
                item = (offer, edges[node, succ]["specificity"])
                if offer.coverage is None:
                    national.append(item)
                else:
                    for code in offer.coverage:
                        local.setdefault(code, []).append(item)
            split = self._by_territory[node] = (national, local)
        national, local = split
        if territory is None:
            return national
        return national + local.get(territory, [])

    def _outcome(self, group: _Group, facts: PersonFacts, key: object) -> _Outcome:
        # Only offers with rules can reject someone: check those, then take the first
        # eligible candidates in rank order (the same result as checking every candidate).
        rejected: list[Rejection] = []
        refused: set[int] = set()
        for candidate in group.ruled:
            verdict = candidate.ruleset.check_cached(facts)
            if not verdict.eligible:
                rejected.append(Rejection(candidate.offer.offer_id, verdict.reasons[0]))
                refused.add(candidate.offer.offer_id)
        top: list[_Candidate] = []
        for candidate in group.candidates:
            if len(top) >= self._suggestion_count:
                break
            if candidate.offer.offer_id not in refused:
                top.append(candidate)
        suggestions = tuple(
            Suggestion(c.offer.offer_id, rank, c.score) for rank, c in enumerate(top, start=1)
        )
        names = list(dict.fromkeys(c.offer.partner_name for c in top))
        direct = next((c.offer for c in group.directs if c.offer.offer_id not in refused), None)
        outcome = _Outcome(suggestions, tuple(rejected), direct, _plural_partners(names))
        group.outcomes[key] = outcome
        return outcome

    # ------------------------------------------------------------ routing

    def route_batch(self, freins: Sequence[FreinIn], today: date) -> list[Decision]:
        """Route one batch; loads start from `Officer.load`, stickiness holds within it."""
        return next(self.route_chunks([freins], today))

    def route_chunks(
        self, chunks: Iterable[Sequence[FreinIn]], today: date
    ) -> Iterator[list[Decision]]:
        """Route chunks as one batch: loads and stickiness carry from chunk to chunk."""
        for pool in self._pools.values():
            for state in pool:
                state.load = state.initial_load
        sticky: dict[tuple[int, str], _OfficerState] = {}
        for chunk in chunks:
            yield self._route(chunk, today, sticky)

    def _route(
        self,
        freins: Sequence[FreinIn],
        today: date,
        sticky: dict[tuple[int, str], _OfficerState],
    ) -> list[Decision]:
        # A batch allocates millions of small containers that all stay alive; the cyclic
        # garbage collector would rescan them again and again (measured: +40 % time) for
        # nothing, since routing creates no cycles. Pause it for the loop only.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._route_loop(freins, today, sticky)
        finally:
            if was_enabled:
                gc.enable()

    def _route_loop(
        self,
        freins: Sequence[FreinIn],
        today: date,
        sticky: dict[tuple[int, str], _OfficerState],
    ) -> list[Decision]:
        decisions: list[Decision] = []
        append = decisions.append
        grid = self.grid
        person_terms, complete = grid.person_terms, grid.complete
        max_weeks = grid.max_weeks
        today_ordinal = today.toordinal()
        # id(facts) is stable while `freins` holds the facts: a person with several freins
        # is scored (person part) once per chunk.
        persons: dict[int, tuple[PersonPart, int, dict[str, _Group]]] = {}
        by_territory = self._groups_by_territory
        for frein in freins:
            facts = frein.facts
            terms = persons.get(id(facts))
            if terms is None:
                part, ending = person_terms(facts, today)
                territory_groups = by_territory.get(facts.territory)
                if territory_groups is None:
                    territory_groups = by_territory[facts.territory] = {}
                terms = persons[id(facts)] = (part, ending, territory_groups)
            part, time_key, territory_groups = terms
            group = territory_groups.get(frein.thematique)
            if group is None:
                group = territory_groups[frein.thematique] = self._group(
                    facts.territory, frein.thematique
                )
            waited = today_ordinal - frein.identified_at.toordinal()
            if waited >= 7:
                weeks = waited // 7
                time_key += weeks if weeks < max_weeks else max_weeks
            points = part.scores.get(time_key)
            if points is None:
                points = complete(part, time_key)
            key = group.profile(facts)
            outcome = group.outcomes.get(key)
            if outcome is None:
                outcome = self._outcome(group, facts, key)

            offer_id: int | None = None
            if group.has_direct and outcome.direct is not None:
                kind: OwnerKind = "partner"
                owner: int | None = None
                offer_id = outcome.direct.offer_id
                fixed = outcome.fixed.get("direct_partner")
                if fixed is None:
                    fixed = self._fixed_text(group, outcome, "direct_partner")
                reasons, text = [fixed[0].copy()], fixed[1]
            elif group.route is not None:
                kind, owner, code = group.route
                fixed = outcome.fixed.get(code)
                if fixed is None:
                    fixed = self._fixed_text(group, outcome, code)
                reasons, text = [fixed[0].copy()], fixed[1]
            else:
                kind = "officer"
                reasons, text = self._assign(group, facts.person_id, frein.sticky_owner, sticky)
                if reasons[0]["code"] == "all_at_cap_to_coordinator":
                    if group.coordinator is not None:
                        kind, owner = "coordinator", group.coordinator
                    else:
                        kind, owner = "national", self.national_queue_user_id
                else:
                    owner = reasons[0]["officer"]
                text = group.prefix + text + " " + outcome.suffix
            append(
                Decision(
                    frein.frein_id,
                    group.domain,
                    kind,
                    owner,
                    offer_id,
                    points.total,
                    points.breakdown,
                    outcome.suggestions,
                    outcome.rejected,
                    reasons,
                    text,
                )
            )
        return decisions

    def _fixed_text(
        self, group: _Group, outcome: _Outcome, code: str
    ) -> tuple[dict[str, Any], str]:
        """Reason and text of an owner choice that does not depend on loads (memoized)."""
        reason: dict[str, Any] = {"code": code}
        if code == "direct_partner":
            offer = outcome.direct
            assert offer is not None
            reason["offer"] = offer.offer_id
            middle = (
                f"orienté directement vers {offer.partner_name} ({offer.name}), "
                "qui accepte les orientations directes."
            )
        elif code == "no_territory":
            reason["national_user"] = self.national_queue_user_id
            middle = "chantier hors des territoires Convergence ; confié à la file nationale."
        elif code == "no_coordinator":
            reason["national_user"] = self.national_queue_user_id
            middle = "aucune coordination sur ce territoire ; confié à la file nationale."
        elif code == "unknown_thematique":
            reason["coordinator"] = group.coordinator
            middle = (
                f"thématique « {group.slug} » absente de la nomenclature ; "
                "confié à la coordination territoriale."
            )
        elif code == "transverse":
            reason["coordinator"] = group.coordinator
            middle = (
                "aucun partenaire acceptant les orientations directes et auquel la personne "
                "est éligible ; confié à la coordination territoriale."
            )
        else:  # no_officer
            reason["coordinator"] = group.coordinator
            middle = (
                f"aucune personne chargée de partenariats {group.domain_label} "
                "sur ce territoire ; confié à la coordination territoriale."
            )
        fixed = outcome.fixed[code] = (reason, group.prefix + middle + " " + outcome.suffix)
        return fixed

    def _assign(
        self,
        group: _Group,
        person_id: int,
        sticky_owner: int | None,
        sticky: dict[tuple[int, str], _OfficerState],
    ) -> tuple[list[dict[str, Any]], str]:
        """Pick a chargé·e (sticky, else least loaded), update loads, say why."""
        pool = group.officers
        sticky_key = (person_id, group.domain)
        held = sticky.get(sticky_key)
        if held is None and sticky_owner is not None:
            held = group.by_id.get(sticky_owner)
        who = group.officer_label
        if held is not None and held.load < held.cap:
            chosen = held
            reason: dict[str, Any] = {"code": "sticky"}
            text = (
                f"confié à {who} qui suit déjà cette personne dans ce domaine "
                f"({held.load}/{held.cap})."
            )
        else:
            best = pool[0]
            if len(pool) > 1:
                best_ratio = best.ratio
                for state in pool:
                    ratio = state.ratio
                    if ratio < best_ratio:
                        best, best_ratio = state, ratio
            if best.load < best.cap:
                chosen = best
                if held is not None:
                    reason = {
                        "code": "sticky_owner_full",
                        "previous": held.user_id,
                        "previous_load": held.load,
                        "previous_cap": held.cap,
                    }
                    text = (
                        f"{who} qui suit déjà cette personne est à son plafond "
                        f"({held.load}/{held.cap}) ; confié à la moins chargée "
                        f"({best.load}/{best.cap})."
                    )
                elif len(pool) == 1:
                    reason = {"code": "only_officer"}
                    text = f"confié à {who} du territoire ({best.load}/{best.cap})."
                else:
                    reason = {"code": "least_loaded"}
                    text = f"confié à {who} la moins chargée ({best.load}/{best.cap})."
            elif held is not None:
                chosen = held
                reason = {"code": "sticky_all_at_cap"}
                text = (
                    f"confié à {who} qui suit déjà cette personne, au-delà de son plafond "
                    f"({held.load}/{held.cap}), car toutes sont à leur plafond."
                )
            elif self._cap_to_coordinator:
                target = "la coordination territoriale"
                if group.coordinator is None:
                    target = "la file nationale"
                return (
                    [{"code": "all_at_cap_to_coordinator", "coordinator": group.coordinator}],
                    f"toutes les personnes chargées de partenariats {group.domain_label} sont "
                    f"à leur plafond ; confié à {target}.",
                )
            else:
                chosen = best
                reason = {"code": "all_at_cap"}
                text = (
                    f"toutes les personnes chargées de partenariats {group.domain_label} "
                    "sont à leur "
                    f"plafond ; confié à la moins chargée, au-delà de son plafond "
                    f"({best.load}/{best.cap})."
                )
        reason["officer"] = chosen.user_id
        reason["load"] = chosen.load
        reason["cap"] = chosen.cap
        chosen.load += 1
        sticky[sticky_key] = chosen
        return [reason], text

    # ------------------------------------------------------------ diagnostics

    def coverage_gaps(self, territories: Iterable[str]) -> list[tuple[str, str]]:
        """(territory, domain) pairs with no chargé·e: their freins go to the coordinator."""
        return [
            (t, d)
            for t in sorted(territories)
            for d in ("emploi", "sante", "logement")
            if not self._pools.get((t, d))
        ]
