"""The daily retention run: notices, snapshots, anonymisation in batches, purge of the logs.

Why this order: (1) each chantier's CIP/ESP are told, in one message per person and run, how
many files will be anonymised on the day announced (at least the notice period ahead) and
how many are kept under legal hold — the same transaction marks the files as announced, so
a notice goes out exactly once per announcement; (2) the final indicator snapshots of every
year the files touch are written *before* anything is anonymised, so that the figures of
past periods stay the same; (3) announced files whose day has come are anonymised in
batches, each batch one transaction with whole people only — a crash (even SIGKILL) leaves
each person untouched or anonymised, and the next run finishes the job; (4) the logs lose
what outlived its lifetime. ``dry_run`` reads the same plan and writes nothing.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select, update

from engine.domain.clock import Clock
from engine.domain.labels import fr_number, plural
from engine.outbox.enqueue import enqueue_many
from engine.outbox.messages import Links
from engine.reporting.report import ensure_final_snapshots, years_without_final_snapshots
from engine.retention.anonymise import Mentions, anonymise
from engine.retention.files import CHUNK, FileDue, files, touched_years
from engine.retention.policy import Policy, check_settings, load_policy
from engine.retention.purge import purge
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from engine.store.settings import Settings

KIND = "retention_notice"
SYSTEM_LABEL = "système : conservation des données"
PAGE = "/dossiers/anonymisation"  # the CIP/ESP's list of the files announced


def due_page_url(settings: Settings) -> str:
    return settings.base_url.rstrip("/") + PAGE


@dataclass
class RetentionPlan:
    """What a run would do on ``today`` (ids stay in the engine; ``as_dict`` has counts)."""

    today: date
    announce_on: date  # the anonymisation day the notices of this run announce
    policy: Policy
    to_notice: dict[int, list[int]] = field(default_factory=dict)  # chantier -> people
    held: dict[int, int] = field(default_factory=dict)  # chantier -> files kept (legal hold)
    to_anonymise: list[int] = field(default_factory=list)
    touched_years: list[int] = field(default_factory=list)  # whose figures could move
    recipients: dict[int, list[tuple[int, str, str]]] = field(default_factory=dict)
    snapshot_years: list[int] = field(default_factory=list)
    purge: Counter[str] = field(default_factory=Counter)

    @property
    def noticed(self) -> int:
        return sum(len(v) for v in self.to_notice.values())

    @property
    def held_total(self) -> int:
        return sum(self.held.values())

    @property
    def messages(self) -> int:
        return sum(len(self.recipients.get(c, [])) for c, ids in self.to_notice.items() if ids)

    @property
    def without_recipient(self) -> int:
        return sum(len(ids) for c, ids in self.to_notice.items() if not self.recipients.get(c))


@dataclass
class RetentionReport:
    """What a run did (or, dry, would do): counts only — safe as a Prefect result."""

    day: str
    dry_run: bool
    announce_on: str
    notices: int = 0  # messages written (one per CIP/ESP and run)
    noticed: int = 0  # files announced
    without_recipient: int = 0  # announced in a chantier without an active CIP/ESP
    held: int = 0  # files due within the notice period but under legal hold
    anonymised: int = 0
    batches: int = 0
    snapshot_years: list[int] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # anonymised rows by kind
    purged: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "dry_run": self.dry_run,
            "announce_on": self.announce_on,
            "notices": self.notices,
            "noticed": self.noticed,
            "without_recipient": self.without_recipient,
            "held": self.held,
            "anonymised": self.anonymised,
            "batches": self.batches,
            "snapshot_years": list(self.snapshot_years),
            "rows": dict(self.rows),
            "purged": dict(self.purged),
            "seconds": round(self.seconds, 3),
        }

    def lines_fr(self) -> list[str]:
        day = date.fromisoformat(self.day)
        announce = date.fromisoformat(self.announce_on)
        dry = self.dry_run
        out = [
            f"Conservation des données au {day:%d/%m/%Y}"
            + (" — simulation : rien n'a été modifié." if dry else ".")
        ]
        verb = "à envoyer" if dry else "écrits"
        out.append(
            f"Avis aux CIP/ESP {verb} : {plural(self.notices, 'message')} pour "
            f"{plural(self.noticed, 'dossier')} qui seront anonymisés le {announce:%d/%m/%Y}"
            + (
                f" ; {plural(self.without_recipient, 'dossier')} dans un chantier sans CIP/ESP "
                "actif·ve."
                if self.without_recipient
                else "."
            )
        )
        out.append(
            f"Dossiers conservés (orientation en attente d'une place comptée ou proposition "
            f"en cours) : {self.held}."
        )
        years = ", ".join(str(y) for y in self.snapshot_years) or "aucune"
        out.append(
            "Instantanés d'indicateurs "
            + ("à écrire" if dry else "écrits")
            + f" avant l'anonymisation : {years}."
        )
        if dry:
            out.append(f"Dossiers à anonymiser aujourd'hui : {self.anonymised}.")
        else:
            r = self.rows
            out.append(
                f"Dossiers anonymisés : {fr_number(self.anonymised)} (en "
                f"{plural(self.batches, 'lot')}) ; "
                f"identités supprimées : {r.get('identities', 0)} ; notes supprimées : "
                f"{r.get('notes', 0)} ; orientations : {r.get('referrals', 0)} ; "
                f"événements : {r.get('referral_events', 0)} ; courriels : "
                f"{r.get('mails', 0)}."
            )
        p = self.purged
        out.append(
            ("Purge prévue : " if dry else "Purge : ")
            + f"{plural(p.get('access_log', 0), 'ligne')} du journal d'accès, "
            f"{plural(p.get('login_attempts', 0), 'tentative')} de connexion, "
            f"{plural(p.get('sessions', 0), 'session expirée', 'sessions expirées')}, "
            f"{plural(p.get('mails', 0), 'courriel traité vidé', 'courriels traités vidés')}."
        )
        out.append(f"Durée : {self.seconds:.1f} s.".replace(".", ",", 1))
        return out


def _recipients(session: Any) -> dict[int, list[tuple[int, str, str]]]:
    """The active CIP/ESP of each chantier: (id, name, email)."""
    U = m.StaffUser
    out: dict[int, list[tuple[int, str, str]]] = {}
    for uid, name, email, chantier in session.execute(
        select(U.id, U.display_name, U.email, U.chantier_id)
        .where(U.role == "cip", U.active.is_(True), U.chantier_id.is_not(None))
        .order_by(U.id)
    ).all():
        out.setdefault(chantier, []).append((uid, name, email))
    return out


def plan_retention(db: Database, settings: Settings, *, clock: Clock) -> RetentionPlan:
    """What a run would do today: files to announce, kept, to anonymise; years to snapshot;
    rows of the logs to purge. Reads only."""
    check_settings(settings)
    today = clock.today()
    with unit_of_work(db) as session:
        policy = load_policy(session, settings)
        announce = today + timedelta(days=policy.notice_days)
        plan = RetentionPlan(today=today, announce_on=announce, policy=policy)
        for f in files(session, policy, until=announce):
            if f.held:
                plan.held[f.chantier_id] = plan.held.get(f.chantier_id, 0) + 1
            elif f.may_be_anonymised(today):
                plan.to_anonymise.append(f.salarie_id)
            elif not f.noticed_for_current_due():
                plan.to_notice.setdefault(f.chantier_id, []).append(f.salarie_id)
        plan.recipients = _recipients(session)
        plan.purge = purge(session, policy, now=clock.now(), dry_run=True)
        plan.touched_years = sorted(touched_years(session, plan.to_anonymise, today))
    plan.snapshot_years = years_without_final_snapshots(db, plan.touched_years, today)
    return plan


def _notice_key(user_id: int, today: date, people: list[int]) -> str:
    digest = hashlib.sha256(",".join(map(str, sorted(people))).encode()).hexdigest()[:16]
    return f"{KIND}:{user_id}:{today.isoformat()}:{digest}"


def _send_notices(
    db: Database, settings: Settings, plan: RetentionPlan, clock: Clock, report: RetentionReport
) -> None:
    """One transaction per chantier: mark its files as announced and write one message per
    active CIP/ESP (count, files kept, the day) — the same transaction, so never twice."""
    links = Links(settings.base_url)
    for chantier_id, candidates in sorted(plan.to_notice.items()):
        with unit_of_work(db, immediate=True) as session:
            # Checked again in the writing transaction: a contact recorded since the plan
            # moves the due day, a new hold keeps the file.
            still = [
                f
                for f in files(session, plan.policy, until=plan.announce_on, ids=candidates)
                if not f.held
                and not f.noticed_for_current_due()
                and not f.may_be_anonymised(plan.today)
            ]
            if not still:
                continue
            people = [f.salarie_id for f in still]
            session.execute(
                update(m.Salarie)
                .where(m.Salarie.id.in_(people))
                .values(retention_notice_on=plan.today, retention_due_on=plan.announce_on)
                .execution_options(synchronize_session=False)
            )
            recipients = plan.recipients.get(chantier_id, [])
            messages = [
                {
                    "kind": KIND,
                    "key": _notice_key(uid, plan.today, people),
                    "to_address": email,
                    "recipient_user_id": uid,
                    "context": {
                        "recipient_name": name,
                        "preferences_url": links.preferences(),
                        "count": len(people),
                        "held": plan.held.get(chantier_id, 0),
                        "due_on": plan.announce_on,
                        "url": due_page_url(settings),
                    },
                }
                for uid, name, email in recipients
            ]
            report.notices += enqueue_many(
                session, messages, base_url=settings.base_url, now=clock.now()
            )
            report.noticed += len(people)
            if not recipients:
                report.without_recipient += len(people)


def _audit(session: Any, action: str, at: Any, details: dict[str, Any]) -> None:
    session.add(
        m.AuditLog(
            actor_label=SYSTEM_LABEL,
            action=action,
            object_type="retention",
            object_id=None,
            at=at,
            details=details,
        )
    )


def _anonymise_due(
    db: Database, settings: Settings, plan: RetentionPlan, clock: Clock, report: RetentionReport
) -> None:
    if not plan.to_anonymise:
        return
    with unit_of_work(db) as session:
        refs: dict[int, str] = {}
        for start in range(0, len(plan.to_anonymise), CHUNK):
            part = plan.to_anonymise[start : start + CHUNK]
            for sid, reference in session.execute(
                select(m.Salarie.id, m.Salarie.reference).where(m.Salarie.id.in_(part))
            ).all():
                refs[sid] = reference
        mentions = Mentions.scan(session, refs)
    size = settings.retention_batch_size
    rows: Counter[str] = Counter()
    for start in range(0, len(plan.to_anonymise), size):
        batch = plan.to_anonymise[start : start + size]
        with unit_of_work(db, immediate=True) as session:
            ready: list[FileDue] = [
                f for f in files(session, plan.policy, ids=batch) if f.may_be_anonymised(plan.today)
            ]
            done = anonymise(
                session, [f.salarie_id for f in ready], now=clock.now(), mentions=mentions
            )
            if done["people"]:
                _audit(session, "retention_anonymise", clock.now(), dict(done))
        rows.update(done)
        report.anonymised += done["people"]
        report.batches += 1
        if settings.retention_batch_pause_s and start + size < len(plan.to_anonymise):
            time.sleep(settings.retention_batch_pause_s)
    report.rows = {k: v for k, v in sorted(rows.items()) if k != "people"}


def run_retention(
    db: Database, settings: Settings, *, clock: Clock, dry_run: bool = False
) -> RetentionReport:
    """Notices, snapshots, anonymisation, purge (see the module docstring); ``dry_run``
    only reports what would be done. RetentionError (French) on a setting out of range."""
    started = time.perf_counter()
    check_settings(settings)
    plan = plan_retention(db, settings, clock=clock)
    report = RetentionReport(
        day=plan.today.isoformat(),
        dry_run=dry_run,
        announce_on=plan.announce_on.isoformat(),
        held=plan.held_total,
        snapshot_years=list(plan.snapshot_years),
    )
    if dry_run:
        report.notices = plan.messages
        report.noticed = plan.noticed
        report.without_recipient = plan.without_recipient
        report.anonymised = len(plan.to_anonymise)
        report.purged = dict(plan.purge)
        report.seconds = time.perf_counter() - started
        return report
    _send_notices(db, settings, plan, clock, report)
    if plan.to_anonymise:
        ensure_final_snapshots(db, plan.touched_years, clock=clock)
    _anonymise_due(db, settings, plan, clock, report)
    with unit_of_work(db, immediate=True) as session:
        report.purged = dict(purge(session, plan.policy, now=clock.now(), dry_run=False))
        report.seconds = time.perf_counter() - started
        summary = report.as_dict()
        summary.pop("dry_run")
        _audit(session, "retention_run", clock.now(), summary)
    return report
