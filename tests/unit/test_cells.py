"""The LWW merge laws, checked against an oracle and against the SQLite store."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from server.store import BoardRecord, SQLiteStore
from tui_collab.cells import CellMap, CellOp, grid_digest, next_clock

ops_strategy = st.lists(
    st.builds(
        CellOp,
        x=st.integers(0, 3),
        y=st.integers(0, 2),
        value=st.sampled_from(["", "a", "b", "ü", "long value"]),
        clock=st.integers(1, 6),
        client=st.sampled_from(["c-1", "c-2", "c-3"]),
        by=st.sampled_from(["alice", "bob"]),
    ),
    max_size=40,
)


def oracle(ops: list[CellOp]) -> dict[tuple[int, int], tuple[int, str, str]]:
    """Per cell, the greatest (clock, client, value) of all ops on it."""
    best: dict[tuple[int, int], tuple[int, str, str]] = {}
    for op in ops:
        key = (op.x, op.y)
        best[key] = max(best.get(key, op.stamp), op.stamp)
    return best


def stamps(cells: CellMap) -> dict[tuple[int, int], tuple[int, str, str]]:
    return {(op.x, op.y): op.stamp for op in cells}


@given(ops=ops_strategy, data=st.data())
def test_any_order_with_duplicates_gives_the_same_grid(
    ops: list[CellOp], data: st.DataObject
) -> None:
    with_duplicates = ops + data.draw(st.lists(st.sampled_from(ops), max_size=10)) if ops else []
    one = data.draw(st.permutations(with_duplicates))
    other = data.draw(st.permutations(with_duplicates))
    first, second = CellMap(one), CellMap(other)
    assert stamps(first) == stamps(second) == oracle(ops)
    assert first.digest() == second.digest()
    assert first.max_clock == second.max_clock


@given(ops=ops_strategy)
def test_applying_twice_changes_nothing(ops: list[CellOp]) -> None:
    cells = CellMap(ops)
    before = (stamps(cells), cells.digest())
    for op in ops:
        assert cells.apply(op) is False
    assert (stamps(cells), cells.digest()) == before


@given(left=ops_strategy, right=ops_strategy)
def test_merging_two_replicas_either_way_converges(left: list[CellOp], right: list[CellOp]) -> None:
    a, b = CellMap(left), CellMap(right)
    for op in right:
        a.apply(op)
    for op in left:
        b.apply(op)
    assert a.digest() == b.digest()


def test_the_value_only_breaks_a_tie() -> None:
    cells = CellMap()
    assert cells.apply(CellOp(0, 0, "b", 5, "c-1", "alice"))
    assert cells.apply(CellOp(0, 0, "a", 5, "c-2", "bob"))  # greater client wins
    assert not cells.apply(CellOp(0, 0, "z", 4, "c-9", "eve"))  # lower clock loses
    assert cells.apply(CellOp(0, 0, "c", 5, "c-2", "bob"))  # same stamp: value breaks it
    assert cells.value(0, 0) == "c"


def test_an_edit_made_after_seeing_another_wins() -> None:
    cells = CellMap([CellOp(1, 1, "first", 41, "c-zzz", "alice")])
    later = CellOp(1, 1, "second", next_clock(cells.max_clock), "c-aaa", "bob")
    assert cells.apply(later)
    assert cells.value(1, 1) == "second"


def test_since_returns_cells_changed_after_a_version() -> None:
    cells = CellMap(
        [
            CellOp(0, 0, "a", 1, "c", "u", version=1),
            CellOp(1, 0, "b", 2, "c", "u", version=2),
            CellOp(0, 0, "c", 3, "c", "u", version=3),
        ]
    )
    assert [(op.x, op.value) for op in cells.since(1)] == [(1, "b"), (0, "c")]  # by version
    assert cells.since(3) == []
    assert cells.version == 3


def test_digest_ignores_versions_and_order() -> None:
    a = [CellOp(0, 0, "a", 1, "c", "u", version=7), CellOp(1, 1, "b", 2, "c", "u", version=9)]
    b = [CellOp(1, 1, "b", 2, "c", "u", version=1), CellOp(0, 0, "a", 1, "c", "u", version=2)]
    assert grid_digest(a) == grid_digest(b)
    assert grid_digest(a) != grid_digest(a[:1])


@given(ops=ops_strategy, data=st.data())
def test_store_and_client_agree_on_every_op(ops: list[CellOp], data: st.DataObject) -> None:
    """The SQL upsert and the Python merge decide every op the same way, in any order."""
    order = data.draw(st.permutations(ops + ops[: len(ops) // 3]))

    async def run(directory: str) -> None:
        store = SQLiteStore(Path(directory))
        await store.open()
        try:
            await store.create_board(BoardRecord("core", "plan", "Plan", 4, 3, "alice"))
            client = CellMap()
            version = 0
            for op in order:
                result = await store.apply_cell_op("core", "plan", op)
                assert result.applied == client.apply(op)
                if result.applied:
                    version += 1
                assert result.version == version
            stored = await store.load_cells("core", "plan")
            assert grid_digest(stored) == client.digest()
            assert {(o.x, o.y): o.stamp for o in stored} == oracle(ops)
            assert sorted(o.version for o in stored) == sorted({o.version for o in stored})
        finally:
            await store.close()

    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(run(directory))


@given(ops=ops_strategy, data=st.data())
def test_store_agrees_when_a_whole_group_arrives_at_once(
    ops: list[CellOp], data: st.DataObject
) -> None:
    """Ops queued together are applied in one group commit, duplicates included."""
    order = data.draw(st.permutations(ops + ops[: len(ops) // 2]))

    async def run(directory: str) -> None:
        store = SQLiteStore(Path(directory))
        await store.open()
        try:
            await store.create_board(BoardRecord("core", "plan", "Plan", 4, 3, "alice"))
            commits = store.commits
            results = await asyncio.gather(
                *(store.apply_cell_op("core", "plan", op) for op in order)
            )
            if len(order) > 1:
                assert store.commits - commits < len(order)
            client = CellMap()
            version = 0
            for op, result in zip(order, results, strict=True):
                assert result.applied == client.apply(op)
                version += result.applied
                assert result.version == version
            stored = await store.load_cells("core", "plan")
            assert grid_digest(stored) == client.digest()
            assert {(o.x, o.y): o.stamp for o in stored} == oracle(ops)
            board = await store.get_board("core", "plan")
            assert board is not None
            assert board.version == version
        finally:
            await store.close()

    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(run(directory))
