"""One browser visitor's app: `tui-collab web` starts one of these per page.

The process is nobody until the sign-in screen names someone: the app opens on that
screen, and only then builds its client (so a visitor never borrows the host's
identity, token or outbox) and starts what `CollabApp` starts on mount.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import get_args

from textual import events
from textual.app import SystemCommand
from textual.screen import Screen

from tui_collab.app import Clock, CollabApp
from tui_collab.client import CollabClient
from tui_collab.signin import AuthMode, Credentials, SignInScreen

log = logging.getLogger(__name__)

HOST_FILES = (
    "export and import use files on the machine serving this page, not yours: "
    "run `tui-collab export` or `tui-collab import` in a terminal instead"
)


class WebCollabApp(CollabApp):
    """`CollabApp` that signs its visitor in first."""

    def __init__(
        self,
        url: str,
        *,
        auth: AuthMode,
        team: str = "local",
        board: str = "main",
        cafile: Path | None = None,
        clock: Clock | None = None,
    ) -> None:
        # A client nobody starts: CollabApp wants one from the start, and the real one
        # exists only once someone has signed in.
        unsigned = CollabClient(url, user="nobody", team=team)
        super().__init__(unsigned, board=board, clock=clock, where=url)
        self.url = url
        self.auth: AuthMode = auth
        self.team = team
        self.cafile = cafile
        self.signed_in = False

    def on_mount(self, event: events.Mount | None = None) -> None:
        if event is not None:
            event.prevent_default()  # CollabApp's own on_mount runs once someone signed in
        screen = SignInScreen(self.auth, self.sign_in, where=self.url, team=self.team)
        self.push_screen(screen, self._start)

    async def sign_in(self, credentials: Credentials) -> str | None:
        """Connect as `credentials`: None once the server said welcome, else why not."""
        from tui_collab.cli import StartupFailure, first_contact, tls_context
        from tui_collab.events import Connected

        try:
            tls = tls_context(self.cafile)
        except StartupFailure as exc:
            return str(exc)
        if credentials.token is not None:
            client = CollabClient(self.url, token=credentials.token, ssl_context=tls)
        else:
            client = CollabClient(
                self.url,
                user=credentials.user,
                team=credentials.team,
                name=credentials.name,
                ssl_context=tls,
            )
        try:
            await first_contact(client)
        except StartupFailure as exc:
            return str(exc)
        if not isinstance(client.state, Connected):
            await client.close()
            return f"cannot reach {self.url} yet; try again in a moment"
        self.client = client
        self.signed_in = True
        log.info("signed in as %s", client.welcome.user.id if client.welcome else "?")
        return None

    def _start(self, credentials: Credentials | None) -> None:
        if credentials is None:
            return
        CollabApp.on_mount(self)

    # The app runs on the machine serving the page, as its user: a visitor gets nothing
    # that reads or writes that machine's files.

    def action_export_board(self) -> None:
        self._host_files_refused("Export")

    def action_import(self) -> None:
        self._host_files_refused("Import")

    def _host_files_refused(self, what: str) -> None:
        self.notify(HOST_FILES, title=f"{what}: not in the browser", severity="warning")

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """The app's commands, less the screenshot (a file the page cannot take)."""
        for command in super().get_system_commands(screen):
            if command.title != "Screenshot":
                yield command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tui_collab.web_visitor",
        description="One visitor's app for `tui-collab web` (started by it, one per page).",
    )
    parser.add_argument("--server", required=True, help="ws:// or wss:// URL of the server")
    parser.add_argument("--auth", choices=get_args(AuthMode), required=True)
    parser.add_argument("--team", default="local", help="team of open-mode visitors")
    parser.add_argument("--board", default="main")
    parser.add_argument("--cafile", type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # stderr is a pipe to `tui-collab web`, which logs what arrives there.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("websockets").setLevel(logging.ERROR)
    app = WebCollabApp(
        args.server, auth=args.auth, team=args.team, board=args.board, cafile=args.cafile
    )
    app.run()
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
