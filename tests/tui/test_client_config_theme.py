"""A theme picked in the command palette is saved in the config file, with the
person's other keys and comments kept, and the next start takes it from there."""

from __future__ import annotations

import functools
from pathlib import Path

from textual.command import CommandPalette

from tests.conftest import StartServer
from tests.tui.conftest import Notices, open_server, wait_for
from tui_collab.app import CollabApp
from tui_collab.cli import build_parser
from tui_collab.client import CollabClient
from tui_collab.config import settle
from tui_collab.config_theme import save_theme

BEFORE = """\
# my team's server
server = "ws://127.0.0.1:9001/ws"
theme = "gruvbox"  # for now
board = "plan"
"""


def app_saving_to(url: str, config: Path) -> CollabApp:
    """Alice's app, keeping a picked theme in `config` as the command line's does."""
    client = CollabClient(url, user="alice", team="core", name="Alice")
    return CollabApp(client, board="plan", save_theme=functools.partial(save_theme, config))


async def test_a_theme_picked_in_the_palette_is_saved_and_reloaded(
    start_server: StartServer, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(BEFORE, encoding="utf-8")
    settings = settle(build_parser, ["--config", str(config)], {})
    assert settings.args.theme == "gruvbox"
    server = await open_server(start_server)
    app = app_saving_to(server.url, settings.config.path)
    app.theme = settings.args.theme  # as the command line does
    notices = Notices()
    async with app.run_test(size=(100, 30), message_hook=notices) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None)
        assert config.read_text(encoding="utf-8") == BEFORE  # starting is no change
        app.action_change_theme()
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"nord")
        await pilot.pause(0.3)  # the palette searches on a short debounce
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.theme == "nord" and bool(notices.find("saved")))
    assert notices.messages[-1] == f"Theme nord saved in {config}"
    assert config.read_text(encoding="utf-8") == BEFORE.replace('"gruvbox"', '"nord"')
    again = settle(build_parser, ["--config", str(config)], {})
    assert again.args.theme == "nord"
    assert again.sources["theme"].layer == "file"


async def test_a_theme_that_cannot_be_saved_is_said(
    start_server: StartServer, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('board = "plan"\nboard = "twice"\n', encoding="utf-8")
    server = await open_server(start_server)
    app = app_saving_to(server.url, config)
    notices = Notices()
    async with app.run_test(size=(100, 30), message_hook=notices) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None)
        app.theme = "nord"
        await wait_for(pilot, lambda: bool(notices.find("Theme not saved")))
    (said,) = notices.find("Theme not saved")
    assert said.severity == "warning"
    assert f"{config}: not valid TOML" in said.message
    assert config.read_text(encoding="utf-8") == 'board = "plan"\nboard = "twice"\n'
