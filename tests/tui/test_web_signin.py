"""The browser visitor's app: nobody until the sign-in screen names someone."""

from __future__ import annotations

import pytest
from syrupy.assertion import SnapshotAssertion
from textual.widgets import Input, Label

from server.app import CollabServer
from tests.conftest import StartServer, token
from tests.support.waiting import eventually
from tests.tui.conftest import FIXED_CLOCK, open_server, wait_for
from tui_collab.protocol import is_identifier
from tui_collab.screens import PathScreen
from tui_collab.signin import Credentials, SignInError, SignInScreen, credentials_from
from tui_collab.web_visitor import HOST_FILES, WebCollabApp


def test_a_name_signs_in_with_an_id_made_from_it() -> None:
    assert credentials_from("open", "  Ada L. ", team="local") == Credentials(
        user="Ada-L", team="local", name="Ada L."
    )
    made = credentials_from("open", "李雷", team="local")
    assert made.name == "李雷"
    assert is_identifier(made.user)
    assert made.user == credentials_from("open", "李雷", team="local").user


@pytest.mark.parametrize(
    ("mode", "typed", "says"),
    [
        ("open", "   ", "type the name your teammates will see"),
        ("open", "Ada\x1b[31m", "no control or invisible characters"),
        ("open", "x" * 65, "1 to 64 characters"),
        ("token", "", "paste the token"),
        ("token", "abc def", "a token has no spaces"),
    ],
)
def test_what_cannot_sign_in_says_why(mode: str, typed: str, says: str) -> None:
    with pytest.raises(SignInError, match=says):
        credentials_from(mode, typed, team="local")  # type: ignore[arg-type]


def error_line(app: WebCollabApp) -> str:
    return str(app.screen.query_one("#signin-error", Label).render())


async def test_open_mode_name_then_the_board(start_server: StartServer) -> None:
    server = await open_server(start_server)
    app = WebCollabApp(server.url, auth="open", clock=FIXED_CLOCK)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, SignInScreen)
        assert isinstance(app.focused, Input)
        await pilot.press("enter")
        await eventually(lambda: "type the name" in error_line(app), what="the empty name refused")
        assert not app.signed_in
        assert await server_members(server) == set()  # nobody connected before sign-in

        await pilot.press(*"Ada", "enter")
        await eventually(lambda: app.signed_in, 10.0, "signed in", step=pilot.pause)
        await eventually(
            lambda: app.focused is app.grid, 10.0, "the grid focused", step=pilot.pause
        )
        assert await server_members(server) == {"Ada"}
        await pilot.press("right", "down")
        await eventually(
            lambda: (app.grid.cursor_x, app.grid.cursor_y) == (1, 1), what="the cursor moved"
        )


async def server_members(server: CollabServer) -> set[str]:
    members = await server.context.presence.view_team("local")
    return {m.user for m in members if m.status != "offline"}


async def test_token_mode_refused_token_then_a_good_one(server: CollabServer) -> None:
    app = WebCollabApp(server.url, auth="token", clock=FIXED_CLOCK)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        field = app.screen.query_one("#signin-input", Input)
        assert field.password
        await pilot.press(*"not-a-token", "enter")
        await eventually(lambda: "refused" in error_line(app), 10.0, "the bad token refused")
        assert not field.disabled
        assert not app.signed_in

        field.value = token("ada", "core", "Ada")
        await pilot.press("enter")
        await eventually(lambda: app.signed_in, 10.0, "signed in", step=pilot.pause)
        welcome = app.client.welcome
        assert welcome is not None
        assert (welcome.user.id, welcome.team) == ("ada", "core")


async def test_no_host_files_for_a_visitor(start_server: StartServer) -> None:
    """Export, import and the screenshot would use the serving machine's files."""
    server = await open_server(start_server)
    app = WebCollabApp(server.url, auth="open", clock=FIXED_CLOCK)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await pilot.press(*"Ada", "enter")
        await eventually(lambda: app.signed_in, 10.0, "signed in", step=pilot.pause)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert "Export board…" in titles
        assert "Screenshot" not in titles
        app.action_export_board()
        app.action_import()
        await pilot.pause()
        said = [n.message for n in app._notifications]
        assert said == [HOST_FILES, HOST_FILES]
        assert not isinstance(app.screen, PathScreen)


async def test_sign_in_screen(svg_snapshot: SnapshotAssertion) -> None:
    """What a page shows first, here after Enter on an empty name."""
    app = WebCollabApp("ws://team.example:9001/ws", auth="open", clock=FIXED_CLOCK)
    app.theme = "textual-dark"
    async with app.run_test(size=(80, 20)) as pilot:
        await pilot.pause()
        field = app.screen.query_one("#signin-input", Input)
        field.cursor_blink = False
        await pilot.press("enter")
        await wait_for(pilot, lambda: "type the name" in error_line(app))
        assert svg_snapshot == app.export_screenshot()
