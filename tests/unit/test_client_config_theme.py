"""Saving the theme rewrites only the `theme` line of the person's config file, in one
atomic rename, and never writes over a file it could not read back."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from tui_collab.config import ConfigError
from tui_collab.config_theme import NEW_FILE_HEADER, save_theme, with_theme


def test_a_missing_file_and_its_dir_are_created_private(tmp_path: Path) -> None:
    config = tmp_path / "tui-collab" / "config.toml"
    assert save_theme(config, "nord") == config
    assert config.read_text(encoding="utf-8") == f'{NEW_FILE_HEADER}theme = "nord"\n'
    assert config.stat().st_mode & 0o777 == 0o600
    assert config.parent.stat().st_mode & 0o777 == 0o700
    assert os.listdir(config.parent) == ["config.toml"]  # no temporary file left


def test_the_theme_line_changes_and_nothing_else(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("board = 'plan'   # mine\n  theme='nord'  # dark\n# end\n")
    config.chmod(0o640)
    save_theme(config, "gruvbox")
    assert config.read_text() == "board = 'plan'   # mine\n  theme=\"gruvbox\"  # dark\n# end\n"
    assert config.stat().st_mode & 0o777 == 0o640  # the person's mode is kept


def test_a_file_without_a_theme_gets_one_at_the_end() -> None:
    assert with_theme('board = "plan"', "nord") == 'board = "plan"\ntheme = "nord"\n'
    assert with_theme('board = "plan"\n', "nord") == 'board = "plan"\ntheme = "nord"\n'
    # A `theme` inside a multi-line string is text, not the key: the check refuses it.
    tricky = 'name = """\ntheme = "x"\n"""\n'
    assert tomllib.loads(with_theme(tricky, "nord")) != {**tomllib.loads(tricky), "theme": "nord"}


def test_a_symlinked_file_is_written_through_the_link(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "tui-collab.toml"
    real.parent.mkdir()
    real.write_text('board = "plan"\n')
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    assert save_theme(link, "nord") == real
    assert link.is_symlink()
    assert real.read_text() == 'board = "plan"\ntheme = "nord"\n'


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('board = "a"\nboard = "b"\n', "not valid TOML"),
        ('sever = "ws://x:1/ws"\n', "unknown key 'sever'"),
        ('name = """\ntheme = "x"\n"""\n', "cannot find where to set the theme"),
    ],
)
def test_a_file_it_cannot_rewrite_safely_is_left_alone(
    tmp_path: Path, text: str, said: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=said):
        save_theme(config, "nord")
    assert config.read_text() == text


def test_a_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"cannot read config file .*: Not a directory"):
        save_theme(tmp_path / "file" / "config.toml", "nord")
