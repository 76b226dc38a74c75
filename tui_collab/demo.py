"""Simulated teammates for `tui-collab --demo`.

A newcomer's first look at the app should be a team at work, not an empty grid. Each
teammate is an ordinary `CollabClient`, so the demo exercises exactly what real users
and bots do: it walks a cursor cell by cell, marks cells as being typed into, writes
plausible values, changes status and activity, and now and then leaves and comes back.

Every choice a teammate makes comes from its own `random.Random` derived from `seed`,
so one seed gives the same cast, the same walks and the same values; only the timing
(and therefore how teammates interleave) depends on the network. `speed` divides every
wait, so tests can watch a minute of team life in a few seconds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from dataclasses import dataclass
from typing import Final

from tui_collab.client import CollabClient, NotConnected
from tui_collab.events import Connected
from tui_collab.mirror import BoardMirror
from tui_collab.protocol import Activity, ActivityKind, Status

logger = logging.getLogger(__name__)

BOARD_WIDTH: Final = 26
"""Columns A to Z."""
BOARD_HEIGHT: Final = 40
CLOSE_TIMEOUT_S: Final = 1.0
"""A teammate's client gets this long to close before its task is cancelled outright."""


@dataclass(frozen=True)
class CastMember:
    user: str
    name: str
    home: tuple[int, int]
    """The cell (column, row) this teammate's work centres on, so each has a territory."""


CAST: Final[tuple[CastMember, ...]] = (
    CastMember("ada", "Ada Lovelace", (3, 6)),
    CastMember("grace", "Grace Hopper", (11, 8)),
    CastMember("linus", "Linus T.", (1, 15)),
    CastMember("margaret", "Margaret H.", (19, 10)),
    CastMember("alan", "Alan Turing", (16, 22)),
    CastMember("barbara", "Barbara Liskov", (8, 28)),
    CastMember("ken", "Ken Thompson", (23, 18)),
    CastMember("radia", "Radia Perlman", (5, 33)),
)

# --- what the sheet looks like ------------------------------------------------------

_KINDS: Final = ("label", "status", "owner", "money", "date", "note", "number")
"""Every block of seven columns is one small table with these kinds of column."""
_HEADERS: Final = (
    ("Task", "Status", "Owner", "Cost", "Due", "Notes", "Hours"),
    ("Item", "State", "Lead", "Budget", "Deadline", "Comment", "Qty"),
    ("Goal", "Progress", "Team", "Spend", "Target", "Remarks", "Score"),
    ("Topic", "Status", "Who", "Amount", "When", "Notes", "Count"),
)
_LABELS: Final = (
    "Q3 plan", "Hiring", "Onboarding", "Launch prep", "Office move", "Budget review",
    "Vendor audit", "Roadmap", "Release 2.4", "Customer calls", "Team offsite",
    "Docs refresh", "Security review", "Café supplies", "Retro notes", "Pricing page",
    "Data cleanup", "Q4 forecast",
)  # fmt: skip
_STATUS_FLOW: Final = ("TODO", "in progress", "review", "done")
"""A status cell moves along this flow, the way real work does."""
_STATUSES: Final = (*_STATUS_FLOW, "blocked", "waiting", "OK")
_OWNERS: Final = ("Ada", "Grace", "Linus", "Margaret", "Alan", "Zoë", "José", "Renée")
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov")
_CURRENCIES: Final = ("€", "€", "€", "$", "£")
_NOTES: Final = (
    "ask finance", "see thread", "needs sign-off", "ship it", "after lunch",
    "check numbers", "ping Grace", "draft ready", "v2 looks good", "waiting on legal",
    "moved to Q4", "déjà vu: dup?", "call Monday", "OK by Ada",
)  # fmt: skip
_REVIEWING: Final = ("Q3 numbers", "open TODOs", "budget rows", "last week's edits")
_AUTOMATIONS: Final = ("CSV import", "invoice sync", "weekly rollup", "price refresh")
_BREAKS: Final = ("coffee break", "in a meeting", "lunch", "stepped out")


def column_header(x: int) -> str:
    return _HEADERS[(x // len(_KINDS)) % len(_HEADERS)][x % len(_KINDS)]


def plausible_value(x: int, y: int, current: str | None, rng: random.Random) -> str:
    """A value that fits the cell's column, so the board reads like a real team sheet.

    Always draws the same numbers from `rng` whatever the board holds, so a teammate's
    later choices do not depend on what others wrote.
    """
    pick, amount, day, month = rng.random(), rng.randint(2, 250), rng.randint(1, 28), rng.random()
    if y == 0:
        return column_header(x)
    kind = _KINDS[x % len(_KINDS)]
    if kind == "status":
        if current in _STATUS_FLOW and current != _STATUS_FLOW[-1]:
            return _STATUS_FLOW[_STATUS_FLOW.index(current) + 1]
        return _STATUSES[int(pick * len(_STATUSES))]
    if kind == "money":
        currency = _CURRENCIES[int(month * len(_CURRENCIES))]
        return f"{currency} {amount * 50:,}"
    if kind == "date":
        if pick < 0.2:
            return f"Q{1 + int(month * 4)}"
        return f"{_MONTHS[int(month * len(_MONTHS))]} {day}"
    if kind == "number":
        return f"{amount / 4:g}" if pick < 0.3 else str(amount // 5)
    pool = {"label": _LABELS, "owner": _OWNERS, "note": _NOTES}[kind]
    return pool[int(pick * len(pool))]


def teammate_rng(seed: int | None, user: str) -> random.Random:
    """One independent stream per teammate, so adding a teammate changes no one else."""
    return random.Random(None if seed is None else f"tui-collab-demo/{seed}/{user}")


# --- one teammate -------------------------------------------------------------------


class Teammate:
    """One simulated person: visits the board with a fresh client, works, takes breaks."""

    def __init__(
        self,
        url: str,
        team: str,
        board: str,
        member: CastMember,
        *,
        rng: random.Random,
        speed: float = 1.0,
        arrive_after_s: float = 0.0,
    ) -> None:
        self.url, self.team, self.board = url, team, board
        self.member = member
        self.user = member.user
        self.client_id = f"c-demo-{member.user}"
        self.rng = rng
        self.speed = speed
        self.client: CollabClient | None = None
        self._arrive_after_s = arrive_after_s
        self._joined = False
        self._leave = asyncio.Event()
        self._break_s = 0.0
        self._pace = rng.uniform(8.0, 15.0)
        """Cursor moves a second at speed 1; each person has their own."""
        self._pos = member.home
        self._enter_pressed = False
        self._last_typed: tuple[int, int] | None = None
        self._status: Status = "online"
        self._status_until = math.inf
        self._next_mood = 0.0

    @property
    def present(self) -> bool:
        """On the board and connected: someone the others can see leave."""
        client = self.client
        return self._joined and client is not None and isinstance(client.state, Connected)

    def take_break(self, seconds: float) -> None:
        """Leave after the current action (a typed value is finished first), return later."""
        self._break_s = seconds
        self._leave.set()

    async def run(self) -> None:
        """Visit, break, visit again, until cancelled; never raises anything else."""
        await self._pause(self._arrive_after_s)
        failures = 0
        while True:
            try:
                await self._visit()
                failures = 0
            except Exception as exc:
                failures += 1
                level = logging.DEBUG if failures > 1 else logging.WARNING
                logger.log(level, "demo teammate %s lost its visit: %r", self.user, exc)
            if self._break_s > 0:
                away_s = self._break_s / self.speed
                logger.info("demo teammate %s steps out for %.1f s", self.user, away_s)
                await self._pause(self._break_s)
                self._break_s = 0.0
            else:
                await self._pause(min(60.0, 2.0**failures))

    # --- a visit ----------------------------------------------------------------------

    async def _visit(self) -> None:
        self._leave.clear()
        client = self.client = CollabClient(
            self.url,
            user=self.user,
            team=self.team,
            name=self.member.name,
            client_id=self.client_id,
        )
        client.start()
        try:
            await client.wait_connected()
            mirror = await self._enter(client)
            self._joined = True
            logger.info("demo teammate %s joined %s", self.user, self.board)
            await self._work(client, mirror)
        finally:
            self._joined = False
            await close_quietly(client)

    async def _enter(self, client: CollabClient) -> BoardMirror:
        if self.board not in client.boards:
            title = self.board.replace("-", " ").replace("_", " ").title()
            # applied=False only means a teammate (or a real user) created it first.
            await client.create_board(title, BOARD_WIDTH, BOARD_HEIGHT, board=self.board)
        mirror = await client.join(self.board)
        self._status, self._status_until = "online", math.inf
        self._next_mood = self._now() + self.rng.uniform(3.0, 12.0) / self.speed
        self._pos = self._clamp(self._pos, mirror)
        client.move_cursor(self.board, *self._pos)
        await self._set_status(client, "online", self._activity("viewing"))
        return mirror

    async def _work(self, client: CollabClient, mirror: BoardMirror) -> None:
        rng = self.rng
        while not self._leave.is_set():
            now = self._now()
            if self._status != "online" and now >= self._status_until:
                await self._set_status(client, "online", self._activity("viewing"))
            elif self._status != "away" and now >= self._next_mood:
                await self._change_mood(client, mirror)
                continue
            if self._status == "away":
                await self._nap(self._status_until - now, scaled=False)
                continue
            await self._walk(client, mirror, self._pick_target(mirror))
            if self._leave.is_set():
                break
            roll = rng.random()
            if roll < 0.45:
                await self._type(client, mirror)
            elif roll < 0.75:
                await self._nap(rng.uniform(0.4, 3.0))

    async def _change_mood(self, client: CollabClient, mirror: BoardMirror) -> None:
        rng = self.rng
        roll, length, detail = rng.random(), rng.uniform(10.0, 35.0), rng.random()
        self._next_mood = self._now() + rng.uniform(8.0, 25.0) / self.speed
        if roll < 0.12:
            self._status, self._status_until = "away", self._now() + length / self.speed
            activity = Activity(kind="idle", detail=_pick(_BREAKS, detail))
            await self._set_status(client, "away", activity)
        elif roll < 0.24:
            self._status, self._status_until = "busy", self._now() + length / self.speed
            await self._set_status(client, "busy", self._activity("editing", "focus time"))
        elif roll < 0.45:
            await self._set_status(
                client, None, self._activity("reviewing", _pick(_REVIEWING, detail))
            )
        elif roll < 0.6:
            await self._automate(client, mirror, _pick(_AUTOMATIONS, detail))
        elif roll < 0.8:
            await self._set_status(client, None, self._activity("viewing"))
        else:
            await self._set_status(client, None, self._activity("idle", "reading"))
            await self._nap(length / 8)

    # --- what a person does -----------------------------------------------------------

    def _pick_target(self, mirror: BoardMirror) -> tuple[int, int]:
        """Mostly near home, sometimes along the row, now and then anywhere on the board."""
        rng = self.rng
        width, height = mirror.meta.width, mirror.meta.height
        roll = rng.random()
        near = (
            round(rng.gauss(self.member.home[0], 2.5)),
            round(rng.gauss(self.member.home[1], 4)),
        )
        anywhere = (rng.randrange(width), rng.randrange(height))
        along = (self._pos[0] + rng.choice((-2, -1, 1, 1, 2, 3)), self._pos[1])
        x, y = self._pos
        if self._enter_pressed:
            self._enter_pressed = False
            target = (x, y + 1)  # after typing, like pressing Enter
        elif roll < 0.2:
            target = along
        elif roll < 0.75:
            target = near
        elif roll < 0.97:
            target = anywhere
        else:
            target = (x, 0)  # the header row
        return self._clamp(target, mirror, header=target[1] == 0 and roll >= 0.97)

    async def _walk(
        self, client: CollabClient, mirror: BoardMirror, target: tuple[int, int]
    ) -> None:
        """Step a cell at a time, as arrow keys do; far targets are sometimes clicked."""
        rng = self.rng
        x, y = self._pos
        if abs(target[0] - x) + abs(target[1] - y) > 8 and rng.random() < 0.15:
            await self._pause(rng.uniform(0.3, 0.8))  # reaching for the mouse
            self._pos = target
            client.move_cursor(self.board, *target)
            return
        while self._pos != target and not self._leave.is_set():
            x, y = self._pos
            dx, dy = target[0] - x, target[1] - y
            if dx and (not dy or rng.random() < abs(dx) / (abs(dx) + abs(dy))):
                x += 1 if dx > 0 else -1
            else:
                y += 1 if dy > 0 else -1
            self._pos = self._clamp((x, y), mirror, header=True)
            client.move_cursor(self.board, *self._pos)
            await self._pause(1 / (self._pace * rng.uniform(0.75, 1.3)))

    async def _type(self, client: CollabClient, mirror: BoardMirror) -> None:
        rng = self.rng
        x, y = self._pos
        # Draw everything first, so what others do to the board never shifts this stream.
        typing_s, value_rng = rng.uniform(1.0, 3.0), random.Random(rng.getrandbits(64))
        press_enter = rng.random() < 0.5
        taken = any(pos == (x, y) for user, pos in mirror.cursors.items() if user != self.user)
        if taken or (x, y) == self._last_typed:
            return  # people neither type over each other nor retype what they just wrote
        detail = f"{column_header(x).lower()} row {y + 1}"
        await self._set_status(client, None, self._activity("editing", detail))
        client.set_typing(self.board, x, y, True)
        try:
            await self._nap(typing_s)
            value = plausible_value(x, y, mirror.cells.value(x, y), value_rng)
            await client.set_cell(self.board, x, y, value)
            self._last_typed = (x, y)
            self._enter_pressed = press_enter
        finally:
            client.set_typing(self.board, x, y, False)

    async def _automate(self, client: CollabClient, mirror: BoardMirror, what: str) -> None:
        """A script filling a column: fast regular writes while the cursor stays put."""
        rng = self.rng
        await self._set_status(client, None, self._activity("running_automation", what))
        x, y = self._pos
        for row in range(max(y, 1), min(y + rng.randint(3, 6), mirror.meta.height)):
            value = plausible_value(x, row, mirror.cells.value(x, row), rng)
            await client.set_cell(self.board, x, row, value)
            await self._pause(rng.uniform(0.15, 0.4))
        await self._set_status(client, None, self._activity("viewing"))

    # --- helpers ----------------------------------------------------------------------

    def _activity(self, kind: ActivityKind, detail: str | None = None) -> Activity:
        return Activity(kind=kind, board=self.board, detail=detail)

    async def _set_status(
        self, client: CollabClient, status: Status | None, activity: Activity
    ) -> None:
        """Presence is decoration: a lost reply is restored by the client on reconnect."""
        if status is not None:
            self._status = status
            if status == "online":
                self._status_until = math.inf
        try:
            await client.set_status(status, activity)
        except NotConnected:
            logger.debug("demo teammate %s: status not sent, client is reconnecting", self.user)

    def _clamp(
        self, cell: tuple[int, int], mirror: BoardMirror, header: bool = False
    ) -> tuple[int, int]:
        width, height = mirror.meta.width, mirror.meta.height
        top = 0 if header or height == 1 else 1
        return min(max(cell[0], 0), width - 1), min(max(cell[1], top), height - 1)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _pause(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    async def _nap(self, seconds: float, *, scaled: bool = True) -> None:
        """Wait, but get up at once when it is time to leave."""
        wait = max(0.0, seconds / self.speed if scaled else seconds)
        try:
            async with asyncio.timeout(wait):
                await self._leave.wait()
        except TimeoutError:
            pass


def _pick(options: tuple[str, ...], roll: float) -> str:
    return options[int(roll * len(options)) % len(options)]


async def close_quietly(client: CollabClient, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
    """Close within a bound, even while being cancelled, so no client outlives the demo."""
    closing = asyncio.create_task(client.close(), name=f"demo-close-{client.client_id}")
    cancelled = False
    try:
        await asyncio.wait({closing}, timeout=timeout_s)
    except asyncio.CancelledError:
        cancelled = True
        await asyncio.wait({closing}, timeout=timeout_s)
    if not closing.done():
        logger.warning("demo client %s did not close in %.1f s", client.client_id, timeout_s)
        closing.cancel()  # also cancels the client's own task, which close() awaits
        await asyncio.wait({closing})
    if not closing.cancelled() and closing.exception() is not None:
        logger.warning("demo client %s failed to close: %r", client.client_id, closing.exception())
    if cancelled:
        raise asyncio.CancelledError


# --- the team -----------------------------------------------------------------------


async def _come_and_go(crew: list[Teammate], rng: random.Random, speed: float) -> None:
    """Every 30 to 90 s one present teammate steps out for 5 to 20 s."""
    while True:
        await asyncio.sleep(rng.uniform(30.0, 90.0) / speed)
        start, length = rng.randrange(len(crew)), rng.uniform(5.0, 20.0)
        for offset in range(len(crew)):
            mate = crew[(start + offset) % len(crew)]
            if mate.present:
                mate.take_break(length)
                break


async def run_demo(
    url: str,
    team: str,
    board: str,
    *,
    teammates: int = 4,
    seed: int | None = None,
    speed: float = 1.0,
) -> None:
    """Run simulated teammates until cancelled.

    They come and go, change status, move cursors plausibly and type into cells. Never
    returns on its own and raises nothing but `CancelledError` (bad arguments aside): a
    lost server is the clients' business, they reconnect by themselves. Cancelling
    closes every teammate's client before the cancellation completes.
    """
    if speed <= 0:
        raise ValueError(f"speed must be positive, not {speed}")
    if teammates < 1:
        raise ValueError(f"at least one teammate is needed, not {teammates}")
    if teammates > len(CAST):
        logger.info("the demo has %d teammates; running all of them", len(CAST))
    arrivals = teammate_rng(seed, "arrivals")
    crew = [
        Teammate(
            url,
            team,
            board,
            member,
            rng=teammate_rng(seed, member.user),
            speed=speed,
            # The first one arrives at once (and creates the board); the rest trickle in.
            arrive_after_s=0.0 if index == 0 else index * arrivals.uniform(0.4, 1.2),
        )
        for index, member in enumerate(CAST[:teammates])
    ]
    logger.info("demo: %d teammates on %s/%s at %gx speed", len(crew), team, board, speed)
    async with asyncio.TaskGroup() as group:
        for mate in crew:
            group.create_task(mate.run(), name=f"demo-{mate.user}")
        group.create_task(
            _come_and_go(crew, teammate_rng(seed, "come-and-go"), speed), name="demo-come-and-go"
        )
