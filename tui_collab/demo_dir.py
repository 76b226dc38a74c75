"""`--demo`'s throwaway data dir: fake teammates and their cells never reach the real one.

A demo writes four simulated teammates and their edits into the local server's
database; in the default data dir they would stay there for good, mixed with the
person's own boards. Unless a data dir was named on purpose, the demo runs in a temporary
one, says where, and removes it on exit.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def throwaway_data_dir() -> Iterator[Path]:
    """A fresh private temporary directory, removed with everything in it on exit."""
    path = Path(tempfile.mkdtemp(prefix="tui-collab-demo-"))
    logger.debug("demo data in %s", path)
    try:
        yield path
    finally:
        _close_logs_in(path)
        shutil.rmtree(path, ignore_errors=True)


def _close_logs_in(path: Path) -> None:
    """Close the root logger's files inside `path` before it is removed."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        name = getattr(handler, "baseFilename", None)
        if name is not None and Path(name).is_relative_to(path):
            root.removeHandler(handler)
            handler.close()
