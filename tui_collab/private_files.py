"""Files only this user may read: databases, the secret, logs.

Modes are given at creation (the process umask can only take bits away), so a
permissive umask such as 0o022 still gives 0700 directories and 0600 files. An
existing file or directory is never changed here: it is the operator's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600


def create_private_file(path: Path) -> bool:
    """Create `path` empty with mode 0600 unless it exists; True when it was created.

    SQLite gives a database's -wal and -shm files the mode of the database file, so
    creating the database this way before SQLite opens it covers those too.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def make_private_dir(path: Path) -> bool:
    """Create the directory `path` (and missing parents) with mode 0700 for `path`
    itself; True when `path` was created, False when it already existed."""
    try:
        path.mkdir(mode=DIR_MODE, parents=True)
    except FileExistsError:
        return False
    return True
