"""The storm and fan-out benchmarks run end to end at a tiny size, and what they check
holds there.

Not timed: these assert correctness the benchmarks report (every client's roster and
presence equal the server's after a join storm; no acked edit lost and every client back
on its board after a restart), never a latency.
"""

from __future__ import annotations

import pytest

from bench import common, fanout, restart_storm, storm


@pytest.fixture(autouse=True)
def no_quiet_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "QUIET_PATIENCE_S", 0.0)


def test_join_storm_rosters_equal_the_servers() -> None:
    row = storm.run_storm(True, members=4, joiners=8, calm_s=0.2, tail_s=0.2, seed=16, drain_s=0.5)
    assert row["dropped"] == 0
    assert row["roster_mismatch"] == 0
    assert row["presence_mismatch"] == 0
    assert row["tail_lost"] == 0


def test_restart_storm_loses_no_acked_edit() -> None:
    row = restart_storm.run_once(
        clients=4, processes=2, before_s=0.8, after_s=0.5, seed=16, cap_s=0.5, every_s=0.2
    )
    assert row["back"] == 4
    assert row["acked"] > 0
    assert row["lost"] == 0
    assert row["flapped"] == 0


async def test_fanout_measures_both_ways_of_sending() -> None:
    costs = await fanout.measure(peers=5, rounds=2)
    assert set(costs) == {"websockets broadcast", "Outbound.send"}
    assert all(micros > 0 for micros in costs.values())
