"""tui-collab: team presence and a multiplayer grid for the terminal."""

__version__ = "0.1.0"
