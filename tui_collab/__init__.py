"""tui-collab: team presence and a multiplayer grid for the terminal."""

from importlib import metadata

try:
    # Written once, in pyproject.toml; the installed package's metadata carries it.
    __version__ = metadata.version("tui-collab")
except metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
    __version__ = "0+unknown"
