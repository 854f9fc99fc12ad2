"""Benchmark of the pure intake routing (no database): freins routed per second.

Why: the intake routes ~1M freins per run within ~35 s including database I/O, so the pure
part must stay well under 10 s. Run: `.venv/bin/python bench/bench_routing_pure.py [N]`.
Writes bench/results/routing_pure.json.
"""

from __future__ import annotations

import json
import os
import platform
import random
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from matching.facts import PersonFacts
from matching.routing import Coordinator, FreinIn, OfferInfo, Officer, Router
from matching.rules import load_rules
from partners.eligibility_rules import Rule
from partners.taxonomy import OFFICER_DOMAINS, THEMATIQUES

TERRITORIES = [f"t{i:02d}" for i in range(13)]
SLUGS = list(THEMATIQUES)
HOUSING = ["housed"] * 5 + [
    "street",
    "emergency_shelter",
    "hosted_third_party",
    "integration_housing",
]


def network(rng: random.Random) -> tuple[list[Officer], list[Coordinator], list[OfferInfo]]:
    """13 territories, 1-2 chargé·es per domain (one territory without emploi), 300 offers."""
    officers: list[Officer] = []
    uid = 1
    for t in TERRITORIES:
        for d in OFFICER_DOMAINS:
            if t == "t03" and d == "emploi":
                continue
            for _ in range(rng.choice((1, 2))):
                officers.append(Officer(uid, t, d, 120, rng.randrange(0, 100)))
                uid += 1
    coordinators = [Coordinator(1000 + i, t) for i, t in enumerate(TERRITORIES)]
    age_rule = Rule(field="age", op="gte", value=18, label="Réservé aux personnes majeures.")
    household = Rule(
        field="household_size", op="lte", value=4, label="Foyers de 4 personnes au plus."
    )
    phc = Rule(field="programme", op="eq", value="phc", label="Réservé au programme PHC.")
    offers = []
    for i in range(300):
        coverage = None if i % 5 == 0 else frozenset(rng.sample(TERRITORIES, rng.choice((1, 2, 3))))
        thematiques = tuple(rng.sample(SLUGS, rng.choice((1, 2, 3))))
        rules = tuple(rng.sample([age_rule, household, phc], rng.choice((0, 1, 2))))
        offers.append(
            OfferInfo(
                i + 1,
                i // 2 + 1,
                f"Partenaire {i // 2 + 1}",
                f"Offre {i + 1}",
                thematiques,
                coverage,
                rng.random() < 0.2,
                rules,
                rng.random() < 0.3,
            )
        )
    return officers, coordinators, offers


def freins(n: int, rng: random.Random, today: date) -> list[FreinIn]:
    """n freins of n/3 persons with a realistic mix of situations."""
    persons = []
    for pid in range(max(1, n // 3)):
        persons.append(
            PersonFacts(
                person_id=pid,
                programme=rng.choice(("cvg", "phc")),
                territory=None if rng.random() < 0.03 else rng.choice(TERRITORIES),
                housing=rng.choice(HOUSING),
                street_months=rng.choice((0, 0, 0, 3, 8, 30)),
                has_resources=rng.random() < 0.7,
                household_size=rng.randint(1, 6),
                minor_children=rng.choice((0, 0, 1, 2)),
                vulnerability_flags=frozenset() if rng.random() < 0.9 else frozenset({"violence"}),
                health_urgency=rng.random() < 0.05,
                open_freins=rng.randint(1, 6),
                programme_end=today + timedelta(days=rng.randint(-30, 700)),
                age=rng.choice((None, 17, 25, 40, 55)),
            )
        )
    out = []
    for fid in range(n):
        person = persons[rng.randrange(len(persons))]
        out.append(
            FreinIn(fid, rng.choice(SLUGS), person, today - timedelta(days=rng.randint(0, 400)))
        )
    return out


def main() -> None:
    """Route N synthetic freins twice (cold caches, then warm) and report both."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rng = random.Random(42)
    today = date(2025, 3, 1)
    officers, coordinators, offers = network(rng)
    batch = freins(n, rng, today)
    t0 = time.perf_counter()
    router = Router(officers, coordinators, offers, load_rules(), national_queue_user_id=1)
    build = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    decisions = router.route_batch(batch, today)
    cold, cold_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    router.route_batch(batch, today)
    warm, warm_cpu = time.perf_counter() - t0, time.process_time() - c0
    assert len(decisions) == n
    kinds: dict[str, int] = {}
    for d in decisions:
        kinds[d.owner_kind] = kinds.get(d.owner_kind, 0) + 1
    result = {
        "benchmark": "routing_pure",
        "freins": n,
        "build_s": round(build, 4),
        "route_cold_s": round(cold, 3),
        "route_warm_s": round(warm, 3),
        "route_cold_cpu_s": round(cold_cpu, 3),
        "route_warm_cpu_s": round(warm_cpu, 3),
        "freins_per_s_cold": round(n / cold),
        "freins_per_s_warm": round(n / warm),
        "owner_kinds": kinds,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    out = Path(__file__).parent / "results" / "routing_pure.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
