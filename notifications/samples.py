"""Sample contexts for every message kind.

Why in the package: tests, the benchmark and the demo's mail sink all need a
valid context per kind; keeping them next to the catalogue means a new variable
is added in one place and every caller sees a failing render until it is.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from notifications.kinds import KINDS

SAMPLE_BASE_URL = "https://aiguillage.convergence-france.test"


def sample_context(kind: str, base_url: str = SAMPLE_BASE_URL) -> dict[str, Any]:
    """A valid, realistic context for ``kind``, with links under ``base_url``."""
    b = base_url.rstrip("/")
    common: dict[str, Any] = {
        "recipient_name": "Camille",
        "preferences_url": f"{b}/preferences",
    }
    specific: dict[str, dict[str, Any]] = {
        "new_referrals": {"count": 3, "url": f"{b}/file"},
        "triage_due_soon": {
            "reference": "SAL-7F3K2Q",
            "due_on": date(2025, 3, 14),
            "url": f"{b}/orientations/812",
        },
        "triage_overdue": {
            "reference": "SAL-7F3K2Q",
            "due_on": date(2025, 3, 1),
            "url": f"{b}/orientations/812",
        },
        "triage_escalation": {
            "reference": "SAL-7F3K2Q",
            "officer_name": "Karim",
            "territory": "Hauts-de-France",
            "due_on": date(2025, 3, 1),
            "url": f"{b}/orientations/812",
        },
        "partner_orientation": {
            "partner_name": "Association Relais Emploi 59",
            "reference": "SAL-7F3K2Q",
            "territory": "Hauts-de-France",
            "action_url": f"{b}/p/eyJyIjo4MTJ9.Zb3kQw.x9Q2hT",
            "expires_on": date(2025, 3, 28),
        },
        "partner_reminder": {
            "partner_name": "Association Relais Emploi 59",
            "reference": "SAL-7F3K2Q",
            "sent_on": date(2025, 3, 14),
            "action_url": f"{b}/p/eyJyIjo4MTJ9.Zb3kQw.x9Q2hT",
            "expires_on": date(2025, 3, 28),
        },
        "partner_answered": {
            "reference": "SAL-7F3K2Q",
            "partner_name": "Association Relais Emploi 59",
            "answer": "acceptée",
            "url": f"{b}/orientations/812",
        },
        "partner_digest": {
            "day": date(2025, 3, 14),
            "items": [
                {
                    "kind": "partner_orientation",
                    "label": "Nouvelle orientation à examiner",
                    "partner_name": "Association Relais Emploi 59",
                    "reference": "SAL-7F3K2Q",
                    "territory": "Hauts-de-France",
                    "action_url": f"{b}/partenaire/reponse/eyJyIjo4MTJ9.Zb3kQw.x9Q2hT",
                    "expires_on": date(2025, 3, 28),
                },
                {
                    "kind": "partner_reminder",
                    "label": "Relance : réponse attendue",
                    "partner_name": "Association Relais Emploi 59",
                    "reference": "SAL-Q2W8ZP",
                    "territory": "Hauts-de-France",
                    "action_url": f"{b}/partenaire/reponse/eyJyIjo4MTV9.Zb3kQw.k2P9aT",
                    "expires_on": date(2025, 3, 20),
                },
            ],
        },
        "allocation_ready": {
            "count": 12,
            "territory": "Occitanie",
            "url": f"{b}/allocations/42",
        },
        "slot_validated": {
            "reference": "SAL-7F3K2Q",
            "territory": "Occitanie",
            "url": f"{b}/orientations/812",
        },
        "outcome_due": {
            "reference": "SAL-7F3K2Q",
            "due_on": date(2025, 4, 1),
            "url": f"{b}/orientations/812",
        },
        "followup_due": {
            "reference": "SAL-7F3K2Q",
            "months": 6,
            "due_on": date(2025, 4, 1),
            "url": f"{b}/salaries/SAL-7F3K2Q/suivi",
        },
        "retention_notice": {
            "count": 4,
            "held": 1,
            "due_on": date(2025, 6, 30),
            "url": f"{b}/conservation",
        },
        "daily_digest": {
            "day": date(2025, 3, 14),
            "url": f"{b}/tableau-de-bord",
            "items": [
                {
                    "kind": "new_referrals",
                    "reference": "SAL-7F3K2Q",
                    "count": 1,
                    "label": "Nouvelle orientation",
                    "url": f"{b}/orientations/812",
                },
                {
                    "kind": "triage_due_soon",
                    "reference": "SAL-Q2W8ZP",
                    "count": 1,
                    "label": "Qualification à faire",
                    "url": f"{b}/orientations/815",
                },
                {
                    "kind": "new_referrals",
                    "reference": "SAL-B4N6RT",
                    "count": 1,
                    "label": "Nouvelle orientation",
                    "url": f"{b}/orientations/816",
                },
            ],
        },
    }
    if kind not in KINDS:
        raise KeyError(kind)
    return {**common, **specific[kind]}
