"""Test oracle: a rendered email shows none of the given details.

Why, on top of ``validate_context``: the context check stops unsafe *inputs*; the
template tests plant the person's details (freins, housing, health) in every field and
check the *output* — subject, text and HTML — for them, so a template or a future field
type that leaks is caught by the suite. Production has nothing to compare against (the
relay only ever holds the pseudonymous context), hence a test helper, not a send-time step.
"""

from __future__ import annotations

import html as html_lib

from notifications.fields import fold
from notifications.render import RenderedMessage


class SensitiveContentError(AssertionError):
    """A rendered email contains a detail that must never leave the system."""


def assert_no_sensitive(rendered: RenderedMessage, forbidden: list[str]) -> None:
    """Raise ``SensitiveContentError`` if any forbidden detail appears in the email.

    Comparison is case- and accent-insensitive, whitespace-normalised, and the
    HTML part is unescaped first, so 'à la rue' is found as '&agrave; la rue' or
    'A LA RUE' too.
    """
    parts = {
        "subject": rendered.subject,
        "text": rendered.text,
        "html": html_lib.unescape(rendered.html),
    }
    normalised = {name: " ".join(fold(body).split()) for name, body in parts.items()}
    leaks = [
        (detail, name)
        for detail in forbidden
        if " ".join(fold(detail).split())
        for name, body in normalised.items()
        if " ".join(fold(detail).split()) in body
    ]
    if leaks:
        raise SensitiveContentError(f"sensitive details in the email: {leaks}")
