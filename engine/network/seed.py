"""The synthetic network: territories, chantiers, teams, salarié·es, freins, partners, pools.

Why: every flow, the allocation and the pages need a realistic network, and nobody may use
real people's data for that. The generator is deterministic for a given seed (and reference
day), calibrated on the 2024 activity report, and writes with SQLAlchemy Core executemany
so that ``--scale 50`` (about a million freins) fits in a couple of minutes. Shares that the
report publishes are drawn as exact quotas, not coin flips, so they hold at every scale.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import delete, func, insert, select, text

from engine.domain import pseudonyms
from engine.domain.clock import Clock
from engine.domain.labels import ROLE_PLURAL_LABELS, domain_in_sentence, plural
from engine.domain.vocabulary import DOMAINS
from engine.network.reference import reference_2024
from engine.store import dialect
from engine.store import models as m
from engine.store.db import Database, analyze
from partners.catalogue import load_catalogue
from partners.taxonomy import OFFICER_DOMAINS, slugs_of_domain

DEMO_PASSWORD = "demo-aiguillage"
MAIL_DOMAIN = "convergence-france.example.org"

# CVG chantiers per territory (87 in all; Isère's 7 come from the report, the rest assumed).
CVG_CHANTIERS: dict[str, int] = {
    "paris": 9,
    "seine-saint-denis": 7,
    "lyon": 8,
    "marseille": 8,
    "nantes": 7,
    "rouen": 6,
    "ille-et-vilaine": 6,
    "moselle": 5,
    "somme": 5,
    "mel": 7,
    "charente": 6,
    "strasbourg": 6,
    "isere": 7,
}
# Departments of the 38 PHC chantiers outside the territories (39 PHC departments in all).
PHC_OUTSIDE_DEPARTMENTS: tuple[str, ...] = (
    "22",
    "79",
    "86",
    "29",
    "56",
    "31",
    "33",
    "34",
    "30",
    "63",
    "87",
    "24",
    "17",
    "85",
    "49",
    "72",
    "37",
    "45",
    "21",
    "25",
    "54",
    "88",
    "68",
    "10",
    "51",
    "02",
    "60",
    "27",
    "14",
    "50",
    "61",
    "53",
    "26",
    "07",
    "73",
    "74",
    "06",
    "972",
)


def short_name(territory_name: str) -> str:
    """ "Convergence Paris" -> "Paris" (chantier names)."""
    return territory_name.removeprefix("Convergence ")


class SeedError(RuntimeError):
    """A refused seed (French message)."""


def pseudonym(index: int, seed: int) -> str:
    """A unique, non-sequential reference SAL-XXXXXX: an affine bijection of the index."""
    a = 1_000_003 + 2 * (seed % 1000)  # odd, hence coprime with 32**6
    return pseudonyms.from_number((a * index + 7_919 * (seed + 1)) % pseudonyms.SPACE)


@dataclass
class SeedSummary:
    territories: int = 0
    chantiers: int = 0
    chantiers_outside: int = 0
    people: Counter[str] = field(default_factory=Counter)
    freins_by_domain: Counter[str] = field(default_factory=Counter)
    staff_by_role: Counter[str] = field(default_factory=Counter)
    partners: int = 0
    offers: int = 0
    pools: list[tuple[str, int]] = field(default_factory=list)

    def lines_fr(self) -> list[str]:
        roles = ROLE_PLURAL_LABELS
        domains = {d: domain_in_sentence(d) for d in DOMAINS}
        out = [
            f"Territoires : {self.territories}",
            f"Chantiers : {self.chantiers} (dont {self.chantiers_outside} PHC hors territoire)",
            f"Salarié·es : {sum(self.people.values())} "
            f"(CVG {self.people['cvg']}, PHC {self.people['phc']})",
            f"Freins : {sum(self.freins_by_domain.values())} — "
            + ", ".join(f"{domains[d]} {self.freins_by_domain[d]}" for d in domains),
            "Comptes : " + ", ".join(f"{roles[r]} {self.staff_by_role[r]}" for r in roles),
            f"Partenaires : {self.partners} ({self.offers} offres)",
            f"Dispositifs à places comptées : {len(self.pools)}",
        ]
        out += [f"  - {name} : {plural(cap, 'place')}" for name, cap in self.pools]
        return out


def _quota(rng: random.Random, n: int, share: float) -> list[bool]:
    """Exactly round(share * n) True values, shuffled."""
    k = round(share * n)
    flags = [True] * k + [False] * (n - k)
    rng.shuffle(flags)
    return flags


def _weighted(rng: random.Random, table: list[tuple[Any, float]]) -> Any:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table], k=1)[0]


def reset(db: Database) -> None:
    """Delete every row, children first (used by ``seed --reset`` and the benches)."""
    with db.engine.begin() as conn:
        for table in reversed(m.Base.metadata.sorted_tables):
            conn.execute(delete(table))


def _bulk(conn, table, rows: list[dict[str, Any]], chunk: int = 20_000) -> None:  # type: ignore[no-untyped-def]
    for i in range(0, len(rows), chunk):
        conn.execute(insert(table), rows[i : i + chunk])


def _fix_sequences(conn) -> None:  # type: ignore[no-untyped-def]
    if not dialect.is_postgresql(conn):
        return
    for table in m.Base.metadata.sorted_tables:
        if "id" in table.c and table.c.id.primary_key:
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
                )
            )


def _territory_rows(
    ref: dict[str, Any],
) -> tuple[list[dict[str, Any]], dict[str, int], dict[str, str]]:
    """The territories of the reference, their ids by code and their first department."""
    territories: list[dict[str, Any]] = []
    tid: dict[str, int] = {}
    for i, t in enumerate(ref["territories"], start=1):
        tid[t["code"]] = i
        territories.append(
            {
                "id": i,
                "code": t["code"],
                "name": t["name"],
                "kind": t["kind"],
                "departments": ",".join(t["departments"]),
            }
        )
    dept_of = {t["code"]: t["departments"][0] for t in ref["territories"]}

    return territories, tid, dept_of


def _chantier_rows(
    ref: dict[str, Any],
    territories: list[dict[str, Any]],
    tid: dict[str, int],
    dept_of: dict[str, str],
) -> list[dict[str, Any]]:
    """CVG chantiers per territory (some also PHC), then PHC chantiers outside them."""
    chantiers: list[dict[str, Any]] = []
    for terr, count in CVG_CHANTIERS.items():
        for k in range(1, count + 1):
            chantiers.append(
                {
                    "id": len(chantiers) + 1,
                    "code": f"{terr}-aci-{k:02d}",
                    "name": f"ACI {short_name(territories[tid[terr] - 1]['name'])} {k}",
                    "territory_id": tid[terr],
                    "department": dept_of[terr],
                    "carries_cvg": True,
                    "carries_phc": False,
                }
            )
    also_phc = ref["chantiers"]["cvg_also_phc"]
    # Spread the 31 CVG+PHC chantiers round-robin over territories: the first chantier of
    # each territory, then the second, ...
    by_rank = sorted(chantiers, key=lambda c: (int(c["code"].rsplit("-", 1)[1]), c["code"]))
    for c in by_rank[:also_phc]:
        c["carries_phc"] = True
    for k, dept in enumerate(
        PHC_OUTSIDE_DEPARTMENTS[: ref["chantiers"]["phc_outside_convergence_territories"]], 1
    ):
        chantiers.append(
            {
                "id": len(chantiers) + 1,
                "code": f"phc-hors-{k:02d}",
                "name": f"ACI PHC {dept} ({k})",
                "territory_id": None,
                "department": dept,
                "carries_cvg": False,
                "carries_phc": True,
            }
        )
    return chantiers


def _catalogue_rows(
    tid: dict[str, int], today: date, scale: float, summary: SeedSummary
) -> tuple[list[dict[str, Any]], ...]:
    """Partners, offers, pools (capacity at scale) and their units, from the catalogue."""
    catalogue = load_catalogue(territories=set(tid))
    partners_rows: list[dict[str, Any]] = []
    offers_rows: list[dict[str, Any]] = []
    pools_rows: list[dict[str, Any]] = []
    units_rows: list[dict[str, Any]] = []
    year_start, year_end = date(today.year, 1, 1), date(today.year, 12, 31)
    for p in catalogue.partners:
        pid = len(partners_rows) + 1
        coverage = None if p.coverage == "national" else list(p.coverage)
        partners_rows.append(
            {
                "id": pid,
                "code": p.code,
                "name": p.name,
                "domain": p.domain,
                "national": p.national,
                "coverage": coverage,
                "contact_email": p.contact_email,
                "assumed": bool(getattr(p, "assumed", False)),
            }
        )
        for o in p.offers:
            oid = len(offers_rows) + 1
            offers_rows.append(
                {
                    "id": oid,
                    "partner_id": pid,
                    "code": f"{p.code}.{o.code}",
                    "name": o.name,
                    "thematiques": list(o.thematiques),
                    "slot_based": o.slot_based,
                    "accepts_direct": o.accepts_direct,
                    "rules": [r.model_dump() for r in o.rules],
                    "unit_kind": o.unit_kind,
                    "excludes": [f"{p.code}.{x}" for x in o.excludes],
                    "allocation_mechanism": "optimal",
                }
            )
            for k, spec in enumerate(o.pools, start=1):
                scope = None if spec.territories == "national" else list(spec.territories)
                capacity = max(1, round(spec.capacity * scale)) if spec.capacity else 0
                pool_id = len(pools_rows) + 1
                where = "national" if scope is None else ", ".join(scope)
                name = f"{p.name} — {o.name} ({where})"
                pools_rows.append(
                    {
                        "id": pool_id,
                        "code": f"{p.code}.{o.code}-{today.year}-{k}",
                        "offer_id": oid,
                        "name": name[:200],
                        "scope": scope,
                        "territory_id": tid[scope[0]] if scope and len(scope) == 1 else None,
                        "period_start": year_start,
                        "period_end": year_end,
                        "capacity": capacity,
                        "unit_kind": spec.unit_kind or o.unit_kind or "place",
                        "commission": spec.commission,
                        "shortlist_size": spec.shortlist,
                    }
                )
                for u in range(1, capacity + 1):
                    units_rows.append({"id": len(units_rows) + 1, "pool_id": pool_id, "unit_no": u})
                summary.pools.append((name, capacity))
    return partners_rows, offers_rows, pools_rows, units_rows


def _staff_rows(
    ref: dict[str, Any],
    tid: dict[str, int],
    chantiers: list[dict[str, Any]],
    partners_rows: list[dict[str, Any]],
    *,
    scale: float,
    password_hash: str,
    fake_name: Callable[[], tuple[str, str]],
    summary: SeedSummary,
) -> list[dict[str, Any]]:
    """Admin, national PHC team, coordination and chargé·es per territory, a CIP/ESP per
    chantier, a contact per partner (names drawn in this order: the seed depends on it)."""
    staff: list[dict[str, Any]] = []

    def add_staff(email: str, role: str, **kw: Any) -> None:
        first, last = fake_name()
        row = {
            "id": len(staff) + 1,
            "email": email,
            "display_name": f"{first} {last}",
            "role": role,
            "territory_id": None,
            "domain": None,
            "chantier_id": None,
            "partner_id": None,
            "caseload_cap": None,
            "national_queue": False,
            "password_hash": password_hash,
            "active": True,
        }
        row.update(kw)
        staff.append(row)
        summary.staff_by_role[role] += 1

    add_staff(f"admin@{MAIL_DOMAIN}", "national_admin")
    add_staff(f"equipe-phc@{MAIL_DOMAIN}", "coordinator", national_queue=True)
    default_team = ref["default_team_assumed"]
    cap = max(1, round(600 * scale))
    for t in ref["territories"]:
        team = t.get("team", default_team)
        for k in range(1, team.get("coordination", 1) + 1):
            add_staff(
                f"coordination.{t['code']}.{k}@{MAIL_DOMAIN}",
                "coordinator",
                territory_id=tid[t["code"]],
            )
        for dom in OFFICER_DOMAINS:
            for k in range(1, team.get(dom, default_team[dom]) + 1):
                add_staff(
                    f"{dom}.{t['code']}.{k}@{MAIL_DOMAIN}",
                    "officer",
                    territory_id=tid[t["code"]],
                    domain=dom,
                    caseload_cap=cap,
                )
    for c in chantiers:
        role_word = "cip" if c["carries_cvg"] else "esp"
        add_staff(
            f"{role_word}.{c['code']}@{MAIL_DOMAIN}",
            "cip",
            chantier_id=c["id"],
            territory_id=c["territory_id"],
        )
    for row in partners_rows:
        add_staff(f"contact.{row['code']}@{MAIL_DOMAIN}", "partner_contact", partner_id=row["id"])

    return staff


@dataclass
class _People:
    """Salarié·es, their identities and freins, drawn in a fixed order (the seed depends on
    it): per programme the quotas, then per person their situation, identity and freins."""

    rng: random.Random
    seed: int
    today: date
    summary: SeedSummary
    fake_name: Callable[[], tuple[str, str]]
    cvg_p: dict[str, Any]
    phc_p: dict[str, Any]
    cvg_chantiers: list[dict[str, Any]]
    phc_chantiers: list[dict[str, Any]]
    terr_code_by_id: dict[int, str]
    slugs: dict[str, list[str]]
    people: list[dict[str, Any]] = field(default_factory=list)
    identities: list[dict[str, Any]] = field(default_factory=list)
    freins: list[dict[str, Any]] = field(default_factory=list)
    # Entrants of a simulated year: ids after the existing rows, everyone entering ``today``.
    id_offset: int = 0
    frein_offset: int = 0
    entering: bool = False

    def make(self, programme: str, n: int) -> None:
        if programme == "cvg":
            many = _quota(self.rng, n, self.cvg_p["share_with_3_to_7_freins"])
            street = _quota(self.rng, n, self.cvg_p["share_with_street_history"])
            long_street = [False] * n
            no_res = _quota(self.rng, n, 0.05)  # assumed: CVG salarié·es are paid (CDDI)
            pool = self.cvg_chantiers
        else:
            many = [False] * n
            street = _quota(self.rng, n, self.phc_p["share_street_or_street_history"])
            # Half of all PHC people have over two years of street, drawn among the street ones.
            idx = [i for i in range(n) if street[i]]
            self.rng.shuffle(idx)
            long_set = set(idx[: round(self.phc_p["share_street_over_2_years"] * n)])
            long_street = [i in long_set for i in range(n)]
            no_res = _quota(self.rng, n, self.phc_p["share_without_resources_at_entry"])
            pool = self.phc_chantiers
        for i in range(n):
            self._person(programme, pool, many[i], street[i], long_street[i], no_res[i])

    def _person(
        self,
        programme: str,
        pool: list[dict[str, Any]],
        many: bool,
        street: bool,
        long_street: bool,
        no_res: bool,
    ) -> None:
        pid = self.id_offset + len(self.people) + 1
        ch = self.rng.choice(pool)
        terr = self.terr_code_by_id.get(ch["territory_id"]) if ch["territory_id"] else None
        if long_street:
            months = self.rng.randint(25, 180)
        elif street:
            months = self.rng.randint(1, 24) if programme == "cvg" else self.rng.randint(1, 24)
        else:
            months = 0
        if months:
            housing = _weighted(
                self.rng,
                [
                    ("street", 0.45 if programme == "phc" else 0.2),
                    ("emergency_shelter", 0.3),
                    ("hosted_third_party", 0.15),
                    ("integration_housing", 0.1),
                    ("housed", 0.05 if programme == "phc" else 0.15),
                ],
            )
        else:
            housing = _weighted(
                self.rng,
                [("hosted_third_party", 0.35), ("housed", 0.55), ("integration_housing", 0.10)],
            )
        household = _weighted(self.rng, [(1, 0.7), (2, 0.1), (3, 0.1), (4, 0.07), (5, 0.03)])
        children = self.rng.randint(0, household - 1) if household > 1 else 0
        if self.entering:
            entry = self.today
            # PHC: up to 12 months, often less (on to CVG, a job, or gone).
            days = (
                self.rng.randint(365, 3 * 365) if programme == "cvg" else self.rng.randint(90, 365)
            )
            end = entry + timedelta(days=days)
        elif programme == "cvg":
            entry = self.today - timedelta(days=self.rng.randint(30, 5 * 365))
            end = self.today + timedelta(days=self.rng.randint(-20, 400))
            end = max(end, entry + timedelta(days=120))
        else:
            entry = self.today - timedelta(days=self.rng.randint(7, 330))
            end = entry + timedelta(days=365)
        flags = ""
        if self.rng.random() < 0.06:
            flags = self.rng.choice(["violence", "pregnancy", "leaving_hospital"])
        self.people.append(
            {
                "id": pid,
                "reference": pseudonym(pid, self.seed),
                "external_ref": None,
                "chantier_id": ch["id"],
                "programme": programme,
                "entry_date": entry,
                "exit_date": None,
                "programme_end": end,
                "housing": housing,
                "street_months": months,
                "has_resources": not no_res,
                "household_size": household,
                "minor_children": children,
                "rqth": self.rng.random() < (0.11 if terr == "nantes" else 0.08),
                "vulnerability_flags": flags,
                "health_urgency": False,
                "version": 1,
            }
        )
        first, last = self.fake_name()
        self.identities.append(
            {
                "salarie_id": pid,
                "first_name": first,
                "last_name": last,
                "birth_date": date(
                    self.rng.randint(1960, 2004), self.rng.randint(1, 12), self.rng.randint(1, 28)
                ),
                "phone": f"06{self.rng.randint(0, 99_999_999):08d}",
                "email": f"{first.lower()}.{last.lower()}.{pid}@exemple.fr".replace(" ", "-"),
            }
        )
        self.summary.people[programme] += 1
        self._freins(programme, pid, many, housing, entry)

    def _freins(self, programme: str, pid: int, many: bool, housing: str, entry: date) -> None:
        # Freins: count, then distinct slugs by domain weights (housing first when on
        # the street).
        if programme == "cvg":
            k = self.rng.randint(3, 7) if many else self.rng.randint(1, 2)
        else:
            k = self.rng.randint(2, 6)
        w_log = 0.45 if housing in ("street", "emergency_shelter", "hosted_third_party") else 0.15
        chosen: set[str] = set()
        while len(chosen) < k:
            dom = _weighted(
                self.rng,
                [("logement", w_log), ("sante", 0.25), ("emploi", 0.3), ("transverse", 0.2)],
            )
            chosen.add(self.rng.choice(self.slugs[dom]))
        for slug in sorted(chosen):
            dom = next(d for d, s in self.slugs.items() if slug in s)
            self.freins.append(
                {
                    "id": self.frein_offset + len(self.freins) + 1,
                    "salarie_id": pid,
                    "thematique": slug,
                    "domain": dom,
                    "status": "open",
                    "identified_at": max(
                        entry, self.today - timedelta(days=self.rng.randint(0, 120))
                    ),
                }
            )
            self.summary.freins_by_domain[dom] += 1


# How people came to each programme ("orienté par"): the report gives PHC's share from
# emergency social services (65 %); the split inside and CVG's shares are assumed.
_EMERGENCY_SPLIT = (("siao_115", 0.7), ("maraude", 0.3))
_OTHER_SPLIT = {
    "phc": (("france_travail", 0.3), ("ccas", 0.4), ("other", 0.3)),
    "cvg": (("france_travail", 0.5), ("ccas", 0.25), ("other", 0.25)),
}
_CVG_EMERGENCY_SHARE = 0.2


def _draw_referred_by(
    rng: random.Random, people: list[dict[str, Any]], phc_p: dict[str, Any]
) -> None:
    """Each person's ``referred_by``, with exact quotas per programme. Its own random stream,
    so the rest of the network is drawn as before."""
    for programme, share in (
        ("phc", phc_p["share_referred_by_emergency_social_services"]),
        ("cvg", _CVG_EMERGENCY_SHARE),
    ):
        rows = [p for p in people if p["programme"] == programme]
        emergency = _quota(rng, len(rows), share)
        for row, urgent in zip(rows, emergency, strict=True):
            row["referred_by"] = _weighted(
                rng, list(_EMERGENCY_SPLIT if urgent else _OTHER_SPLIT[programme])
            )


def _write_network(
    db: Database,
    tables: list[tuple[type[m.Base], list[dict[str, Any]]]],
    *,
    details: dict[str, Any],
    now: datetime,
) -> None:
    """Every table in one transaction, in dependency order, then the audit row of the seed."""
    with db.engine.begin() as conn:
        for model, rows in tables:
            _bulk(conn, m.table_of(model), rows)
        _fix_sequences(conn)
        conn.execute(
            insert(m.table_of(m.AuditLog)),
            [
                {
                    "actor_label": "système : seed",
                    "action": "seed",
                    "object_type": "network",
                    "object_id": None,
                    "details": details,
                    "at": now,
                }
            ],
        )


# Share of each programme's people of a year who enter during it (``simulate`` draws them month
# by month): CVG from the report (1 − active / accompanied = 1 − 3,000 / 4,550), PHC assumed
# (pathways of up to 12 months: most of a year's PHC people enter during it).
ENTRANT_SHARE: dict[str, float] = {"cvg": 0.34, "phc": 0.6}


def seed_network(
    db: Database,
    *,
    clock: Clock,
    scale: float = 1.0,
    seed: int = 42,
    entrants: bool = False,
) -> SeedSummary:
    """Generate and insert the synthetic network into an empty database.

    With ``entrants``, the network is the one at the start of a year: the share of people who
    enter during it (ENTRANT_SHARE) is held back, for ``simulate`` to bring in month by month;
    the counts it must bring are stored in the seed's audit row."""
    if scale <= 0:
        raise SeedError("l'échelle doit être strictement positive")
    today = clock.today()
    with db.engine.connect() as conn:
        if conn.execute(select(func.count()).select_from(m.Territory)).scalar_one():
            raise SeedError(
                "la base contient déjà un réseau : relancez avec --reset pour le remplacer"
            )

    rng = random.Random(seed)
    ref = reference_2024()
    summary = SeedSummary()
    password_hash = PasswordHasher().hash(DEMO_PASSWORD)

    from faker.providers.person.fr_FR import Provider as FrNames

    first_names = list(FrNames.first_names_female) + list(FrNames.first_names_male)
    last_names = list(FrNames.last_names)

    def fake_name() -> tuple[str, str]:
        return rng.choice(first_names), rng.choice(last_names)

    territories, tid, dept_of = _territory_rows(ref)
    chantiers = _chantier_rows(ref, territories, tid, dept_of)
    cvg_chantiers = [c for c in chantiers if c["carries_cvg"]]
    phc_chantiers = [c for c in chantiers if c["carries_phc"]]
    summary.territories = len(territories)
    summary.chantiers = len(chantiers)
    summary.chantiers_outside = sum(1 for c in chantiers if c["territory_id"] is None)
    terr_code_by_id = {v: k for k, v in tid.items()}

    partners_rows, offers_rows, pools_rows, units_rows = _catalogue_rows(tid, today, scale, summary)

    staff = _staff_rows(
        ref,
        tid,
        chantiers,
        partners_rows,
        scale=scale,
        password_hash=password_hash,
        fake_name=fake_name,
        summary=summary,
    )

    # --- salarié·es and freins -------------------------------------------------------------
    n_cvg = round(ref["programmes"]["cvg"]["salaries_accompanied_2024"] * scale)
    n_phc = round(ref["programmes"]["phc"]["salaries_accompanied_2024"] * scale)
    cvg_p, phc_p = ref["programmes"]["cvg"], ref["programmes"]["phc"]
    slugs = {d: slugs_of_domain(d) for d in ("emploi", "sante", "logement", "transverse")}

    maker = _People(
        rng,
        seed,
        today,
        summary,
        fake_name,
        cvg_p,
        phc_p,
        cvg_chantiers,
        phc_chantiers,
        terr_code_by_id,
        slugs,
    )
    later = (
        {p: round(n * ENTRANT_SHARE[p]) for p, n in (("cvg", n_cvg), ("phc", n_phc))}
        if entrants
        else {"cvg": 0, "phc": 0}
    )
    maker.make("cvg", n_cvg - later["cvg"])
    maker.make("phc", n_phc - later["phc"])
    people, identities, freins = maker.people, maker.identities, maker.freins
    _draw_referred_by(random.Random(seed * 7 + 1), people, phc_p)

    now = clock.now()
    for rows in (people, freins, staff):
        for r in rows:
            r.setdefault("created_at", now)

    _write_network(
        db,
        [
            (m.Territory, territories),
            (m.Chantier, chantiers),
            (m.Partner, partners_rows),
            (m.Offer, offers_rows),
            (m.SlotPool, pools_rows),
            (m.SlotUnit, units_rows),
            (m.StaffUser, staff),
            (m.Salarie, people),
            (m.SalarieIdentity, identities),
            (m.Frein, freins),
        ],
        details={"scale": scale, "seed": seed, "today": today.isoformat(), "entrants": later},
        now=now,
    )
    analyze(db)
    return summary


def seed_details(db: Database) -> dict[str, Any]:
    """What the seed recorded (scale, seed, day, entrants held back), or {} for a real network."""
    with db.engine.connect() as conn:
        row = conn.execute(
            select(m.AuditLog.details)
            .where(m.AuditLog.action == "seed")
            .order_by(m.AuditLog.id.desc())
            .limit(1)
        ).scalar()
    return dict(row or {})


def add_entrants(db: Database, *, counts: dict[str, int], day: date, seed: int) -> int:
    """People who enter the programmes on ``day`` (a simulated year), drawn like the seed's —
    same quotas, chantiers, freins — with their identities and freins; returns how many."""
    if not any(counts.values()):
        return 0
    ref = reference_2024()
    rng = random.Random(seed * 1_000_003 + day.toordinal())
    from faker.providers.person.fr_FR import Provider as FrNames

    first_names = list(FrNames.first_names_female) + list(FrNames.first_names_male)
    last_names = list(FrNames.last_names)
    with db.engine.connect() as conn:
        chantiers = [
            dict(r._mapping)
            for r in conn.execute(
                select(
                    m.Chantier.id,
                    m.Chantier.territory_id,
                    m.Chantier.carries_cvg,
                    m.Chantier.carries_phc,
                ).order_by(m.Chantier.id)
            )
        ]
        terr = dict(conn.execute(select(m.Territory.id, m.Territory.code)).all())
        last_person = conn.execute(select(func.max(m.Salarie.id))).scalar() or 0
        last_frein = conn.execute(select(func.max(m.Frein.id))).scalar() or 0
    maker = _People(
        rng,
        seed,
        day,
        SeedSummary(),
        lambda: (rng.choice(first_names), rng.choice(last_names)),
        ref["programmes"]["cvg"],
        ref["programmes"]["phc"],
        [c for c in chantiers if c["carries_cvg"]],
        [c for c in chantiers if c["carries_phc"]],
        terr,
        {d: slugs_of_domain(d) for d in ("emploi", "sante", "logement", "transverse")},
        id_offset=last_person,
        frein_offset=last_frein,
        entering=True,
    )
    for programme in ("cvg", "phc"):
        maker.make(programme, counts.get(programme, 0))
    _draw_referred_by(random.Random(rng.random()), maker.people, ref["programmes"]["phc"])
    now = Clock.on_day(day, running=False).now()
    for rows in (maker.people, maker.freins):
        for r in rows:
            r.setdefault("created_at", now)
    with db.engine.begin() as conn:
        for model, rows in (
            (m.Salarie, maker.people),
            (m.SalarieIdentity, maker.identities),
            (m.Frein, maker.freins),
        ):
            _bulk(conn, m.table_of(model), rows)
        _fix_sequences(conn)
    return len(maker.people)
