"""Notifications: message templates, rendering and SMTP delivery.

Why a separate package: it knows *how* to say things by email and nothing of
referrals — the engine decides what to tell whom and writes outbox rows; this
package validates the (deliberately minimal) context (``kinds``, ``fields``),
renders the French templates (``render``) and delivers them over one SMTP
connection (``smtp``). It must never import engine, matching, partners,
SQLAlchemy or Prefect. Import from the modules themselves.
"""
