"""Benchmark runs of the two servers are taken in turn and compared pair by pair."""

from __future__ import annotations

from bench.common import Run, alternate, paired_ratio, paired_summary


def test_runs_alternate_in_mirrored_order() -> None:
    order: list[tuple[str, int]] = []

    def run(name: str, repeat: int) -> Run:
        order.append((name, repeat))
        return {"s": float(len(order))}

    runs = alternate(["relay", "ours"], 3, run)
    assert order == [
        ("relay", 0),
        ("ours", 0),
        ("ours", 1),
        ("relay", 1),
        ("relay", 2),
        ("ours", 2),
    ]
    assert [r["s"] for r in runs["relay"]] == [1.0, 4.0, 5.0]
    assert [r["s"] for r in runs["ours"]] == [2.0, 3.0, 6.0]


def test_paired_ratio_is_the_median_of_each_pairs_ratio() -> None:
    # The machine slows down between pairs; each pair is compared within itself.
    ours = [{"t": 1.5}, {"t": 3.0}, {"t": 16.0}]
    relay = [{"t": 1.0}, {"t": 2.0}, {"t": 8.0}]
    ratio, ratios = paired_ratio(ours, relay, "t")
    assert ratios == [1.5, 1.5, 2.0]
    assert ratio == 1.5
    ratio, ratios = paired_ratio([{"t": 1.0}, {"t": 4.0}, {"t": 1.2}], relay, "t")
    assert ratios == [1.0, 2.0, 0.15]
    assert ratio == 1.0


def test_paired_ratio_skips_a_pair_whose_baseline_is_zero() -> None:
    ratio, ratios = paired_ratio([{"t": 1.0}, {"t": 2.0}], [{"t": 0.0}, {"t": 1.0}], "t")
    assert ratios == [2.0]
    assert ratio == 2.0


def test_the_pairs_are_printed_with_their_median() -> None:
    ours = [{"t": 1.5}, {"t": 3.0}, {"t": 16.0}]
    relay = [{"t": 1.0}, {"t": 2.0}, {"t": 8.0}]
    assert paired_summary(ours, relay, "t") == "median 1.50x (1.50 / 1.50 / 2.00)"
