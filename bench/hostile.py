"""What a hostile client costs the well-behaved ones: edit latency with and without it.

    python -m bench.hostile [--repeats 3] [--examples 140]

Each repeat starts a fresh server process. A well-behaved pair of clients (one edits a
cell 100 times a second, the other times each change; both in their own process) runs
alone for 6 s, then again while a hostile client sends 72 x `--examples`
hypothesis-generated frames (random and mutated JSON, deep nesting, huge numbers,
binary and oversize frames, half-sent handshakes) over 8 connections, each paced to
95 frames a second. The hostile process runs at nice 19: on a two-core machine its
own CPU would otherwise be taken from the server and the probe alike. Target: p99
under attack within 2x of p99 alone. Medians over repeats.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.common import machine, median
from tests.support.attack_run import run_attack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--examples", type=int, default=140)
    parser.add_argument(
        "--rate",
        type=int,
        default=1000,
        help="the server's per-connection rate limit (default 1000: every frame handled; "
        "100 is the server's own default)",
    )
    args = parser.parse_args()
    rows = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="tui-collab-hostile-") as tmp:
            result = run_attack(Path(tmp) / "data", args.examples, calm_s=6.0, rate=args.rate)
        assert result.calm is not None
        rows.append(
            {
                "calm_p50": result.calm["p50_ms"],
                "calm_p99": result.calm["p99_ms"],
                "attack_p50": result.under_attack["p50_ms"],
                "attack_p99": result.under_attack["p99_ms"],
                "ratio": result.under_attack["p99_ms"] / result.calm["p99_ms"],
                "missing": result.under_attack["missing"] + result.calm["missing"],
                "frames": result.findings["frames_sent"],
            }
        )
        print("run:", {k: round(v, 2) for k, v in rows[-1].items()}, flush=True)
    print(f"\n# hostile client vs a well-behaved editor, server --rate {args.rate}; {machine()}")
    print(f"# medians of {args.repeats} runs\n")
    print("| | edit p50 ms | edit p99 ms |")
    print("|---|---:|---:|")
    print(
        f"| alone | {median([r['calm_p50'] for r in rows]):.2f} | "
        f"{median([r['calm_p99'] for r in rows]):.2f} |"
    )
    print(
        f"| under attack | {median([r['attack_p50'] for r in rows]):.2f} | "
        f"{median([r['attack_p99'] for r in rows]):.2f} |"
    )
    print(
        f"\np99 ratio (median of per-run ratios): {median([r['ratio'] for r in rows]):.2f}x; "
        f"events missing: {sum(int(r['missing']) for r in rows)}"
    )


if __name__ == "__main__":
    main()
