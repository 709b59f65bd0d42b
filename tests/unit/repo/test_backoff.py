"""Back-off between push attempts after a lost race (backoff_delay)."""

from __future__ import annotations

import random

import pytest

from gitops_glue.repo.remote import BACKOFF_CAP, BACKOFF_SPREAD, backoff_delay


def _delays(attempt: int, cycle: float, base: float, n: int = 2000) -> list[float]:
    random.seed(attempt * 1000 + n)
    return [backoff_delay(attempt, cycle, base) for _ in range(n)]


@pytest.mark.parametrize("attempt", [1, 2, 3, 4])
def test_delay_is_jittered_below_an_exponential_bound(attempt: int) -> None:
    cycle = 0.01
    bound = cycle * BACKOFF_SPREAD * 2 ** (attempt - 1)
    delays = _delays(attempt, cycle, base=0.001)
    assert all(0 <= d <= bound for d in delays)
    assert max(delays) > bound * 0.9  # full jitter: the whole range is used
    assert min(delays) < bound * 0.1
    assert len(set(delays)) > len(delays) // 2  # contenders do not wait alike


def test_the_unit_is_the_measured_round_trip_but_never_below_base() -> None:
    slow = _delays(1, cycle=0.2, base=0.05)
    assert max(slow) > 0.2 * BACKOFF_SPREAD * 0.9
    fast = _delays(1, cycle=0.0, base=0.05)  # a round trip too quick to measure
    assert max(fast) <= 0.05 * BACKOFF_SPREAD and max(fast) > 0.05 * BACKOFF_SPREAD * 0.9


def test_no_single_wait_is_longer_than_the_cap() -> None:
    delays = _delays(30, cycle=1.0, base=0.05)
    assert all(d <= BACKOFF_CAP for d in delays)
    assert max(delays) > BACKOFF_CAP * 0.9
