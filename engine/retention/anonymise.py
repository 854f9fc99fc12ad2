"""Anonymising people's files: what is deleted, blanked, coarsened — and what is kept.

Why here, once: the daily retention run and an erasure on request do exactly this, and the
tests scan every table against it. Kept is the pseudonymous skeleton the indicators read —
programme, chantier (so territory), month of entry and exit, exit category, "orienté par",
housing situation, street months in bands, resources, freins and orientations with their
domain, thématique, state, outcome and refusal code, housing and health events and
follow-ups by month. Gone: the identity row, the notes, the free text (refusal notes,
event notes, explanations, decline reasons), the routing details, the chantier's own id and
import digest, household, RQTH, vulnerability and health-urgency flags, every exact day
(first of the month instead, in UTC like the indicators' periods, so every month and year
count stays the same), and the old reference wherever a mail or an audit row kept it.

Referral states never change here (the transition door owns them); open orientations keep
their deadlines. The caller owns the transaction: every person of ``salarie_ids`` is done
entirely in it, so a crash leaves each person either untouched or fully anonymised.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Text, bindparam, cast, delete, or_, select, update
from sqlalchemy.orm import Session

from engine.domain.clock import as_utc
from engine.domain.lifecycle import TERMINAL_STATES
from engine.domain.pseudonyms import PREFIX as REFERENCE_PREFIX
from engine.store import models as m

ANONYMISED_NOTE = "(anonymisé)"
CHUNK = 5_000
SCAN_ROWS = 2_000  # rows fetched at a time when scanning the outbox and the audit log
FEW = 20  # people a scan looks for one by one (an erasure) rather than in one pass


def anonymous_reference(salarie_id: int) -> str:
    """The reference an anonymised file shows: not the old one any mail or list carried."""
    return f"{m.ANONYMOUS_PREFIX}{salarie_id}"


def month_of(day: date) -> date:
    return day.replace(day=1)


def month_of_instant(at: datetime) -> datetime:
    """Midnight UTC on the first of the instant's UTC month (the indicators' periods are UTC
    days for instants, so the instant stays in its month and year)."""
    utc = as_utc(at)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def street_band(months: int) -> int:
    """Months on the street in the bands the indicators read: none, up to 2 years, more."""
    if months <= 0:
        return 0
    return 12 if months <= 24 else 36


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def _replace(value: Any, old: dict[str, str]) -> Any:
    """``value`` (JSON) with every string that is an old reference replaced by the new one."""
    if isinstance(value, str):
        return old.get(value, value)
    if isinstance(value, list):
        return [_replace(v, old) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, old) for k, v in value.items()}
    return value


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def _audit_subject(object_type: str, object_id: str | None, details: Any) -> int | None:
    """The person an audit row is about, if any (a fact on the person, a note, a frein)."""
    if object_type == "salarie" and object_id and object_id.isdigit():
        return int(object_id)
    if isinstance(details, dict):
        sid = details.get("salarie_id")
        if isinstance(sid, int) and not isinstance(sid, bool):
            return sid
    return None


@dataclass
class Mentions:
    """Rows outside the person's own tables that name them, found once per run: mails whose
    context carries their reference, audit rows about them, allocation runs whose
    explanations name their orientations. Rows written after the scan are looked up per
    batch (``*_after``: the last id scanned)."""

    outbox: dict[str, list[int]] = field(default_factory=dict)  # reference -> row ids
    outbox_after: int = 0
    audit: dict[int, list[int]] = field(default_factory=dict)  # salarie id -> row ids
    audit_after: int = 0
    runs: dict[int, list[int]] = field(default_factory=dict)  # referral id -> run ids

    @classmethod
    def scan(cls, session: Session, references: dict[int, str]) -> Mentions:
        """Scan the outbox, the audit log and the allocation runs for ``references``
        (salarie id -> reference)."""
        out = cls()
        wanted_refs = set(references.values())
        O, A, R = m.OutboxMessage, m.AuditLog, m.AllocationRun
        out.outbox_after = int(session.scalar(select(O.id).order_by(O.id.desc()).limit(1)) or 0)
        out.audit_after = int(session.scalar(select(A.id).order_by(A.id.desc()).limit(1)) or 0)
        # A few people (an erasure): the database filters on each one; many (the daily
        # run): one pass over the rows that name anybody, filtered here.
        few = len(references) <= FEW
        context_text, details_text = cast(O.context, Text), cast(A.details, Text)
        if wanted_refs:
            named = (
                or_(*(context_text.like(f"%{ref}%") for ref in sorted(wanted_refs)))
                if few
                else context_text.like(f"%{REFERENCE_PREFIX}%")
            )
            stmt = select(O.id, O.context).where(O.id <= out.outbox_after, named)
            for row_id, context in session.execute(stmt.execution_options(yield_per=SCAN_ROWS)):
                for text in set(_strings(context)) & wanted_refs:
                    out.outbox.setdefault(text, []).append(row_id)
        wanted = set(references)
        about = (
            or_(
                (A.object_type == "salarie") & A.object_id.in_([str(i) for i in sorted(wanted)]),
                *(details_text.like(f'%"salarie_id": {i}%') for i in sorted(wanted)),
            )
            if few
            else or_(A.object_type == "salarie", details_text.like("%salarie_id%"))
        )
        stmt_a = select(A.id, A.object_type, A.object_id, A.details).where(
            A.id <= out.audit_after, about
        )
        for row_id, object_type, object_id, details in session.execute(
            stmt_a.execution_options(yield_per=SCAN_ROWS)
        ):
            sid = _audit_subject(object_type, object_id, details)
            if sid in wanted:
                out.audit.setdefault(sid, []).append(row_id)
        referrals: set[int] = set()
        ids = sorted(wanted)
        for part in _chunks(ids):
            referrals.update(
                session.scalars(select(m.Referral.id).where(m.Referral.salarie_id.in_(part)))
            )
        if referrals:
            for run_id, explanations in session.execute(
                select(R.id, R.explanations).execution_options(yield_per=1)
            ):
                for key in explanations or {}:
                    if key.isdigit() and int(key) in referrals:
                        out.runs.setdefault(int(key), []).append(run_id)
        return out


def _update_many(session: Session, model: type[m.Base], rows: list[dict[str, Any]]) -> None:
    """One executemany UPDATE by id (Core: no ORM version check, no identity map)."""
    if not rows:
        return
    table = m.table_of(model)
    columns = [k for k in rows[0] if k != "b_id"]
    values: dict[str, Any] = {c: bindparam(f"v_{c}") for c in columns}
    if "version" in table.c:
        values["version"] = table.c.version + 1
    stmt = update(table).where(table.c.id == bindparam("b_id")).values(**values)
    session.execute(stmt, [{"b_id": r["b_id"], **{f"v_{c}": r[c] for c in columns}} for r in rows])


def anonymise(
    session: Session,
    salarie_ids: Iterable[int],
    *,
    now: datetime,
    mentions: Mentions | None = None,
) -> Counter[str]:
    """Anonymise these people's files in the caller's transaction; returns counts by kind
    of row (people, identities, notes, …). People already anonymised are skipped."""
    S = m.Salarie
    counts: Counter[str] = Counter()
    wanted = sorted(set(salarie_ids))
    if not wanted:
        return counts
    people = session.execute(
        select(
            S.id, S.reference, S.entry_date, S.exit_date, S.programme_end, S.created_at,
            S.street_months,
        )
        .where(S.id.in_(wanted), S.anonymised_at.is_(None))
        .with_for_update()
    ).all()  # fmt: skip
    if not people:
        return counts
    ids = [p.id for p in people]
    old_refs = {p.id: p.reference for p in people}
    if mentions is None:
        mentions = Mentions.scan(session, old_refs)

    counts["identities"] = _delete(session, m.SalarieIdentity, m.SalarieIdentity.salarie_id, ids)
    counts["notes"] = _delete(session, m.CaseNote, m.CaseNote.salarie_id, ids)
    _pathway(session, ids, counts)
    referral_ids = _referrals(session, ids, counts)
    _allocation(session, referral_ids, mentions, counts)
    _outbox(session, old_refs, referral_ids, mentions, counts)
    _audit(session, ids, mentions, counts)

    _update_many(
        session,
        m.Salarie,
        [
            {
                "b_id": p.id,
                "reference": anonymous_reference(p.id),
                "external_ref": None,
                "import_digest": None,
                "vulnerability_flags": "",
                "health_urgency": False,
                "household_size": 1,
                "minor_children": 0,
                "rqth": False,
                "street_months": street_band(p.street_months),
                "entry_date": month_of(p.entry_date),
                "exit_date": month_of(p.exit_date) if p.exit_date else None,
                "programme_end": month_of(p.programme_end) if p.programme_end else None,
                "created_at": month_of_instant(p.created_at),
                "anonymised_at": now,
            }
            for p in people
        ],
    )
    counts["people"] = len(people)
    session.expire_all()  # ORM objects loaded before now describe the file as it was
    return counts


def _delete(session: Session, model: type[m.Base], column: Any, ids: list[int]) -> int:
    done = 0
    for part in _chunks(ids):
        result = session.execute(delete(model).where(column.in_(part)))
        done += int(getattr(result, "rowcount", 0) or 0)
    return done


def _pathway(session: Session, ids: list[int], counts: Counter[str]) -> None:
    """Freins, housing and health events, follow-ups: kept, by month."""
    F, H, E, U = m.Frein, m.HousingChange, m.HealthEvent, m.FollowUp
    freins = session.execute(
        select(F.id, F.identified_at, F.created_at).where(F.salarie_id.in_(ids))
    ).all()
    _update_many(
        session,
        F,
        [
            {
                "b_id": r.id,
                "identified_at": month_of(r.identified_at),
                "created_at": month_of_instant(r.created_at),
            }
            for r in freins
        ],
    )
    counts["freins"] = len(freins)
    housing = session.execute(select(H.id, H.on, H.created_at).where(H.salarie_id.in_(ids))).all()
    _update_many(
        session,
        H,
        [
            {"b_id": r.id, "on": month_of(r.on), "created_at": month_of_instant(r.created_at)}
            for r in housing
        ],
    )
    counts["housing_changes"] = len(housing)
    # Health events are unique per person, kind and day: two of a kind in one month become
    # one (the indicators count people with an event, not events).
    health = session.execute(
        select(E.id, E.salarie_id, E.kind, E.on, E.created_at)
        .where(E.salarie_id.in_(ids))
        .order_by(E.id)
    ).all()
    kept: dict[tuple[int, str, date], Any] = {}
    extra: list[int] = []
    for r in health:
        key = (r.salarie_id, r.kind, month_of(r.on))
        if key in kept:
            extra.append(r.id)
        else:
            kept[key] = r
    if extra:
        session.execute(delete(E).where(E.id.in_(extra)))
    _update_many(
        session,
        E,
        [
            {"b_id": r.id, "on": key[2], "created_at": month_of_instant(r.created_at)}
            for key, r in kept.items()
        ],
    )
    counts["health_events"] = len(kept)
    counts["health_events_merged"] = len(extra)
    follow = session.execute(
        select(U.id, U.answered_on, U.created_at).where(U.salarie_id.in_(ids))
    ).all()
    _update_many(
        session,
        U,
        [
            {
                "b_id": r.id,
                "answered_on": month_of(r.answered_on),
                "created_at": month_of_instant(r.created_at),
            }
            for r in follow
        ],
    )
    counts["follow_ups"] = len(follow)


def _referrals(session: Session, ids: list[int], counts: Counter[str]) -> list[int]:
    """Orientations and their events: free text and routing details gone, days by month;
    the state, domain, thématique, outcome and refusal code kept."""
    R, E = m.Referral, m.ReferralEvent
    referrals = session.execute(
        select(R.id, R.state, R.refusal_reason, R.created_at, R.state_changed_at, R.due_at)
        .where(R.salarie_id.in_(ids))
        .order_by(R.id)
    ).all()
    rows = []
    for r in referrals:
        ended = r.state in TERMINAL_STATES
        rows.append(
            {
                "b_id": r.id,
                "explanation": "",
                "priority_breakdown": [],
                "reasons": [],
                "suggestions": [],
                "refusal_note": ANONYMISED_NOTE if r.refusal_reason == "other" else None,
                "created_at": month_of_instant(r.created_at),
                # An open orientation keeps its clock: its deadlines still run.
                "state_changed_at": month_of_instant(r.state_changed_at)
                if ended
                else r.state_changed_at,
                "due_at": None if ended else r.due_at,
            }
        )
    _update_many(session, R, rows)
    referral_ids = [r.id for r in referrals]
    counts["referrals"] = len(referral_ids)
    events = 0
    for part in _chunks(referral_ids):
        found = session.execute(select(E.id, E.at).where(E.referral_id.in_(part))).all()
        _update_many(
            session,
            E,
            [{"b_id": e.id, "at": month_of_instant(e.at), "note": None} for e in found],
        )
        events += len(found)
    counts["referral_events"] = events
    return referral_ids


def _allocation(
    session: Session, referral_ids: list[int], mentions: Mentions, counts: Counter[str]
) -> None:
    """Proposals lose their explanation and decline note; runs forget the explanation of
    these orientations (the solver's figures, counts only, stay)."""
    P, R = m.AllocationProposal, m.AllocationRun
    proposals: list[int] = []
    for part in _chunks(referral_ids):
        proposals += session.scalars(select(P.id).where(P.referral_id.in_(part))).all()
    _update_many(
        session, P, [{"b_id": pid, "explanation": "", "decline_reason": None} for pid in proposals]
    )
    counts["proposals"] = len(proposals)
    by_run: dict[int, set[str]] = defaultdict(set)
    for rid in referral_ids:
        for run_id in mentions.runs.get(rid, ()):
            by_run[run_id].add(str(rid))
    for run_id, keys in sorted(by_run.items()):
        explanations = session.scalar(select(R.explanations).where(R.id == run_id)) or {}
        kept = {k: v for k, v in explanations.items() if k not in keys}
        session.execute(update(R).where(R.id == run_id).values(explanations=kept))
        counts["run_explanations"] += len(explanations) - len(kept)


def _outbox(
    session: Session,
    old_refs: dict[int, str],
    referral_ids: list[int],
    mentions: Mentions,
    counts: Counter[str],
) -> None:
    """Mails about these people (their reference in the context, or their orientation):
    the old reference replaced by the anonymous one. The keys stay, so nothing is re-sent."""
    O = m.OutboxMessage
    new_of = {ref: anonymous_reference(sid) for sid, ref in old_refs.items()}
    row_ids: set[int] = set()
    for ref in new_of:
        row_ids.update(mentions.outbox.get(ref, ()))
    # Rows written since the run's scan, and partner mails naming one of the orientations.
    later = select(O.id, O.context).where(
        O.id > mentions.outbox_after, cast(O.context, Text).like(f"%{REFERENCE_PREFIX}%")
    )
    for row_id, context in session.execute(later):
        if set(_strings(context)) & new_of.keys():
            row_ids.add(row_id)
    if "referral_id" in m.table_of(O).c:
        column = m.table_of(O).c.referral_id
        for part in _chunks(referral_ids):
            row_ids.update(session.scalars(select(O.id).where(column.in_(part))))
    changed = 0
    for part in _chunks(sorted(row_ids)):
        rows = []
        for row_id, context in session.execute(select(O.id, O.context).where(O.id.in_(part))):
            clean = _replace(context or {}, new_of)
            if clean != (context or {}):
                rows.append({"b_id": row_id, "context": clean})
        _update_many(session, O, rows)
        changed += len(rows)
    counts["mails"] = changed


def _audit(session: Session, ids: list[int], mentions: Mentions, counts: Counter[str]) -> None:
    """Audit rows about these people keep who did what and the ids; their details keep
    numbers only (no day, code or text), their instant its month."""
    A = m.AuditLog
    row_ids: set[int] = set()
    for sid in ids:
        row_ids.update(mentions.audit.get(sid, ()))
    wanted = set(ids)
    later = select(A.id, A.object_type, A.object_id, A.details).where(
        A.id > mentions.audit_after,
        or_(A.object_type == "salarie", cast(A.details, Text).like("%salarie_id%")),
    )
    for row_id, object_type, object_id, details in session.execute(later):
        if _audit_subject(object_type, object_id, details) in wanted:
            row_ids.add(row_id)
    done = 0
    for part in _chunks(sorted(row_ids)):
        rows = []
        for row_id, details, at in session.execute(
            select(A.id, A.details, A.at).where(A.id.in_(part))
        ):
            numbers = {k: v for k, v in (details or {}).items() if isinstance(v, int)}
            rows.append({"b_id": row_id, "details": numbers, "at": month_of_instant(at)})
        _update_many(session, A, rows)
        done += len(rows)
    counts["audit_rows"] = done
