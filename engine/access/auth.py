"""Authentication use cases: password hashing, login with rate limiting, sessions, accounts.

Why here and not in the web layer: the rules (argon2 hashes, at most a few failures per
email in a window, a fresh random session token at every login, only a hash of the token in
the database) are the same for every entry point — pages, API, CLI — and are tested without
a browser. The cookie itself and the CSRF check live in ``web``.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from engine.domain.clock import Clock, as_utc
from engine.store import models as m
from engine.store.db import Database, unit_of_work

# Failures are counted per (account, IP) — so someone else's failures never lock the real
# user out from their own machine — and per IP across accounts, so one address cannot spray
# every account. Both within a sliding window.
MAX_FAILURES = 5  # per (account, IP)
MAX_FAILURES_PER_IP = 20  # per IP, all accounts
FAILURE_WINDOW = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()
# At most (cores − 1) password checks at once, at least one: a burst of logins — an attack
# or Monday 9 am — queues here instead of taking every core from the requests in flight.
_CHECKS = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) - 1))
# Verified against when the email is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("aiguillage-dummy-password")


class LoginFailed(ValueError):
    """Wrong email or password (one message for both: no account enumeration)."""

    def __init__(self) -> None:
        super().__init__("Adresse électronique ou mot de passe incorrect.")


class RateLimited(RuntimeError):
    """Too many recent failures for this account from this address, or from this address."""

    def __init__(self, *, from_ip: bool = False) -> None:
        super().__init__(
            "Trop de tentatives de connexion ont échoué depuis votre poste. "
            "Réessayez dans 15 minutes."
            if from_ip
            else "Trop de tentatives de connexion ont échoué pour cette adresse. "
            "Réessayez dans 15 minutes."
        )


class AccountError(ValueError):
    """A refused account creation (French message)."""


@dataclass(frozen=True)
class NewSession:
    """What the web layer puts in the cookie (token) and in forms (csrf_token)."""

    token: str
    csrf_token: str
    user_id: int
    expires_at: object


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _normalise_email(email: str) -> str:
    return email.strip().lower()


def recent_failures(session: Session, *, ip: str, now: datetime, email: str | None = None) -> int:
    """Failed attempts in the window from ``ip`` (for ``email`` only, when given)."""
    conds = [
        m.LoginAttempt.ip == ip,
        m.LoginAttempt.at >= now - FAILURE_WINDOW,
        m.LoginAttempt.success.is_(False),
    ]
    if email is not None:
        conds.append(m.LoginAttempt.email == email)
    return session.scalar(select(func.count()).select_from(m.LoginAttempt).where(*conds)) or 0


def login(
    db: Database,
    email: str,
    password: str,
    *,
    clock: Clock,
    ip: str = "",
    replaces: str | None = None,
) -> NewSession:
    """Check the password and open a new session; raise LoginFailed or RateLimited.

    ``replaces`` is the token of the session the browser had before, deleted so that a
    login always rotates the token (no session fixation).
    """
    email = _normalise_email(email)[:200]
    ip = ip[:64]
    now = clock.now()
    # 1. Limits and the stored hash, in a short read (no connection held while hashing).
    with unit_of_work(db) as session:
        if recent_failures(session, ip=ip, now=now) >= MAX_FAILURES_PER_IP:
            raise RateLimited(from_ip=True)
        if recent_failures(session, ip=ip, now=now, email=email) >= MAX_FAILURES:
            raise RateLimited()
        found = session.execute(
            select(m.StaffUser.id, m.StaffUser.password_hash, m.StaffUser.active).where(
                func.lower(m.StaffUser.email) == email
            )
        ).first()
    user_id, stored, active = found if found is not None else (None, None, False)
    # 2. The password check, outside any transaction (the same cost for unknown accounts).
    ok = False
    try:
        with _CHECKS:
            ok = _hasher.verify(stored or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        ok = False
    ok = ok and user_id is not None and bool(active) and bool(stored)
    # 3. The attempt, and on success a fresh session (the old one deleted: no fixation).
    with unit_of_work(db) as session:
        session.add(m.LoginAttempt(email=email, ip=ip, at=now, success=ok))
        if ok:
            assert user_id is not None and stored is not None
            if replaces:
                session.execute(
                    delete(m.WebSession).where(m.WebSession.token_hash == token_hash(replaces))
                )
            if _hasher.check_needs_rehash(stored):
                user = session.get(m.StaffUser, user_id)
                assert user is not None
                user.password_hash = _hasher.hash(password)
            token = secrets.token_urlsafe(32)
            csrf = secrets.token_urlsafe(32)
            expires = now + SESSION_LIFETIME
            session.add(
                m.WebSession(
                    token_hash=token_hash(token),
                    user_id=user_id,
                    csrf_token=csrf,
                    expires_at=expires,
                    ip=ip,
                    created_at=now,
                )
            )
            new = NewSession(token=token, csrf_token=csrf, user_id=user_id, expires_at=expires)
    if not ok:  # the failed attempt is committed before raising
        raise LoginFailed()
    return new


def logout(db: Database, token: str) -> None:
    """Delete the session: the cookie becomes worthless even if it was copied."""
    with unit_of_work(db) as session:
        session.execute(delete(m.WebSession).where(m.WebSession.token_hash == token_hash(token)))


def session_user(
    session: Session, token: str, *, now: datetime
) -> tuple[m.StaffUser, m.WebSession] | None:
    """The active user and session behind a cookie token, or None when unknown or expired."""
    if not token:
        return None
    row = session.execute(
        select(m.WebSession, m.StaffUser)
        .join(m.StaffUser, m.StaffUser.id == m.WebSession.user_id)
        .where(m.WebSession.token_hash == token_hash(token))
    ).first()
    if row is None:
        return None
    web_session, user = row
    if as_utc(web_session.expires_at) <= now or not user.active:
        return None
    return user, web_session


def create_user(
    db: Database,
    *,
    email: str,
    display_name: str,
    role: str,
    password: str,
    territory_code: str | None = None,
    domain: str | None = None,
    chantier_code: str | None = None,
    partner_code: str | None = None,
    actor_label: str = "système : ligne de commande",
    clock: Clock,
) -> int:
    """Create a staff account with an argon2 hash; raise AccountError (French) if refused."""
    email = _normalise_email(email)
    if role not in m.ROLES:
        raise AccountError(f"rôle inconnu « {role} » (attendu : {', '.join(m.ROLES)})")
    if "@" not in email:
        raise AccountError("adresse électronique invalide")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"le mot de passe doit contenir au moins {MIN_PASSWORD_LENGTH} caractères"
        )
    if domain is not None and domain not in m.DOMAINS:
        raise AccountError(f"domaine inconnu « {domain} »")
    with unit_of_work(db) as session:
        if session.scalar(select(m.StaffUser.id).where(func.lower(m.StaffUser.email) == email)):
            raise AccountError("un compte existe déjà avec cette adresse")
        territory_id = _id_of(session, m.Territory, territory_code, "territoire")
        chantier_id = _id_of(session, m.Chantier, chantier_code, "chantier")
        partner_id = _id_of(session, m.Partner, partner_code, "partenaire")
        if role == "officer" and (territory_id is None or domain is None):
            raise AccountError("un·e chargé·e de partenariats a un territoire et un domaine")
        if role == "cip" and chantier_id is None:
            raise AccountError("un compte CIP / ESP est rattaché à un chantier")
        if role == "partner_contact" and partner_id is None:
            raise AccountError("un contact partenaire est rattaché à un partenaire")
        if role == "coordinator" and territory_id is None:
            raise AccountError("un·e coordinateur·rice est rattaché·e à un territoire")
        user = m.StaffUser(
            email=email,
            display_name=display_name.strip()[:200],
            role=role,
            territory_id=territory_id,
            domain=domain,
            chantier_id=chantier_id,
            partner_id=partner_id,
            password_hash=hash_password(password),
            active=True,
            created_at=clock.now(),
        )
        session.add(user)
        session.flush()
        session.add(
            m.AuditLog(
                actor_label=actor_label,
                action="create_user",
                object_type="staff_user",
                object_id=str(user.id),
                details={"role": role},
                at=clock.now(),
            )
        )
        return user.id


def _id_of(session: Session, model: type, code: str | None, what: str) -> int | None:
    if code is None:
        return None
    found = session.scalar(select(model.id).where(model.code == code))  # type: ignore[attr-defined]
    if found is None:
        raise AccountError(f"{what} inconnu « {code} »")
    return found
