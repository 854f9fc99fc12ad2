"""Notifications: message templates, rendering and SMTP delivery.

Why a separate package: it knows *how* to say things by email and nothing of
referrals — the engine decides what to tell whom and writes outbox rows; this
package validates the (deliberately minimal) context, renders the French
templates and delivers them over one SMTP connection. It must never import
engine, matching, partners, SQLAlchemy or Prefect.
"""

from notifications.fields import ContextError
from notifications.guard import SensitiveContentError, assert_no_sensitive
from notifications.kinds import CRITICAL_KINDS, KINDS, KindSpec, validate_context
from notifications.render import RenderedMessage, build_email, message_id_for, render
from notifications.smtp import SendOutcome, SmtpConfig, SmtpSender, classify, send_batch

__all__ = [
    "CRITICAL_KINDS",
    "KINDS",
    "ContextError",
    "KindSpec",
    "RenderedMessage",
    "SendOutcome",
    "SensitiveContentError",
    "SmtpConfig",
    "SmtpSender",
    "assert_no_sensitive",
    "build_email",
    "classify",
    "message_id_for",
    "render",
    "send_batch",
    "validate_context",
]
