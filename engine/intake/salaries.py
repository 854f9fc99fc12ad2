"""Import of salarié·es and their freins from a chantier's CSV export.

Why all-or-nothing: a social worker fixes a file and sends it again; a half-imported file
would leave people without their freins and make the next attempt create duplicates. The
file is parsed and checked in full (``engine.intake.csv_rows``), then written in one
transaction, and re-importing the same file changes nothing (a digest per person).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.clock import Clock
from engine.domain.pseudonyms import random_reference
from engine.intake.csv_rows import ImportError_, SalarieRow, format_report, parse_salaries_csv
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from matching.rules import RoutingRules, load_rules


@dataclass
class ImportOutcome:
    ok: bool
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    freins_added: int = 0
    errors: list[str] = field(default_factory=list)
    report: str = ""

    def lines_fr(self) -> list[str]:
        if not self.ok:
            return ["Import refusé : aucune donnée n'a été enregistrée.", self.report]
        return [
            "Import terminé.",
            f"Salarié·es créé·es : {self.created}, mis·es à jour : {self.updated}, "
            f"inchangé·es : {self.unchanged}.",
            f"Freins ajoutés : {self.freins_added}.",
        ]


def new_reference(session: Session) -> str:
    """A fresh random pseudonymous reference, checked unused."""
    while True:
        ref = random_reference()
        if session.scalar(select(m.Salarie.id).where(m.Salarie.reference == ref)) is None:
            return ref


def import_salaries(
    db: Database,
    data: bytes,
    *,
    clock: Clock,
    actor_label: str = "import CSV",
    rules: RoutingRules | None = None,
) -> ImportOutcome:
    """All-or-nothing import of the salarié·es CSV; dates of new freins come from ``clock``,
    their domain from the routing rules (``RoutingRules.domain_of``, the one decision)."""
    now = clock.now()
    rules = rules or load_rules()
    with unit_of_work(db, immediate=True) as session:
        chantiers = {c.code: c for c in session.scalars(select(m.Chantier)).all()}
        programmes = {
            code: frozenset(p for p, on in (("cvg", c.carries_cvg), ("phc", c.carries_phc)) if on)
            for code, c in chantiers.items()
        }
        existing = {
            s.external_ref: s
            for s in session.scalars(
                select(m.Salarie).where(m.Salarie.external_ref.is_not(None))
            ).all()
        }
        result = parse_salaries_csv(
            data,
            known_chantiers=programmes,
            existing_references={r for r in existing if r is not None},
        )
        # A reference already used by another chantier is a duplicate across files.
        for row in result.rows:
            prev = existing.get(row.reference)
            if prev is not None and prev.chantier_id != chantiers[row.chantier].id:
                result.errors.append(
                    ImportError_(
                        row.line,
                        "reference",
                        f"référence « {row.reference} » déjà utilisée par un autre chantier",
                    )
                )
        if result.errors:
            return ImportOutcome(
                ok=False, errors=[str(e) for e in result.errors], report=format_report(result)
            )
        outcome = ImportOutcome(ok=True)
        for row in result.rows:
            person = existing.get(row.reference)
            _apply_row(
                session,
                row,
                chantiers[row.chantier],
                person,
                outcome,
                rules=rules,
                now=now,
                today=clock.today(),
            )
        session.add(
            m.AuditLog(
                actor_label=f"système : {actor_label}",
                action="import_salaries",
                object_type="salarie",
                at=now,
                details={
                    "created": outcome.created,
                    "updated": outcome.updated,
                    "unchanged": outcome.unchanged,
                    "freins_added": outcome.freins_added,
                },
            )
        )
        outcome.report = format_report(result)
        return outcome


def _apply_row(
    session: Session,
    row: SalarieRow,
    chantier: m.Chantier,
    person: m.Salarie | None,
    outcome: ImportOutcome,
    *,
    rules: RoutingRules,
    now: datetime,
    today: date,
) -> None:
    digest = row.digest()
    if person is not None and person.import_digest == digest:
        outcome.unchanged += 1
        return
    fields = {
        "chantier_id": chantier.id,
        "programme": row.programme,
        "entry_date": row.entry_date,
        "exit_date": row.exit_date,
        "housing": row.housing,
        "street_months": row.street_months,
        "has_resources": row.has_resources,
        "household_size": row.household_size,
        "minor_children": row.minor_children,
        "rqth": row.rqth,
        "vulnerability_flags": "|".join(sorted(row.vulnerability_flags)),
        "import_digest": digest,
    }
    if row.referred_by is not None:
        fields["referred_by"] = row.referred_by
    fields["exit_category"] = row.exit_category if row.exit_date else None
    if person is not None and person.housing != row.housing:
        # A new situation in the file is a dated change (so housing access stays measurable).
        session.add(
            m.HousingChange(
                salarie_id=person.id,
                on=today,
                before=person.housing,
                after=row.housing,
                created_at=now,
            )
        )
    if person is None:
        person = m.Salarie(
            reference=new_reference(session), external_ref=row.reference, created_at=now, **fields
        )
        session.add(person)
        session.flush()
        outcome.created += 1
    else:
        for k, v in fields.items():
            setattr(person, k, v)
        outcome.updated += 1
    if row.identity is not None:
        ident = session.get(m.SalarieIdentity, person.id) or m.SalarieIdentity(salarie_id=person.id)
        ident.last_name, ident.first_name = row.identity.last_name, row.identity.first_name
        ident.birth_date = row.identity.birth_date
        ident.phone, ident.email = row.identity.phone or None, row.identity.email or None
        session.add(ident)
    known = set(
        session.scalars(select(m.Frein.thematique).where(m.Frein.salarie_id == person.id)).all()
    )
    for slug in row.freins:
        if slug not in known:
            session.add(
                m.Frein(
                    salarie_id=person.id,
                    thematique=slug,
                    domain=rules.domain_of(slug),
                    status="open",
                    identified_at=today,
                    created_at=now,
                )
            )
            outcome.freins_added += 1
