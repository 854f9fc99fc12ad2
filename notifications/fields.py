"""Typed, closed shapes for every value a notification template may display.

Why: an email leaves our systems for good, so it must never carry a health or
housing detail. Reviewing templates is not enough — the danger is the *data* the
engine passes in. Each context variable therefore has a field type that only
accepts a narrow shape (a pseudonymous reference, a link under our own base URL,
a count, a date, a capitalised name, a label from a closed vocabulary), and every
string is also screened against a lexicon of sensitive words. Free text cannot
reach a template.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

REFERENCE_RE = re.compile(r"^SAL-[A-Z0-9]{6}$")
# Capitalised words only (given names, "Mme Durand", "Jean-Luc", "Anne de Vries"):
# no sentence, no digit, at most four capitalised words.
_NAME_WORD = r"[A-ZÀ-Ý][\w'’.-]*"
_PARTICLE = r"(?:de|du|des|d'|d’|van|von|da|di)"
DISPLAY_NAME_RE = re.compile(rf"^{_NAME_WORD}(?: (?:{_PARTICLE} ?)?{_NAME_WORD}){{0,3}}$")
# Organisation, territory and pool display names: letters, digits and light
# punctuation, no newline, no markup.
PLACE_NAME_RE = re.compile(r"^[\w'’ .,()/&+—–-]+$")
# Path and query of a link: URL-safe characters only (signed tokens included),
# so no phrase with spaces or accents can be smuggled into a link.
URL_TAIL_RE = re.compile(r"^[A-Za-z0-9/_.~:=?&%+-]*$")
URL_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(?::\d{1,5})?(?:/[A-Za-z0-9/_.~:=?&%+-]*)?$")

# Words and phrases that betray a health condition or a housing situation.
# Compared on accent-folded, lower-cased words; multi-word entries match as
# phrases. Kept deliberately broad: a false positive only stops one email.
SENSITIVE_TERMS: tuple[str, ...] = (
    "vih",
    "sida",
    "hiv",
    "hepatite",
    "addiction",
    "addictions",
    "addictologie",
    "alcool",
    "alcoolique",
    "alcoolisme",
    "drogue",
    "drogues",
    "toxicomanie",
    "cannabis",
    "heroine",
    "cocaine",
    "methadone",
    "psychiatrie",
    "psychiatrique",
    "psychiatre",
    "psychose",
    "schizophrenie",
    "bipolaire",
    "depression",
    "suicide",
    "cancer",
    "diabete",
    "handicap",
    "mdph",
    "enceinte",
    "grossesse",
    "violence",
    "violences",
    "hopital",
    "hospitalisation",
    "hospitalise",
    "hospitalisee",
    "maladie",
    "traitement",
    "sdf",
    "sans abri",
    "sans-abri",
    "sans domicile",
    "a la rue",
    "dans la rue",
    "squat",
    "expulsion",
    "expulse",
    "expulsee",
    "115",
    "hebergement d'urgence",
    "chrs",
    "prison",
    "incarceration",
)


class ContextError(ValueError):
    """A template context is missing, has extra, or carries an unsafe value."""


def fold(text: str) -> str:
    """Lower-case and strip accents so 'Hôpital' and 'hopital' compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", fold(text).replace("'", " ").replace("’", " "))


def find_sensitive(text: str, terms: tuple[str, ...] = SENSITIVE_TERMS) -> list[str]:
    """Return the sensitive terms found in ``text`` as whole words or phrases.

    Why whole words: a signed token or a pool name must not trip on a substring
    ('chrs' inside a random token), while 'VIH' as a word must. Results are cached per
    text: bulk paths screen the same names and places thousands of times.
    """
    return list(_find_cached(text, terms))


@lru_cache(maxsize=65536)
def _find_cached(text: str, terms: tuple[str, ...]) -> tuple[str, ...]:
    padded = " " + " ".join(_words(text)) + " "
    return tuple(term for term, needle in _needles(terms) if needle in padded)


@lru_cache(maxsize=8)
def _needles(terms: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Each term as a space-delimited word sequence, computed once per lexicon."""
    pairs = ((term, " ".join(_words(term))) for term in terms)
    return tuple((term, f" {words} ") for term, words in pairs if words)


OPAQUE_SEGMENT_MIN = 32


def _readable_part(url: str) -> str:
    """The URL without its opaque segments (signed tokens), which are random characters.

    Why: a signed link's token is base64 text; cut at its punctuation it sometimes spells
    a short "word" ("…-vih-…") by pure chance. Such segments say nothing to a reader; the
    words of the path and query are still screened.
    """
    parts = re.split(r"([/?&=#])", url)
    return "".join(p for p in parts if len(p) < OPAQUE_SEGMENT_MIN)


def _check_sensitive(name: str, value: str, *, words_only: bool = False) -> None:
    hits = find_sensitive(value)
    if words_only:  # in links, numbers are record ids ("/orientations/115"), not words
        hits = [h for h in hits if not h.strip().isdigit()]
    if hits:
        raise ContextError(f"{name}: value contains sensitive terms {hits}")


@dataclass(frozen=True)
class Field:
    """Base of all field types: validates and returns the value to display."""

    def check(
        self, name: str, value: Any, *, base_url: str | None, partner_names: Collection[str] = ()
    ) -> Any:  # pragma: no cover
        raise NotImplementedError


@dataclass(frozen=True)
class Reference(Field):
    """A salarié·e's pseudonymous reference, e.g. ``SAL-7F3K2Q``."""

    def check(
        self, name: str, value: Any, *, base_url: str | None, partner_names: Collection[str] = ()
    ) -> str:
        if not isinstance(value, str) or not REFERENCE_RE.match(value):
            raise ContextError(f"{name}: expected a reference like SAL-7F3K2Q, got {value!r}")
        return value


@dataclass(frozen=True)
class DisplayName(Field):
    """A person's display name: capitalised words only, screened for sensitive terms.

    ``allow_empty``: the greeting of a partner reached only through its directory address,
    whom the mail greets by no name."""

    max_length: int = 40
    allow_empty: bool = False

    def check(
        self, name: str, value: Any, *, base_url: str | None, partner_names: Collection[str] = ()
    ) -> str:
        if self.allow_empty and value == "":
            return value
        if (
            not isinstance(value, str)
            or len(value) > self.max_length
            or not DISPLAY_NAME_RE.match(value)
        ):
            raise ContextError(f"{name}: expected a display name, got {value!r}")
        _check_sensitive(name, value)
        return value


@dataclass(frozen=True)
class PlaceName(Field):
    """An organisation, territory or slot-pool display name (one line, screened)."""

    max_length: int = 80

    def check(
        self, name: str, value: Any, *, base_url: str | None, partner_names: Collection[str] = ()
    ) -> str:
        self._check_shape(name, value)
        _check_sensitive(name, value)
        return value

    def _check_shape(self, name: str, value: Any) -> None:
        if (
            not isinstance(value, str)
            or not value.strip()
            or len(value) > self.max_length
            or not PLACE_NAME_RE.match(value)
        ):
            raise ContextError(f"{name}: expected a short display name, got {value!r}")


@dataclass(frozen=True)
class PartnerName(PlaceName):
    """The name of the partner organisation the message is addressed to.

    Why a closed vocabulary: the reader *is* that organisation, and partners name
    themselves after their field ("Addictions France", "PASS – consultation de l'hôpital"),
    so a name the caller vouches for as the directory's own (``partner_names``, read from
    the partner table by the outbox) is accepted as is;
    any other value is screened like every place name, so free text cannot slip through.
    """

    def check(
        self, name: str, value: Any, *, base_url: str | None, partner_names: Collection[str] = ()
    ) -> str:
        self._check_shape(name, value)
        if value not in partner_names:
            _check_sensitive(name, value)
        return value


@dataclass(frozen=True)
class OptionalReference(Reference):
    """A reference, or the empty string for digest items that count rather than name."""

    def check(
        self, name: str, value: Any, *, base_url: str | None, partner_names: Collection[str] = ()
    ) -> str:
        if value == "":
            return value
        return super().check(name, value, base_url=base_url)


@dataclass(frozen=True)
class Url(Field):
    """A link into Aiguillage: under ``base_url`` when given, URL-safe characters only."""

    def check(
        self, name: str, value: Any, *, base_url: str | None, partner_names: Collection[str] = ()
    ) -> str:
        if not isinstance(value, str) or not URL_RE.match(value):
            raise ContextError(f"{name}: expected an absolute http(s) URL, got {value!r}")
        if base_url is not None:
            root = base_url.rstrip("/")
            if not (value == root or value.startswith(root + "/")):
                raise ContextError(f"{name}: URL must start with {root}/, got {value!r}")
            if not URL_TAIL_RE.match(value[len(root) :]):
                raise ContextError(f"{name}: URL has unexpected characters: {value!r}")
        _check_sensitive(name, _readable_part(value), words_only=True)
        return value


@dataclass(frozen=True)
class Count(Field):
    """A non-negative integer (number of referrals, proposals…)."""

    minimum: int = 0

    def check(
        self, name: str, value: Any, *, base_url: str | None, partner_names: Collection[str] = ()
    ) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < self.minimum:
            raise ContextError(f"{name}: expected an integer >= {self.minimum}, got {value!r}")
        return value


@dataclass(frozen=True)
class Choice(Field):
    """A value from a closed set (e.g. follow-up months 3, 6, 12)."""

    allowed: frozenset[Any]

    def check(
        self, name: str, value: Any, *, base_url: str | None, partner_names: Collection[str] = ()
    ) -> Any:
        if isinstance(value, bool) or value not in self.allowed:
            raise ContextError(f"{name}: expected one of {sorted(self.allowed)}, got {value!r}")
        return value


@dataclass(frozen=True)
class Day(Field):
    """A calendar date (a ``date``, not a ``datetime``: emails show days, not times)."""

    def check(
        self, name: str, value: Any, *, base_url: str | None, partner_names: Collection[str] = ()
    ) -> date:
        if isinstance(value, datetime) or not isinstance(value, date):
            raise ContextError(f"{name}: expected a date, got {value!r}")
        return value


@dataclass(frozen=True)
class ListOf(Field):
    """A non-empty list of records, each validated against ``fields``."""

    fields: tuple[tuple[str, Field], ...]
    max_items: int = 500

    def check(
        self, name: str, value: Any, *, base_url: str | None, partner_names: Collection[str] = ()
    ) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not value or len(value) > self.max_items:
            raise ContextError(f"{name}: expected a list of 1..{self.max_items} items")
        return [
            check_record(
                f"{name}[{i}]",
                dict(self.fields),
                item,
                base_url=base_url,
                partner_names=partner_names,
            )
            for i, item in enumerate(value)
        ]


def check_record(
    where: str,
    fields: Mapping[str, Field],
    record: Any,
    *,
    base_url: str | None,
    partner_names: Collection[str] = (),
) -> dict[str, Any]:
    """Validate a mapping against exactly the declared fields (no more, no fewer)."""
    if not isinstance(record, Mapping):
        raise ContextError(f"{where}: expected a mapping, got {type(record).__name__}")
    missing = sorted(set(fields) - set(record))
    extra = sorted(set(record) - set(fields))
    if missing or extra:
        raise ContextError(f"{where}: missing variables {missing}, unexpected variables {extra}")
    return {
        key: field.check(
            f"{where}.{key}", record[key], base_url=base_url, partner_names=partner_names
        )
        for key, field in fields.items()
    }
