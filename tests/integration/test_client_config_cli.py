"""`tui-collab config` as a person runs it: the effective settings and where each came
from, with a token's value never printed; and a bad config file stops every command
with one line naming the file and the key.

The printed text is compared with a golden file (`--snapshot-update` rewrites it; read
the diff before committing it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

SECRET_TOKEN = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.do-not-print"


class TextSnapshot(SingleFileSnapshotExtension):
    _write_mode = WriteMode.TEXT
    _file_extension = "txt"


@pytest.fixture
def text_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(TextSnapshot)


def home_env(home: Path, **variables: str) -> dict[str, str]:
    """This process's environment with HOME and the XDG dirs in `home` and no other
    TUI_COLLAB_* variable than `variables`."""
    kept = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TUI_COLLAB_", "XDG_")) and k != "HOME"
    }
    return {
        **kept,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        **variables,
    }


def tui_collab(*args: str, env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui_collab.cli", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
        **kwargs,
    )


def test_config_prints_each_setting_and_its_source(
    tmp_path: Path, text_snapshot: SnapshotAssertion
) -> None:
    config_dir = tmp_path / "config" / "tui-collab"
    config_dir.mkdir(parents=True)
    (config_dir / "config.toml").write_text(
        "# the team's server\n"
        'server = "wss://collab.example.com:9001/ws"\n'
        'user = "alice"\n'
        'team = "core"\n'
        'token_command = "pass show collab/token"\n'
        'cafile = "team-ca.pem"\n'
        'board = "plan"\n'
        'theme = "nord"\n',
        encoding="utf-8",
    )
    env = home_env(tmp_path, TUI_COLLAB_TOKEN=SECRET_TOKEN, TUI_COLLAB_NAME="Alice Ng")
    done = tui_collab("--board", "standup", "--port", "0", "config", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert SECRET_TOKEN not in done.stdout
    assert text_snapshot == done.stdout.replace(str(tmp_path), "<tmp>")


def test_config_with_no_file_shows_the_defaults(
    tmp_path: Path, text_snapshot: SnapshotAssertion
) -> None:
    env = home_env(tmp_path, TUI_COLLAB_USER_ID="alice")
    done = tui_collab("config", env=env)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "config").exists()  # looking is no reason to create it
    assert text_snapshot == done.stdout.replace(str(tmp_path), "<tmp>")


@pytest.mark.parametrize("command", [[], ["export", "plan"]])
def test_a_bad_file_stops_every_command_naming_file_and_key(
    tmp_path: Path, command: list[str]
) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text('theme = "nrod"\n', encoding="utf-8")
    done = tui_collab(*command, env=home_env(tmp_path, TUI_COLLAB_CONFIG=str(config)))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"tui-collab: {config}: theme: unknown theme 'nrod' (choose")
    assert len(done.stderr.splitlines()) == 1
