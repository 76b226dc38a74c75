"""What refusing a bad notes update before it touches the document costs the server.

    python -m bench.notes_check [--chars 100000]

A document of `--chars` characters with 2,000 edits of history; then a keystroke
update and a 30,000-character paste made by another replica (a transaction's update,
as a client sends it). For each: reading and checking it (`check_notes_update`), Yrs
decoding it into an empty scratch document (what the server also does), and, for
comparison, the other way to check before touching the shared document: copying the
document and applying the update to the copy. Medians of many runs, in microseconds.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

from pycrdt import Doc, Text, TransactionEvent

from tui_collab.yupdate import check_notes_update

LINE = "lorem ipsum dolor sit amet, consectetur adipiscing elit\n"


def median_us(work: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    times.sort()
    return times[len(times) // 2] * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=100_000)
    args = parser.parse_args()
    doc: Doc[Any] = Doc(client_id=1)
    text = doc.get("notes", type=Text)
    text.insert(0, (LINE * (args.chars // len(LINE) + 1))[: args.chars])
    rng = random.Random(1)
    for _ in range(2_000):
        at = rng.randrange(len(text) - 5)
        if rng.random() < 0.7:
            text.insert(at, "k")
        else:
            del text[at : at + 1]
    state = doc.get_update()
    other: Doc[Any] = Doc(client_id=2)
    other.apply_update(state)
    made: list[bytes] = []

    def keep(event: TransactionEvent) -> None:
        made.append(event.update)

    other.observe(keep)
    other_text = other.get("notes", type=Text)
    other_text.insert(5_000, "x")
    other_text.insert(6_000, "y" * 30_000)
    keystroke, paste = made
    print(f"document: {len(str(text)):,} characters, {len(state):,} bytes of state")
    print("| update | bytes | check | Yrs decode (scratch) | copy the document and apply |")
    print("|---|---|---|---|---|")
    for name, update in (("keystroke", keystroke), ("30,000-char paste", paste)):

        def copy_and_apply(update: bytes = update) -> None:
            copy: Doc[Any] = Doc()
            copy.apply_update(doc.get_update())
            copy.apply_update(update)

        def check_only(update: bytes = update) -> None:
            check_notes_update(update)

        def decode_only(update: bytes = update) -> None:
            Doc().apply_update(update)

        check = median_us(check_only, 200)
        scratch = median_us(decode_only, 200)
        copied = median_us(copy_and_apply, 30)
        print(
            f"| {name} | {len(update):,} | {check:,.0f} µs | {scratch:,.0f} µs | {copied:,.0f} µs |"
        )


if __name__ == "__main__":
    main()
