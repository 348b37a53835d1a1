"""Sizing a pool of workers with the M/M/c queue (Erlang C).

Requests arrive at ``rate`` per second (Poisson); each of ``c`` workers serves one at a time in
``service`` seconds on average (exponential). The wait W satisfies
``P(W > t) = C(c, a) * exp(-(c/service - rate) * t)`` with ``a = rate * service`` and C the
Erlang C probability that a request waits at all.
"""

from __future__ import annotations

import math

MAX_WORKERS = 100_000


def erlang_c(c: int, a: float) -> float:
    """Probability that a request waits, for ``c`` workers and offered load ``a`` (< c) Erlangs."""
    if a <= 0:
        return 0.0
    if a >= c:
        return 1.0
    b = 1.0  # Erlang B by its stable recursion, then C from B
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1 - rho * (1 - b))


def wait_quantile(c: int, rate: float, service: float, q: float = 0.99) -> float:
    """Seconds within which a share ``q`` of requests start being served (inf when overloaded)."""
    a = rate * service
    if a >= c:
        return math.inf
    p_wait = erlang_c(c, a)
    if p_wait <= 1 - q:
        return 0.0
    return math.log(p_wait / (1 - q)) / (c / service - rate)


def workers_needed(
    rate: float, service_mean: float, service_p99: float, p99: float | None, cap: float
) -> tuple[int, float] | None:
    """The fewest workers with utilisation <= ``cap`` and ``p99 wait + service_p99 <= p99``.

    Returns ``(workers, estimated p99)``, or None when no number of workers reaches ``p99``
    (the service time alone is too long). Adding a p99 wait to a p99 service time overstates
    the p99 of their sum a little: the estimate errs on the safe side.
    """
    if p99 is not None and service_p99 > p99:
        return None
    c = max(1, math.ceil(rate * service_mean / cap))
    while c <= MAX_WORKERS:
        estimate = wait_quantile(c, rate, service_mean) + service_p99
        if p99 is None or estimate <= p99:
            return c, estimate
        c += 1
    return None
