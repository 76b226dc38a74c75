"""TUI fixtures: a still clock, a fixed theme, and SVG snapshots taken inside async tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from pytest_textual_snapshot import SVGImageExtension
from syrupy.assertion import SnapshotAssertion
from textual.pilot import Pilot

from tests.tui.scripted import NOW
from tui_collab.app import Clock

FIXED_CLOCK = Clock(now=lambda: NOW, monotonic=lambda: 1000.0)


@pytest.fixture
def svg_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(SVGImageExtension)


async def wait_for(
    pilot: Pilot[None], predicate: Callable[[], object], timeout: float = 5.0
) -> None:
    """Let the app run until `predicate` holds (bounded), then let it paint."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await pilot.pause(0.02)
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
