"""Bytes per cell: Redis (cell layouts 1 and 2) and SQLite, on a board of 10,000 cells.

    python -m bench.store_size [--cells 10000] [--value realistic|max]

Fills one board with `--cells` cells (`realistic`: words, numbers and short phrases,
about 9 characters, several clients and users; `max`: 256 four-byte characters, the
largest value the server accepts) and reports, per cell:

- Redis layout 1 (a hash per cell and a version index, as releases before layout 2
  kept them; written with that release's own script) and layout 2 (one hash per board)
  after `open` converted the same board, and layout 2 again written by `apply_cell_op`
  (whose cells also hold a call nonce): `MEMORY USAGE` of the board's cell keys summed,
  and the growth of `INFO memory`'s used_memory;
- SQLite: the growth of the database file (after a WAL checkpoint) for the same ops.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import tempfile
from pathlib import Path

from redis.asyncio import Redis

from bench.common import machine
from server.store import BoardRecord, RedisStore, SQLiteStore
from server.store.sqlite import DB_FILE
from tests.support.redis_legacy import write_legacy_cells
from tests.support.redis_server import RedisServer
from tui_collab.cells import CellOp

WORDS = [
    "todo",
    "done",
    "ok",
    "yes",
    "no",
    "alice",
    "bob",
    "carol",
    "review",
    "ship",
    "blocked",
    "42",
    "3.14",
    "1,200",
    "€15",
    "Q3",
    "plan",
    "notes",
    "call",
    "Monday",
    "fix",
    "login",
    "bug",
    "design",
    "API",
    "tests",
    "deploy",
]


def make_ops(cells: int, kind: str, seed: int = 7) -> list[CellOp]:
    rng = random.Random(seed)
    side = max(1, int(cells**0.5 + 0.999))
    clients = [f"c-{rng.getrandbits(64):016x}" for _ in range(8)]
    users = ["alice", "bob", "carol", "dmitri", "eve-ops", "frank"]
    ops = []
    for n in range(cells):
        if kind == "max":
            value = "".join(chr(0x1F600 + rng.randrange(64)) for _ in range(256))
        else:
            value = " ".join(rng.choice(WORDS) for _ in range(rng.choice((1, 1, 1, 2, 3))))
        ops.append(
            CellOp(n % side, n // side, value, n + 1, rng.choice(clients), rng.choice(users))
        )
    return ops


async def used_memory(raw: Redis) -> int:
    info = await raw.info("memory")
    return int(info["used_memory"])


async def keys_usage(raw: Redis, pattern: str) -> tuple[int, int]:
    """(keys, bytes) of every key matching `pattern`, by MEMORY USAGE with all samples."""
    keys = [key async for key in raw.scan_iter(match=pattern, count=1000)]
    async with raw.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.memory_usage(key, samples=0)
        sizes = await pipe.execute()
    return len(keys), sum(int(size or 0) for size in sizes)


async def redis_sizes(ops: list[CellOp], directory: Path) -> list[tuple[str, int, int, int]]:
    server = RedisServer(directory / "redis").start()
    rows = []
    try:
        raw = Redis.from_url(server.url, decode_responses=True)
        board = BoardRecord("core", "legacy", "Legacy", 1000, 1000, "alice")
        store = RedisStore(server.url)
        await store.open()
        await store.create_board(board)
        await store.close()
        await raw.delete("tc:layout")
        before = await used_memory(raw)
        await write_legacy_cells(raw, "tc:", "core", "legacy", ops)
        count, usage = await keys_usage(raw, "tc:t:core:b:legacy:[cv]*")
        rows.append(
            (
                "Redis layout 1 (hash per cell + index)",
                count,
                usage,
                await used_memory(raw) - before,
            )
        )

        store = RedisStore(server.url)
        await store.open()  # converts the board to layout 2
        after = await used_memory(raw)
        count, usage = await keys_usage(raw, "tc:t:core:b:legacy:[cv]*")
        rows.append(("Redis layout 2, converted (no nonces)", count, usage, after - before))
        assert len(await store.load_cells("core", "legacy")) == len(ops)

        fresh = BoardRecord("core", "fresh", "Fresh", 1000, 1000, "alice")
        await store.create_board(fresh)
        start = await used_memory(raw)
        for chunk in range(0, len(ops), 500):
            await asyncio.gather(
                *(store.apply_cell_op("core", "fresh", op) for op in ops[chunk : chunk + 500])
            )
        count, usage = await keys_usage(raw, "tc:t:core:b:fresh:[cv]*")
        rows.append(
            ("Redis layout 2, by apply_cell_op", count, usage, await used_memory(raw) - start)
        )
        await store.close()
        await raw.aclose()
    finally:
        server.stop()
    return rows


async def sqlite_size(ops: list[CellOp], directory: Path) -> int:
    data = directory / "sqlite"
    store = SQLiteStore(data)
    await store.open()
    await store.create_board(BoardRecord("core", "plan", "Plan", 1000, 1000, "alice"))
    await store.close()
    path = data / DB_FILE
    before = path.stat().st_size
    store = SQLiteStore(data)
    await store.open()
    for chunk in range(0, len(ops), 500):
        await asyncio.gather(
            *(store.apply_cell_op("core", "plan", op) for op in ops[chunk : chunk + 500])
        )
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size - before


async def _main(args: argparse.Namespace) -> None:
    ops = make_ops(args.cells, args.value)
    mean = sum(len(op.value.encode()) for op in ops) / len(ops)
    with tempfile.TemporaryDirectory() as tmp:
        rows = await redis_sizes(ops, Path(tmp))
        sqlite_bytes = await sqlite_size(ops, Path(tmp))
    print(
        f"# bytes per cell: {args.cells} cells, {args.value} values "
        f"(mean {mean:.1f} UTF-8 bytes); {machine()}\n"
    )
    print("| store | keys | MEMORY USAGE B/cell | used_memory growth B/cell |")
    print("|---|---:|---:|---:|")
    for label, keys, usage, growth in rows:
        print(f"| {label} | {keys} | {usage / args.cells:.0f} | {growth / args.cells:.0f} |")
    print(f"| SQLite file growth | — | {sqlite_bytes / args.cells:.0f} | — |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cells", type=int, default=10_000)
    parser.add_argument("--value", choices=("realistic", "max"), default="realistic")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
