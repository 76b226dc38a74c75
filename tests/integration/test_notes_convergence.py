"""Three replicas, real clients on a real server, edit one text at once (inserts and
deletes, often at the same places) while every notes update and its fan-out is delayed,
reordered and duplicated on the way. Once quiet, every replica, the server's document
and a fresh joiner hold the same text as a reference document that applied every
update each replica made.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text, TransactionEvent

from server.app import CollabServer
from tests.conftest import fast_config, token
from tests.support.frame_proxy import FrameChaos
from tests.support.waiting import eventually
from tui_collab.client import CollabClient
from tui_collab.notes import SharedNotes

EDITS = st.lists(
    st.tuples(
        st.integers(0, 2),  # which replica
        st.booleans(),  # insert (or delete)
        st.integers(0, 6),  # where: a few places, so edits collide
        st.text(alphabet="ab\n é", min_size=1, max_size=4),
    ),
    min_size=6,
    max_size=30,
)


def edit(notes: SharedNotes, insert: bool, where: int, value: str) -> None:
    size = len(str(notes.text))
    at = min(where, size)
    if insert:
        notes.insert(at, value)
    else:
        notes.delete(at, min(size, at + len(value)))


async def scenario(data_dir: Path, edits: list[tuple[int, bool, int, str]], seed: int) -> None:
    server = CollabServer(fast_config(data_dir))
    await server.start()
    chaos = FrameChaos(server.url, {"notes.update", "notes.updated"}, seed=seed)
    await chaos.start()
    clients = [CollabClient(chaos.url, token=f"{token(u, 'core')}") for u in ("a", "b", "c")]
    made: list[bytes] = []
    try:
        for client in clients:
            client.start()
            await client.wait_connected()
        await clients[0].create_board("Plan", 4, 4, board="plan")
        replicas = [await client.open_notes("plan") for client in clients]
        for notes in replicas:

            def keep(event: TransactionEvent, notes: SharedNotes = notes) -> None:
                if not notes.applying_remote:
                    made.append(event.update)

            notes.doc.observe(keep)
        rng = random.Random(seed)
        for who, insert, where, value in [(0, True, 0, "start"), *edits]:
            edit(replicas[who], insert, where, value)
            if rng.random() < 0.3:
                await asyncio.sleep(rng.uniform(0, 0.01))  # let some fan-out land between
        reference: Doc[Any] = Doc()
        reference_text = reference.get("notes", type=Text)
        for update in made:
            reference.apply_update(update)
        expected = str(reference_text)

        def quiet() -> bool:
            return (
                chaos.in_flight == 0
                and all(n.unacked == 0 for n in replicas)
                and all(str(n.text) == expected for n in replicas)
            )

        await eventually(
            quiet,
            timeout=10,
            what=f"every replica at {expected!r}, not "
            f"{[(str(n.text), n.unacked) for n in replicas]} ({chaos.in_flight} in flight)",
        )
        live = server.notes.get("core", "plan")
        assert live is not None
        assert str(live.text) == expected
        async with CollabClient(server.url, token=token("late", "core")) as late:
            fresh = await late.open_notes("plan")
            assert str(fresh.text) == expected
        assert chaos.delayed > 0
    finally:
        for client in clients:
            await client.close()
        await chaos.close()
        await server.stop()


@pytest.mark.timeout(120)
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    phases=(Phase.explicit, Phase.generate),  # a real server per example: no shrinking
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(edits=EDITS, seed=st.integers(0, 2**16))
def test_three_replicas_converge_through_delayed_reordered_duplicated_delivery(
    tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[int, bool, int, str]], seed: int
) -> None:
    asyncio.run(scenario(tmp_path_factory.mktemp("notes"), edits, seed))
