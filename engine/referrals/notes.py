"""The notes thread on a person's case: free text between the chantier and the chargé·es.

Why a use case of its own, and not a lifecycle event: a note changes no state (the one door
is for state changes), and its readers are not the referral's readers — the chantier's
CIP/ESP, the chargé·es and the coordination who follow the person read and write it, a
partner contact never does. The body is free text about a person: it is stored here and
shown on the case page only — never mailed, never put in the outbox, never written to a log
(the audit row says that a note was written, not what it says).

A CIP/ESP may flag a note as a *demande de réorientation*: no message kind fits it, so it
is shown prominently to the orientation's owner on the case page until the orientation
moves on.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine.access.permissions import can, referral_scope
from engine.domain.clock import Clock, as_utc
from engine.domain.errors import ANONYMISED, Forbidden, NotFound, Refused
from engine.domain.lifecycle import OPEN_STATES
from engine.store import models as m

NOTE_BODY_MAX = 4000  # characters; the database repeats it as a CHECK constraint


def clean_body(body: str | None) -> str:
    """The note's text, stripped; refused (in French) when empty, too long or with a NUL."""
    if body is None or not body.strip():
        raise Refused("la note est vide : écrivez quelques mots avant d'enregistrer")
    if "\x00" in body:
        raise Refused("la note contient un caractère interdit (octet nul)")
    body = body.strip()
    if len(body) > NOTE_BODY_MAX:
        raise Refused(f"la note est trop longue : 4 000 caractères au plus ({len(body)} saisis)")
    return body


def add_note(
    session: Session,
    user: m.StaffUser,
    referral_id: int,
    body: str | None,
    *,
    clock: Clock,
    reorientation_request: bool = False,
) -> m.CaseNote:
    """Write a note on the person's case from one of their orientations, with its audit row.

    Raises NotFound when the reader may not see the orientation's notes (a partner contact
    included: nobody learns that a thread exists), Forbidden when a role may read but not do
    this (a reorientation request is the CIP/ESP's), Refused for a bad body or a request on
    an orientation that has ended. The caller's unit of work commits."""
    ref = session.get(m.Referral, referral_id)
    if ref is None or not can(user, "read_notes", ref):
        raise NotFound("orientation introuvable")
    person = session.get(m.Salarie, ref.salarie_id)
    if person is not None and person.anonymised_at is not None:
        raise Refused(ANONYMISED)  # a note is free text about the person: never on a skeleton
    if reorientation_request:
        if not can(user, "request_reorientation", ref):
            raise Forbidden("une réorientation se demande par la ou le CIP / ESP du chantier")
        if ref.state not in OPEN_STATES:
            raise Refused(
                "cette orientation est terminée : une réorientation ne peut plus être "
                "demandée, ajoutez plutôt une note"
            )
    elif not can(user, "add_note", ref):
        raise Forbidden("vous ne pouvez pas écrire de note sur cette orientation")
    body = clean_body(body)
    now = clock.now()
    note = m.CaseNote(
        salarie_id=ref.salarie_id,
        referral_id=ref.id,
        author_user_id=user.id,
        author_name=user.display_name[:200],
        at=now,
        body=body,
        reorientation_request=reorientation_request,
    )
    session.add(note)
    session.flush()
    session.add(
        m.AuditLog(
            actor_user_id=user.id,
            actor_label=user.display_name[:80],
            action="request_reorientation" if reorientation_request else "add_case_note",
            object_type="case_note",
            object_id=str(note.id),
            at=now,
            # Never the body: the audit says that a note was written, not what it says.
            details={"salarie_id": ref.salarie_id, "referral_id": ref.id, "chars": len(body)},
        )
    )
    return note


def list_notes(session: Session, user: m.StaffUser, referral: m.Referral) -> list[m.CaseNote]:
    """The person's notes this reader may see, oldest first: those written on an orientation
    of the reader's scope (a housing chargé·e does not read the notes of a health
    orientation), or on none. Empty for readers who may not read notes (partner contacts)."""
    if not can(user, "read_notes", referral):
        return []
    readable = select(m.Referral.id).where(
        m.Referral.salarie_id == referral.salarie_id, referral_scope(user)
    )
    return list(
        session.scalars(
            select(m.CaseNote)
            .where(
                m.CaseNote.salarie_id == referral.salarie_id,
                or_(m.CaseNote.referral_id.is_(None), m.CaseNote.referral_id.in_(readable)),
            )
            .order_by(m.CaseNote.at, m.CaseNote.id)
        )
    )


def pending_reorientation_requests(
    notes: list[m.CaseNote], referral: m.Referral
) -> list[m.CaseNote]:
    """Reorientation requests on this orientation that nothing answered yet: made while it is
    open and since its last state change."""
    if referral.state not in OPEN_STATES:
        return []
    since = referral.state_changed_at
    return [
        n
        for n in notes
        if n.reorientation_request
        and n.referral_id == referral.id
        and as_utc(n.at) >= as_utc(since)
    ]
