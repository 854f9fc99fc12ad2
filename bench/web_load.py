"""A bounded HTTP load generator for the web bench: N sessions, each its own cookie and socket.

Why our own small loader: neither locust nor wrk is on this machine, and the sessions must
each hold their own login cookie (scope differs per role). Each client is an httpx
AsyncClient with one keep-alive connection, so 50 sessions are 50 sockets on loopback. Every
run is bounded by a duration AND a request count, and it only ever targets the base URL it
is given (the bench passes http://127.0.0.1:PORT). The loader's own CPU time is reported, as
it shares the two cores with the server.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Phase:
    """One measured run: which path each session requests, for how long, and how paced."""

    name: str
    path_of: Callable[[int], str]  # session index -> path (with query)
    expect: bytes  # a marker the 200 body must contain (else the response is an error)
    duration_s: float
    max_requests: int
    think_mean_s: float = 0.0  # exponential pause between a session's requests (0: none)


@dataclass
class PhaseResult:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    loader_cpu_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        n = len(lat) + self.errors

        def pct(p: float) -> float | None:
            if not lat:
                return None
            k = max(0, min(len(lat) - 1, int(round(p / 100 * len(lat) + 0.5)) - 1))
            return round(lat[k], 1)  # nearest rank

        return {
            "count": n,
            "ok": len(lat),
            "errors": self.errors,
            "error_samples": self.error_samples[:5],
            "p50_ms": pct(50),
            "p95_ms": pct(95),
            "p99_ms": pct(99),
            "max_ms": round(lat[-1], 1) if lat else None,
            "mean_ms": round(sum(lat) / len(lat), 1) if lat else None,
            "throughput_rps": round(len(lat) / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "elapsed_s": round(self.elapsed_s, 2),
            "loader_cpu_s": round(self.loader_cpu_s, 2),
        }


def make_clients(base_url: str, cookies: list[dict[str, str]]) -> list[httpx.AsyncClient]:
    """One client (one keep-alive socket) per session cookie jar."""
    return [
        httpx.AsyncClient(
            base_url=base_url,
            cookies=c,
            timeout=httpx.Timeout(30.0),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            follow_redirects=False,
        )
        for c in cookies
    ]


async def _session_loop(
    i: int,
    client: httpx.AsyncClient,
    phase: Phase,
    deadline: float,
    budget: list[int],
    out: PhaseResult,
    rng: random.Random,
) -> None:
    if phase.think_mean_s:
        # Desynchronise the sessions: start each one at a random point of its think time.
        await asyncio.sleep(rng.uniform(0, phase.think_mean_s))
    path = phase.path_of(i)
    while time.perf_counter() < deadline and budget[0] > 0:
        budget[0] -= 1
        t0 = time.perf_counter()
        try:
            r = await client.get(path)
            body = r.content
            dt = (time.perf_counter() - t0) * 1000
            if r.status_code == 200 and phase.expect in body:
                out.latencies_ms.append(dt)
            else:
                out.errors += 1
                out.error_samples.append(f"{r.status_code} {path[:80]}")
        except httpx.HTTPError as exc:
            out.errors += 1
            out.error_samples.append(f"{type(exc).__name__} {path[:80]}")
        if phase.think_mean_s:
            await asyncio.sleep(rng.expovariate(1 / phase.think_mean_s))


async def run_phase(clients: list[httpx.AsyncClient], phase: Phase, seed: int = 1) -> PhaseResult:
    """Run every session concurrently until the phase's duration or request budget is spent."""
    out = PhaseResult(phase.name)
    budget = [phase.max_requests]
    cpu0, t0 = time.process_time(), time.perf_counter()
    deadline = t0 + phase.duration_s
    await asyncio.gather(
        *(
            _session_loop(i, c, phase, deadline, budget, out, random.Random(seed * 1000 + i))
            for i, c in enumerate(clients)
        )
    )
    out.elapsed_s = time.perf_counter() - t0
    out.loader_cpu_s = time.process_time() - cpu0
    return out
