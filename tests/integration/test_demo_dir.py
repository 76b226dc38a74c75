"""`tui-collab --demo` in a real terminal (a pseudo-terminal): its fake teammates and
their cells go to a throwaway data dir that it names on start and removes on exit; the
default data dir, and one set in the config file, are never created.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

DEADLINE_S = 20.0


class Terminal:
    """A command running in a pseudo-terminal of a fixed size; what it wrote, as text."""

    def __init__(self, args: list[str], env: dict[str, str], size: tuple[int, int]) -> None:
        self.master, slave = os.openpty()
        columns, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.process = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.output = b""

    def read(self, timeout: float = 0.1) -> str:
        """Everything written so far (reading what is waiting first)."""
        with contextlib.suppress(OSError):  # EIO: the command has exited
            while select.select([self.master], [], [], timeout)[0]:
                chunk = os.read(self.master, 65536)
                if not chunk:
                    break
                self.output += chunk
                timeout = 0
        return self.output.decode(errors="replace")

    def wait_for(self, check: Callable[[], object], what: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not check():
            assert time.monotonic() < deadline, f"no {what} within {DEADLINE_S} s:\n{self.read()}"
            self.read(0.1)

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        os.close(self.master)


@contextlib.contextmanager
def terminal(args: list[str], env: dict[str, str]) -> Iterator[Terminal]:
    term = Terminal(args, env, size=(100, 30))
    try:
        yield term
    finally:
        term.close()


def count_users(database: Path) -> int:
    with (
        contextlib.suppress(sqlite3.Error),
        contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db,
    ):
        return int(db.execute("SELECT count(*) FROM users").fetchone()[0])
    return 0


def test_demo_runs_in_a_throwaway_dir_and_leaves_the_default_alone(tmp_path: Path) -> None:
    home, temp = tmp_path / "home", tmp_path / "tmp"
    temp.mkdir()
    # A data dir in the config file is the person's everyday one: the demo keeps out too.
    (home / "config" / "tui-collab").mkdir(parents=True)
    (home / "config" / "tui-collab" / "config.toml").write_text('data_dir = "~/mine"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUI_COLLAB_", "XDG_"))} | {
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "TMPDIR": str(temp),
        "TERM": "xterm-256color",
    }
    command = [sys.executable, "-m", "tui_collab.cli", "--demo", "--port", "0"]
    with terminal(command, env) as term:
        said = re.compile(r"tui-collab: demo data in (\S+) \(removed on exit\)")
        term.wait_for(lambda: said.search(term.read()), "line naming the demo's data dir")
        match = said.search(term.read())
        assert match is not None
        demo_dir = Path(match.group(1))
        assert demo_dir.parent == temp
        # The app is up, and the local server has this user and demo teammates.
        term.wait_for(lambda: "Zoom" in term.read(), "app on the screen")
        database = demo_dir / "tui-collab.sqlite3"
        term.wait_for(lambda: count_users(database) >= 2, "demo teammate in its database")
        assert (demo_dir / "tui-collab.log").exists()
        term.type("q")
        term.wait_for(lambda: term.process.poll() is not None, "exit after q")
        assert term.process.returncode == 0, term.read()
    assert not demo_dir.exists()
    assert os.listdir(temp) == []
    assert not (home / "data").exists()  # the default data dir was never created
    assert os.listdir(home) == ["config"]  # nor the config file's
