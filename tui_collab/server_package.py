"""Is the `server` package on the path ours, with what it needs installed?

The wheel installs a top-level package named `server`, a name other distributions use
too. If another one comes first on `sys.path`, `import server` would run theirs and fail
somewhere far from the cause; so where it lies is checked before it is imported, and the
error names the path that shadows ours. The bare install (the client library and the
app) leaves out what only a server needs; starting one then says which extra to install.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Final

MARKER: Final = "tui-collab"
"""`server.__distribution__` of our `server` package."""

SERVER_REQUIREMENTS: Final = ("aiosqlite", "redis", "prometheus_client")
"""What `tui-collab[server]` adds to the bare install (import names)."""

SERVER_EXTRA_HINT: Final = "pip install 'tui-collab[server]'"


class ServerPackageError(ImportError):
    """The `server` package cannot be used; `str()` is the whole one-line reason."""


def expected_location() -> Path:
    """Our `server` package lies next to this `tui_collab` package, in every install."""
    return Path(__file__).resolve().parent.parent / "server"


def found_location() -> Path | None:
    """Where `import server` finds (or found) its package, without importing it."""
    module = sys.modules.get("server")
    origin = getattr(module, "__file__", None) if module is not None else None
    if module is None:
        spec = importlib.util.find_spec("server")
        if spec is None:
            return None
        origin = spec.origin
        if origin is None and spec.submodule_search_locations:
            return Path(next(iter(spec.submodule_search_locations))).resolve()
    if origin is None:
        return None
    return Path(origin).resolve().parent


def check_server_package() -> None:
    """Raise `ServerPackageError` unless `server` is the package installed with us."""
    expected = expected_location()
    found = found_location()
    if found is None:
        raise ServerPackageError(
            f"no `server` package on the path (expected {expected}): reinstall tui-collab"
        )
    if found != expected:
        raise ServerPackageError(
            f"the `server` package at {found} is not tui-collab's (expected {expected}): "
            "another distribution's `server` comes first on the path; uninstall it, or "
            "install tui-collab in an environment of its own (pipx install, uv tool install)"
        )
    module = sys.modules.get("server")
    if module is not None and getattr(module, "__distribution__", None) != MARKER:
        raise ServerPackageError(
            f"the `server` package at {found} has no tui-collab marker: reinstall tui-collab"
        )


def missing_requirements() -> list[str]:
    """The server's own requirements that are not installed (the bare install's)."""
    return [name for name in SERVER_REQUIREMENTS if importlib.util.find_spec(name) is None]


def check_server_extras(what: str) -> None:
    """Raise `ServerPackageError` naming the extra to install if `what` cannot run."""
    missing = missing_requirements()
    if missing:
        raise ServerPackageError(
            f"{what} needs the server's requirements ({', '.join(missing)} missing): "
            f"{SERVER_EXTRA_HINT}"
        )


def server_main() -> int:
    """`tui-collab-server`: checked here, in a package only we name, so that a shadowing
    `server` is reported instead of run."""
    try:
        check_server_package()
        check_server_extras("tui-collab-server")
    except ServerPackageError as exc:
        print(f"tui-collab-server: {exc}", file=sys.stderr)
        return 1
    from server.cli import main

    return main()
