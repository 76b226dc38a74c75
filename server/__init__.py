"""The tui-collab server: one asyncio process serving presence, boards and cells over WebSocket."""

__version__ = "0.1.0"
