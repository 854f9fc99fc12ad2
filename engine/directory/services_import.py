"""``import services``: upsert a data·inclusion export as partners and offers, all or nothing.

Why here (and not in the CLI): one use case, one transaction. The file is parsed and checked
in full (``partners.data_inclusion``) before anything is written; a file with one bad row
writes nothing and returns the French report. Each service becomes a partner (named after
its structure) with one offer, so routing, the case page, the partner mail and the counted
pools treat it like a catalogue partner; its data·inclusion fields live in
``imported_service``, keyed by ``source--id``.

- Re-importing the same file changes nothing: each service's digest is compared first.
- An import replaces what the file says (name, thématiques, zone, contact...), never what
  the network added: the offer's eligibility rules, its counted pools, ``slot_based``.
- A service of a producer (``source``) present in the file but absent from it — or whose
  zone or thématiques no longer reach the network — is *withdrawn*: kept (referrals may point
  to its offer), hidden from routing, shown as withdrawn in the directory. It comes back if
  a later file lists it again. A producer absent from the whole file is left as it was (a
  file may be one producer's extract).
- Only services routing can use are stored: a thématique of the network and a zone reaching
  a territory, or the whole country; the others are counted in the report.

Bulk paths (Core ``insert`` with ``RETURNING`` in batches, ``executemany`` updates): 50,000
services are one transaction of a few seconds (``bench/bench_services.py``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from engine.domain.clock import Clock
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from partners.data_inclusion import (
    ParseResult,
    ServiceRecord,
    fold,
    format_report,
    mail_safe_name,
    parse_services,
)
from partners.data_inclusion_review import review_reasons
from partners.taxonomy import label_of

ACTOR = "système : import data·inclusion"
CHUNK = 5_000


@dataclass
class ServicesImportOutcome:
    """What one import did, as counts (no personal data: services are public)."""

    ok: bool
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    reinstated: int = 0
    withdrawn: int = 0
    outside: int = 0  # valid, but no zone reaching a territory
    off_topic: int = 0  # valid, but no thématique of the network
    to_review: int = 0  # stored and "à vérifier" today
    national: int = 0
    by_domain: Counter[str] = field(default_factory=Counter)
    report: str = ""

    def lines_fr(self) -> list[str]:
        if not self.ok:
            return ["Import refusé : aucune donnée n'a été enregistrée.", self.report]
        kept = self.created + self.updated + self.unchanged + self.reinstated
        lines = [
            "Import des services data·inclusion terminé.",
            f"Services lus : {self.read} ; retenus pour le réseau : {kept} "
            f"(dont {self.national} à portée nationale).",
            f"Créés : {self.created}, mis à jour : {self.updated}, inchangés : "
            f"{self.unchanged}, réapparus : {self.reinstated}, retirés : {self.withdrawn}.",
            f"Non retenus : {self.outside} hors des territoires, {self.off_topic} sans "
            "thématique du réseau.",
            f"À vérifier (plus de 12 mois sans mise à jour ou qualité faible) : {self.to_review}.",
        ]
        if self.by_domain:
            shown = ", ".join(
                f"{label} {self.by_domain.get(d, 0)}"
                for d, label in (
                    ("emploi", "emploi"),
                    ("sante", "santé"),
                    ("logement", "logement"),
                    ("transverse", "transverse"),
                )
            )
            lines.append(f"Par domaine principal : {shown}.")
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "reinstated": self.reinstated,
            "withdrawn": self.withdrawn,
            "outside": self.outside,
            "off_topic": self.off_topic,
            "to_review": self.to_review,
            "national": self.national,
        }


def territory_departments(session: Session) -> dict[str, list[str]]:
    """territory code -> its départements (``territory.departments``, comma separated)."""
    rows = session.execute(select(m.Territory.code, m.Territory.departments)).all()
    return {code: [d.strip() for d in (deps or "").split(",") if d.strip()] for code, deps in rows}


def import_services(
    db: Database,
    data: bytes,
    *,
    filename: str,
    clock: Clock,
    structures: bytes | None = None,
    structures_filename: str = "structures",
    actor_label: str = ACTOR,
) -> ServicesImportOutcome:
    """All-or-nothing import of a data·inclusion services export (see the module)."""
    now = clock.now()
    today = clock.today()
    with unit_of_work(db, immediate=True) as session:
        result = parse_services(
            data,
            filename=filename,
            territories=territory_departments(session),
            structures=structures,
            structures_filename=structures_filename,
        )
        if not result.ok:
            return ServicesImportOutcome(
                ok=False,
                read=result.rows_read,
                report=format_report(result, filename=filename),
            )
        outcome = _apply(session, result, now=now)
        stored = [r for r in result.records if r.in_network]
        outcome.to_review = sum(
            1 for r in stored if review_reasons(r.date_maj, r.score_qualite, today)
        )
        session.add(
            m.AuditLog(
                actor_label=actor_label,
                action="import_services",
                object_type="imported_service",
                at=now,
                details={"file": filename[:200], **outcome.as_dict()},
            )
        )
        outcome.report = format_report(result, filename=filename)
        return outcome


@dataclass(slots=True)
class _Existing:
    id: int
    partner_id: int
    offer_id: int
    digest: str
    withdrawn: bool
    source: str


def _apply(session: Session, result: ParseResult, *, now: datetime) -> ServicesImportOutcome:
    outcome = ServicesImportOutcome(ok=True, read=result.rows_read)
    S = m.ImportedService
    existing = {
        r.key: _Existing(
            r.id, r.partner_id, r.offer_id, r.digest, r.withdrawn_at is not None, r.source
        )
        for r in session.execute(
            select(S.key, S.id, S.partner_id, S.offer_id, S.digest, S.withdrawn_at, S.source)
        ).all()
    }
    new: list[tuple[ServiceRecord, str]] = []
    changed: list[tuple[_Existing, ServiceRecord, str]] = []
    in_file: set[str] = set()
    for record in result.records:
        if not record.routable:
            outcome.off_topic += 1
            continue
        if not record.in_network:
            outcome.outside += 1
            continue
        in_file.add(record.key)
        outcome.national += record.national
        outcome.by_domain[record.domain or "transverse"] += 1
        digest = record.digest()
        known = existing.get(record.key)
        if known is None:
            new.append((record, digest))
        elif known.digest == digest and not known.withdrawn:
            outcome.unchanged += 1
        else:
            changed.append((known, record, digest))
            if known.withdrawn:
                outcome.reinstated += 1
            else:
                outcome.updated += 1
    gone = [
        e
        for key, e in existing.items()
        if key not in in_file and not e.withdrawn and e.source in result.sources
    ]
    _insert(session, new, now=now)
    _update(session, changed, now=now)
    if gone:
        session.execute(
            update(m.table_of(S))
            .where(m.table_of(S).c.id == bindparam("sid"))
            .values(withdrawn_at=bindparam("at"), updated_at=bindparam("at")),
            [{"sid": e.id, "at": now} for e in gone],
        )
    outcome.created = len(new)
    outcome.withdrawn = len(gone)
    return outcome


def code_of(key: str) -> str:
    """A stable code for the partner and offer of a service (codes are 80 characters)."""
    return "di-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _partner_values(r: ServiceRecord) -> dict[str, Any]:
    return {
        "name": mail_safe_name(r.structure_name or r.nom),
        "domain": r.domain or "transverse",
        "national": False,
        "coverage": None if r.territories is None else list(r.territories),
        "contact_email": r.courriel,  # the public address only: null in the export otherwise
        "assumed": False,
    }


def _service_values(r: ServiceRecord, digest: str) -> dict[str, Any]:
    labels = " ".join(label_of(t) for t in r.routable)
    return {
        "source": r.source[:80],
        "structure_id": r.structure_id[:255],
        "structure_name": r.structure_name[:200] if r.structure_name else None,
        "date_maj": r.date_maj,
        "score_qualite": r.score_qualite,
        "territories": "*" if r.territories is None else "|" + "|".join(r.territories) + "|",
        "thematiques": "|" + "|".join(r.thematiques) + "|",
        "search_text": fold(" ".join(x for x in (r.nom, r.structure_name or "", labels) if x)),
        "details": r.details(),
        "digest": digest,
    }


def _insert(session: Session, records: list[tuple[ServiceRecord, str]], *, now: datetime) -> None:
    """Partners, offers and service rows of new services, in batches with RETURNING."""
    conn = session.connection()
    P, O, S = m.table_of(m.Partner), m.table_of(m.Offer), m.table_of(m.ImportedService)
    for i in range(0, len(records), CHUNK):
        chunk = records[i : i + CHUNK]
        partner_ids = (
            conn.execute(
                insert(P).returning(P.c.id, sort_by_parameter_order=True),
                [{"code": code_of(r.key), **_partner_values(r)} for r, _ in chunk],
            )
            .scalars()
            .all()
        )
        offer_ids = (
            conn.execute(
                insert(O).returning(O.c.id, sort_by_parameter_order=True),
                [
                    {
                        "partner_id": pid,
                        "code": code_of(r.key),
                        "name": r.nom[:200],
                        "thematiques": list(r.routable),
                        "slot_based": False,
                        "accepts_direct": False,
                        "rules": [],
                        "unit_kind": None,
                    }
                    for (r, _), pid in zip(chunk, partner_ids, strict=True)
                ],
            )
            .scalars()
            .all()
        )
        conn.execute(
            insert(S),
            [
                {
                    "key": r.key,
                    "partner_id": pid,
                    "offer_id": oid,
                    "imported_at": now,
                    "updated_at": now,
                    "withdrawn_at": None,
                    **_service_values(r, digest),
                }
                for (r, digest), pid, oid in zip(chunk, partner_ids, offer_ids, strict=True)
            ],
        )


def _update(
    session: Session, changed: list[tuple[_Existing, ServiceRecord, str]], *, now: datetime
) -> None:
    """What the file says, replaced; the offer's rules, pools and slot_based kept."""
    if not changed:
        return
    conn = session.connection()
    P, O, S = m.table_of(m.Partner), m.table_of(m.Offer), m.table_of(m.ImportedService)
    conn.execute(
        update(P)
        .where(P.c.id == bindparam("pid"))
        .values(
            name=bindparam("p_name"),
            domain=bindparam("p_domain"),
            coverage=bindparam("p_coverage"),
            contact_email=bindparam("p_email"),
        ),
        [
            {
                "pid": e.partner_id,
                "p_name": v["name"],
                "p_domain": v["domain"],
                "p_coverage": v["coverage"],
                "p_email": v["contact_email"],
            }
            for e, r, _ in changed
            for v in (_partner_values(r),)
        ],
    )
    conn.execute(
        update(O)
        .where(O.c.id == bindparam("oid"))
        .values(name=bindparam("o_name"), thematiques=bindparam("o_thematiques")),
        [
            {"oid": e.offer_id, "o_name": r.nom[:200], "o_thematiques": list(r.routable)}
            for e, r, _ in changed
        ],
    )
    columns = list(_service_values(changed[0][1], changed[0][2]))
    conn.execute(
        update(S)
        .where(S.c.id == bindparam("sid"))
        .values(
            withdrawn_at=None,
            updated_at=bindparam("s_updated_at"),
            **{c: bindparam(f"s_{c}") for c in columns},
        ),
        [
            {
                "sid": e.id,
                "s_updated_at": now,
                **{f"s_{k}": v for k, v in _service_values(r, digest).items()},
            }
            for e, r, digest in changed
        ],
    )
