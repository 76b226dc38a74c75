"""Save the theme picked in the app into the config file, touching nothing else.

The file is the person's: only the `theme = ...` line is rewritten (or one is added),
so their other keys, comments and layout stay as they wrote them. The new text is
checked by parsing it before it replaces the old file, in one atomic rename; a file
that does not parse is left alone and the person is told why.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Final

from tui_collab.config import ConfigError, check
from tui_collab.private_files import FILE_MODE, make_private_dir

NEW_FILE_HEADER: Final = (
    "# tui-collab settings: `tui-collab config` shows what is in effect and from where.\n"
)
_THEME_LINE: Final = re.compile(
    r"""^(?P<lead>[ \t]*theme[ \t]*=[ \t]*)"""
    r"""(?P<value>"(?:[^"\\\n]|\\.)*"|'[^'\n]*')"""
    r"""(?P<rest>[ \t]*(?:\#.*)?)$""",
    re.MULTILINE,
)


def save_theme(path: Path, theme: str) -> Path:
    """Set `theme` in the config file at `path` (created if missing); returns the file
    written, which is the link's target when `path` is a symlink."""
    target = path.resolve() if path.is_symlink() else path
    try:
        old = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        old = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {target}: {_why(exc)}") from None
    try:
        before = tomllib.loads(old)
        check(before, target)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{target}: not valid TOML ({exc}): fix it to save the theme") from None
    new = with_theme(old, theme)
    after = tomllib.loads(new)  # with_theme's own check: never write what does not parse
    if after != {**before, "theme": theme}:
        raise ConfigError(f"{target}: cannot find where to set the theme: set theme = {theme!r}")
    _write_atomically(target, new)
    return target


def with_theme(text: str, theme: str) -> str:
    """`text` with its top-level `theme = ...` set to `theme`; one is added if absent."""
    quoted = json.dumps(theme)  # a JSON string is a TOML basic string
    found = _THEME_LINE.search(text)
    if found is not None:
        return text[: found.start("value")] + quoted + text[found.end("value") :]
    if not text:
        return f"{NEW_FILE_HEADER}theme = {quoted}\n"
    # The app's keys are all top level: a line at the end is read as one.
    return f"{text}{'' if text.endswith(chr(10)) else chr(10)}theme = {quoted}\n"


def _write_atomically(path: Path, text: str) -> None:
    """Write beside the file, then rename over it: a crash leaves the old or the new."""
    try:
        make_private_dir(path.parent)
        mode = path.stat().st_mode & 0o777 if path.exists() else FILE_MODE
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise ConfigError(f"cannot write config file {path}: {_why(exc)}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise ConfigError(f"cannot write config file {path}: {_why(exc)}") from None


def _why(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return "not UTF-8 text"
