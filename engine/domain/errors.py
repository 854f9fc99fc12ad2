"""Domain errors, each with a French message shown to the user as is.

Why four classes and not builtins: a use case signals *what kind* of refusal happened, and the
web edge maps each kind to one status once (404 / 403 / 409 / 422) instead of every handler
catching ``PermissionError`` or ``ValueError`` — which Python itself raises for bugs, so a
defect would have been shown as a polite refusal.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base: the message is French, complete, and safe to show (no personal data)."""

    status = 422

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """Missing or out of the user's scope: both look the same to the user (404)."""

    status = 404


class Forbidden(DomainError):
    """In scope, but this role may not do this (403)."""

    status = 403


class Conflict(DomainError):
    """Someone else changed it first, or a concurrent run holds it (409)."""

    status = 409


class Refused(DomainError):
    """The request is understood but not acceptable: state, target, field (422)."""

    status = 422


def sentence(message: str) -> str:
    """A message as a sentence: capital first letter, final full stop."""
    text = message.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?", "»")) else text + "."


# What a use case answers when asked to add to a file anonymised by the retention.
ANONYMISED = (
    "ce dossier a été anonymisé (fin de sa durée de conservation ou effacement demandé) : "
    "rien ne peut plus y être ajouté"
)
