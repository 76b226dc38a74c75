"""Undo/redo on a shared board: only this user's edits, only where nobody changed them since."""

from __future__ import annotations

from tui_collab.undo import Change, Skipped, Step, UndoHistory, skipped_notice


class Board:
    """Cells as the app's mirror shows them: value and who wrote it."""

    def __init__(self) -> None:
        self.cells: dict[tuple[int, int], tuple[str, str]] = {}

    def write(self, edits: list[tuple[int, int, str]], by: str = "me") -> None:
        for x, y, value in edits:
            self.cells[(x, y)] = (value, by)

    def current(self, x: int, y: int) -> tuple[str, str]:
        return self.cells.get((x, y), ("", ""))

    def edit(self, history: UndoHistory, edits: list[tuple[int, int, str]]) -> None:
        step = Step.of(Change(x, y, self.current(x, y)[0], v) for x, y, v in edits)
        assert step is not None
        history.record(step)
        self.write(edits)


def test_undo_writes_the_value_before_and_redo_writes_it_again() -> None:
    board, history = Board(), UndoHistory()
    board.edit(history, [(0, 0, "a")])
    board.edit(history, [(0, 0, "b")])
    plan = history.undo(board.current)
    assert plan is not None
    assert plan.writes == [(0, 0, "a")]
    assert plan.skipped == []
    board.write(plan.writes)
    plan = history.undo(board.current)
    assert plan is not None
    assert plan.writes == [(0, 0, "")]
    board.write(plan.writes)
    assert history.undo(board.current) is None
    plan = history.redo(board.current)
    assert plan is not None
    assert plan.writes == [(0, 0, "a")]
    board.write(plan.writes)
    plan = history.redo(board.current)
    assert plan is not None
    assert plan.writes == [(0, 0, "b")]
    assert history.redo(board.current) is None


def test_a_batch_is_one_step() -> None:
    board, history = Board(), UndoHistory()
    board.write([(1, 1, "old")], by="ada")
    board.edit(history, [(x, y, "v") for x in range(3) for y in range(3)])
    plan = history.undo(board.current)
    assert plan is not None
    assert len(plan.writes) == 9
    assert (1, 1, "old") in plan.writes
    assert not history.can_undo


def test_a_cell_a_teammate_changed_since_is_left_alone() -> None:
    board, history = Board(), UndoHistory()
    board.edit(history, [(0, 0, "mine"), (1, 0, "mine")])
    board.write([(1, 0, "theirs")], by="ada")
    plan = history.undo(board.current)
    assert plan is not None
    assert plan.writes == [(0, 0, "")]
    assert plan.skipped == [Skipped(1, 0, "ada")]
    board.write(plan.writes)
    # Redo brings back only what the undo took back.
    plan = history.redo(board.current)
    assert plan is not None
    assert plan.writes == [(0, 0, "mine")]


def test_a_step_nobody_can_undo_is_used_up() -> None:
    board, history = Board(), UndoHistory()
    board.edit(history, [(0, 0, "mine")])
    board.write([(0, 0, "theirs")], by="ada")
    plan = history.undo(board.current)
    assert plan is not None
    assert plan.writes == []
    assert len(plan.skipped) == 1
    assert not history.can_undo
    assert not history.can_redo


def test_a_new_edit_clears_redo() -> None:
    board, history = Board(), UndoHistory()
    board.edit(history, [(0, 0, "a")])
    plan = history.undo(board.current)
    assert plan is not None
    board.write(plan.writes)
    assert history.can_redo
    board.edit(history, [(0, 0, "c")])
    assert not history.can_redo


def test_history_is_bounded_and_forgets_refused_steps() -> None:
    board, history = Board(), UndoHistory(limit=3)
    for n in range(5):
        board.edit(history, [(n, 0, "x")])
    undone = []
    while (plan := history.undo(board.current)) is not None:
        undone.extend(plan.writes)
    assert [x for x, _, _ in undone] == [4, 3, 2]
    step = Step.of([Change(9, 9, "", "refused")])
    assert step is not None
    history.record(step)
    history.forget(step)
    assert not history.can_undo


def test_an_edit_that_changes_nothing_is_no_step() -> None:
    assert Step.of([Change(0, 0, "same", "same")]) is None


def test_skipped_notice_names_the_teammate_or_counts() -> None:
    names = {"ada": "Ada"}.get
    one = skipped_notice([Skipped(1, 3, "ada")], lambda u: names(u) or u, "undone")
    assert one == "B4 changed by Ada since — not undone"
    many = skipped_notice([Skipped(0, 0, "ada")] * 3, lambda u: u, "redone")
    assert many == "3 cells changed by others since — not redone"
