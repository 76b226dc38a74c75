"""Defaults both command lines share: where the data lives, the port a server listens on."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from platformdirs import user_data_dir

DEFAULT_PORT: Final = 9001


def default_data_dir() -> Path:
    """The per-user data directory: the server's database and secret, the client's outbox."""
    return Path(user_data_dir("tui-collab", appauthor=False))
