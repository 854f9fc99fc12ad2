"""Signed, expiring links for partners who act without an account.

Why signed tokens: a partner contact answers an orientation from an email; the link names
the referral and the partner, is signed with the server's secret (itsdangerous) so it cannot
be forged or edited, and expires after the partner answer delay.
"""

from __future__ import annotations

from datetime import datetime

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from engine.domain.errors import NotFound

SALT = "aiguillage.partner-answer"


class LinkError(NotFound):
    """Invalid or expired link (French message)."""


def _serializer(secret: str, now: datetime) -> URLSafeTimedSerializer:
    """itsdangerous signs and checks ages against its own wall clock; ours is the Clock's."""
    stamp = int(now.timestamp())

    class _ClockSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return stamp

    return URLSafeTimedSerializer(secret, salt=SALT, signer=_ClockSigner)


def make_partner_token(secret: str, *, referral_id: int, partner_id: int, now: datetime) -> str:
    return _serializer(secret, now).dumps({"r": referral_id, "p": partner_id})


def read_partner_token(
    secret: str, token: str, *, max_age_s: int, now: datetime
) -> tuple[int, int]:
    """(referral_id, partner_id) from a token, or LinkError."""
    try:
        data = _serializer(secret, now).loads(token, max_age=max_age_s)
    except SignatureExpired as exc:
        raise LinkError(
            "ce lien a expiré : demandez un nouveau lien à la personne qui vous a orienté"
        ) from exc
    except BadSignature as exc:
        raise LinkError("ce lien n'est pas valide") from exc
    try:
        return int(data["r"]), int(data["p"])
    except (KeyError, TypeError, ValueError) as exc:
        raise LinkError("ce lien n'est pas valide") from exc
