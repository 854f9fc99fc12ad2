"""The synthetic network reproduces the 2024 report's figures."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from engine.domain.clock import Clock
from engine.network.seed import SeedError, seed_network
from engine.store import models as m

TODAY = date(2026, 11, 26)


def _share(n: int, total: int) -> float:
    return 100.0 * n / total


def test_scale_one_matches_the_report(sqlite_db):
    summary = seed_network(sqlite_db, scale=1, seed=42, clock=Clock.on_day(TODAY, running=False))
    assert summary.territories == 14
    with sqlite_db.sessions() as s:
        chantiers = s.scalars(select(m.Chantier)).all()
        assert sum(c.carries_cvg for c in chantiers) == 87
        assert sum(c.carries_cvg and c.carries_phc for c in chantiers) == 31
        assert sum(c.territory_id is None for c in chantiers) == 38
        people = s.scalars(select(m.Salarie)).all()
        cvg = [p for p in people if p.programme == "cvg"]
        phc = [p for p in people if p.programme == "phc"]
        assert len(cvg) == 4550 and len(phc) == 1023
        freins = dict(
            s.execute(select(m.Frein.salarie_id, func.count()).group_by(m.Frein.salarie_id)).all()
        )
        assert abs(_share(sum(3 <= freins.get(p.id, 0) <= 7 for p in cvg), len(cvg)) - 57) <= 2
        assert abs(_share(sum(p.street_months > 0 for p in cvg), len(cvg)) - 30) <= 2
        assert abs(_share(sum(p.street_months > 0 for p in phc), len(phc)) - 92) <= 2
        assert abs(_share(sum(p.street_months > 24 for p in phc), len(phc)) - 50) <= 2
        assert abs(_share(sum(not p.has_resources for p in phc), len(phc)) - 27) <= 2
        # Teams: Isère has no emploi officer; Paris has two per domain.
        isere = s.scalar(select(m.Territory.id).where(m.Territory.code == "isere"))
        paris = s.scalar(select(m.Territory.id).where(m.Territory.code == "paris"))
        officers = s.scalars(select(m.StaffUser).where(m.StaffUser.role == "officer")).all()
        assert not [o for o in officers if o.territory_id == isere and o.domain == "emploi"]
        assert len([o for o in officers if o.territory_id == paris and o.domain == "sante"]) == 2
        roles = {u.role for u in s.scalars(select(m.StaffUser)).all()}
        assert roles == {"national_admin", "coordinator", "officer", "cip", "partner_contact"}
        # Report capacities.
        caps = {p.name.split(" — ")[0]: 0 for p in s.scalars(select(m.SlotPool)).all()}
        for p in s.scalars(select(m.SlotPool)).all():
            caps[p.name.split(" — ")[0]] += p.capacity
        assert (
            caps["CDC Habitat"] == 3 and caps["CNAM / CPAM"] == 54 and caps["Bureaux du cœur"] == 11
        )
        assert caps["SIAO de la Charente (IML / ALT)"] == 13
        units = s.scalar(select(func.count()).select_from(m.SlotUnit))
        assert units == sum(p.capacity for p in s.scalars(select(m.SlotPool)).all())
        # Identities exist only in their own table.
        assert s.scalar(select(func.count()).select_from(m.SalarieIdentity)) == len(people)
        assert all(p.reference.startswith("SAL-") for p in people)


def test_seed_is_deterministic_and_refuses_a_second_network(sqlite_db):
    seed_network(sqlite_db, scale=0.05, seed=9, clock=Clock.on_day(TODAY, running=False))
    with sqlite_db.sessions() as s:
        first = s.execute(
            select(m.Salarie.reference, m.Salarie.housing, m.Salarie.street_months).order_by(
                m.Salarie.id
            )
        ).all()
        freins = s.execute(
            select(m.Frein.salarie_id, m.Frein.thematique).order_by(m.Frein.id)
        ).all()
    with pytest.raises(SeedError, match="--reset"):
        seed_network(sqlite_db, scale=0.05, seed=9, clock=Clock.on_day(TODAY, running=False))
    from engine.network.seed import reset

    reset(sqlite_db)
    seed_network(sqlite_db, scale=0.05, seed=9, clock=Clock.on_day(TODAY, running=False))
    with sqlite_db.sessions() as s:
        assert (
            s.execute(
                select(m.Salarie.reference, m.Salarie.housing, m.Salarie.street_months).order_by(
                    m.Salarie.id
                )
            ).all()
            == first
        )
        assert (
            s.execute(select(m.Frein.salarie_id, m.Frein.thematique).order_by(m.Frein.id)).all()
            == freins
        )


def test_seed_on_postgresql_keeps_sequences_usable(pg_db):
    seed_network(pg_db, scale=0.02, seed=1, clock=Clock.on_day(TODAY, running=False))
    with pg_db.sessions() as s:
        s.add(m.Territory(code="test", name="Test", kind="convergence"))
        s.commit()  # would collide with seeded ids if the sequence had not been moved
