"""The pseudonymous reference that names a salarié·e everywhere outside the case file.

Why one owner: the seeder and the CSV import both mint references; both draw from this
alphabet (no I, O, 0, 1, so a reference read aloud on the phone is never misheard).
"""

from __future__ import annotations

import secrets

REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PREFIX = "SAL-"
LENGTH = 6
SPACE = len(REFERENCE_ALPHABET) ** LENGTH


def from_number(n: int) -> str:
    """The reference spelling the number ``n`` (0 <= n < SPACE) in the alphabet."""
    chars = []
    for _ in range(LENGTH):
        n, r = divmod(n, len(REFERENCE_ALPHABET))
        chars.append(REFERENCE_ALPHABET[r])
    return PREFIX + "".join(chars)


def random_reference() -> str:
    """A random reference; the caller checks it is unused."""
    return from_number(secrets.randbelow(SPACE))
