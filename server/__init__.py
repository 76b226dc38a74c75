"""The tui-collab server: one asyncio process serving presence, boards and cells over WebSocket."""

from tui_collab import __version__

__all__ = ["__version__"]
