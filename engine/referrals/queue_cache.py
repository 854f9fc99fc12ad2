"""The queue's totals, reused while nothing changed: a small cache in front of ``count_queue``
(and of the other reads that count a scope's referrals: the filter options, the dashboards).

Why: the totals bar counts every referral of the user's scope under the current filters. With
a million referrals that is tens of thousands of index entries for a territory (250 ms for the
national PHC queue on SQLite), paid again on every page of the queue although nothing changed
in between. Every write to a referral — intake, the transition door, an assignment, a
health-urgency flag — records a ``referral_event``, so the highest event id is a version of
the referrals that costs one index seek: totals computed at that version are reused until it
moves, or for at most ``ttl`` (deadlines pass with time, not with writes; and a transaction
that commits an older event id after a newer one is seen within ``ttl`` at the latest).

One cache per process (the app holds one), bounded in size, keyed by the user's scope and the
filters that change the count (the sort does not).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.referrals.queue import (
    FilterOptions,
    QueueCounts,
    QueueFilters,
    count_queue,
    filter_options,
)
from engine.store import models as m

T = TypeVar("T")


@dataclass(frozen=True)
class _Entry:
    version: int
    at: datetime
    value: Any


def referrals_version(session: Session) -> int:
    """The highest referral event id: moves with every write to a referral."""
    return int(session.scalar(select(func.max(m.ReferralEvent.id))) or 0)


class CountCache:
    """Queue totals and filter options per (scope, filters), valid while the referrals'
    version stands."""

    def __init__(self, *, ttl: timedelta = timedelta(seconds=60), size: int = 2048) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    @staticmethod
    def scope_key(user: m.StaffUser) -> tuple[Any, ...]:
        """What a user's scope depends on: two users with the same key see the same rows."""
        return (
            user.id,
            user.role,
            user.active,
            user.territory_id,
            user.domain,
            user.chantier_id,
            user.partner_id,
            user.national_queue,
        )

    def _key(self, user: m.StaffUser, filters: QueueFilters) -> tuple[Any, ...]:
        return (*self.scope_key(user), replace(filters, sort="priority"))

    def counts(
        self, session: Session, user: m.StaffUser, filters: QueueFilters, *, now: datetime
    ) -> QueueCounts:
        """The totals of ``count_queue``, reused while the referrals' version stands."""
        key = ("counts", *self._key(user, filters))
        return self.cached(session, key, now, lambda: count_queue(session, user, filters, now=now))

    def options(self, session: Session, user: m.StaffUser, *, now: datetime) -> FilterOptions:
        """The filter options of ``filter_options`` (they follow the referrals a user owns)."""
        key = ("options", *self._key(user, QueueFilters()))
        return self.cached(session, key, now, lambda: filter_options(session, user))

    def cached(
        self, session: Session, key: tuple[Any, ...], now: datetime, compute: Callable[[], T]
    ) -> T:
        """``compute()``'s value for ``key``, reused while the referrals' version stands and
        for at most ``ttl``. The value must be plain data (no ORM instance: it outlives the
        session), and ``key`` must hold everything it depends on but the referrals and time."""
        version = referrals_version(session)
        with self._lock:
            entry = self._entries.get(key)
            if (
                entry is not None
                and entry.version == version
                and entry.at <= now < entry.at + self.ttl
            ):
                self._entries.move_to_end(key)
                self.hits += 1
                return cast(T, entry.value)
        value = compute()
        with self._lock:
            self.misses += 1
            self._entries[key] = _Entry(version=version, at=now, value=value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value
