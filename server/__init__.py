"""The tui-collab server: one asyncio process serving presence, boards and cells over WebSocket."""

from tui_collab import __version__

__distribution__ = "tui-collab"
"""Marks this `server` package as tui-collab's (`tui_collab.server_package` checks it)."""

__all__ = ["__distribution__", "__version__"]
