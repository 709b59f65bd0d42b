"""glue sync's pure parts: the wait between rounds, the health file, the kept state."""

from __future__ import annotations

from pathlib import Path

from gitops_glue.cluster.sync_state import SyncState
from gitops_glue.deploy.sync import LoopOptions, SyncResult, next_wait, update_health


def test_the_wait_doubles_per_failure_up_to_the_cap_with_jitter_around_it() -> None:
    opts = LoopOptions(interval=60, jitter=0.1, max_backoff=900)
    assert next_wait(60, 0, opts, 0.5) == 60
    assert [next_wait(60, n, opts, 0.5) for n in (1, 2, 3, 4, 5, 50)] == [
        120,
        240,
        480,
        900,
        900,
        900,
    ]
    assert next_wait(60, 0, opts, 0.0) == 54 and round(next_wait(60, 0, opts, 0.999)) == 66
    # A cap below the interval never makes rounds come faster than asked.
    assert next_wait(600, 3, LoopOptions(jitter=0, max_backoff=60), 0.5) == 600


def test_the_health_file_is_touched_when_good_and_goes_after_n_failures(tmp_path: Path) -> None:
    health = tmp_path / "probe" / "healthy"
    opts = LoopOptions(health_file=health, unhealthy_after=2)
    update_health(opts, SyncResult("dev", "up-to-date", revision="abc"), 0)
    assert health.read_text().split()[1:] == ["up-to-date", "abc"]
    failed = SyncResult("dev", "failed", revision="abc", error="boom")
    update_health(opts, failed, 1)
    assert health.exists()  # one failure is not yet unhealthy
    update_health(opts, failed, 2)
    assert not health.exists()
    update_health(opts, failed, 3)  # already gone: no error
    update_health(opts, SyncResult("dev", "applied", revision="def"), 0)
    assert health.exists()


def test_the_sync_state_reads_back_what_it_wrote() -> None:
    state = SyncState(
        branch="main",
        seen_revision="b" * 40,
        applied_revision="a" * 40,
        failing_revision="b" * 40,
        failures=3,
        alerted_revision="b" * 40,
        error="helmfile apply failed",
    )
    data = state.to_data()
    assert data["failing-revision"] == "b" * 40 and data["failures"] == "3"
    assert SyncState.from_data(data) == state
    assert SyncState.from_data({}) == SyncState() and not SyncState().failing
    assert SyncState.from_data({"failures": "x"}).failures == 0
