"""The Redis store's Lua scripts are package files, every one of them used."""

from __future__ import annotations

from importlib import resources

from server.store import redis

SCRIPTS = (
    redis._APPLY_CELL_OPS,
    redis._MIGRATE_BOARD,
    redis._CREATE_BOARD,
    redis._UPDATE_BOARD,
    redis._SAVE_PRESENCE,
    redis._MARK_ALIVE,
    redis._START_SESSION,
    redis._END_SESSION,
)


def test_every_lua_file_is_a_resource_that_some_script_uses() -> None:
    folder = resources.files("server.store") / "lua"
    names = sorted(item.name for item in folder.iterdir() if item.name.endswith(".lua"))
    assert len(names) == 11
    for name in names:
        text = (folder / name).read_text(encoding="utf-8")
        assert text.strip()
        assert any(text in script for script in SCRIPTS), name


def test_helpers_are_defined_before_their_first_call() -> None:
    for script in SCRIPTS:
        for helper in ("bytes_lt", "int_lt", "keep_latest", "merge_op"):
            if f"{helper}(" in script:
                definition = script.find(f"local function {helper}(")
                assert definition >= 0, helper
                assert script.index(f"{helper}(") == definition + len("local function "), helper
