"""Team presence: who is online, their status and activity, and when they were last seen.

A user is online while they hold at least one connection. The status they choose
sticks across all their connections (the last `presence.set` wins) until they go
offline. A clean close of the last connection makes them offline at once; a lost one
waits a grace period first, so a network blip does not make them flap. Every visible
change reaches the team once (a `presence` frame, or an entry of a `presence.batch`),
and is persisted.

With several nodes, each node holds its own connections' view of a user (a *part*) and
shares it; every node merges the same parts the same way (connections add up, the
status set last wins), so a user on two nodes is one presence. A node withdraws its part
when the user's last connection there ends, and the withdrawal carries that moment, so
every node shows the same last_seen (the latest moment known, wherever it came from).

Events go out in leading-edge windows per team (`hub.Window`, 50 ms): a lone change at
once as `presence`, changes within a window at its end as one `presence.batch` holding
each changed user's latest view, encoded once for every recipient. A storm of N
arrivals thus costs each member O(1) frames per window, not N. Changes other nodes
report go through the same window. Each member's view is kept encoded, and so is the
team's list, so a `welcome` splices it in instead of encoding every member per joiner.

A heartbeat writes, for the users this node holds, when it last knew them connected
(`alive_at`); after a crash that moment, not the restart, becomes their last_seen.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from server.cluster import Cluster, LocalCluster, Part
from server.hub import Hub, Session, Window, grows_with
from server.json_lists import appended
from server.store.base import AliveMark, PresenceRecord, Store
from tui_collab.protocol import Activity, Presence, PresenceStatus, Status, encode, utc_now

logger = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, Any]], None]


@dataclass(slots=True)
class _UserPresence:
    team: str
    user: str
    name: str
    chosen: Status = "online"
    activity: Activity | None = None
    last_seen: datetime | None = None
    connections: int = 0
    online: bool = False
    grace: asyncio.TimerHandle | None = None
    lost_at: datetime | None = None
    published: Presence | None = None
    set_at: float = 0.0
    """When the status or activity was last chosen here; the latest across nodes wins."""
    remote: dict[str, Part] = field(default_factory=dict)
    """Other nodes' parts of this user, by node."""
    shared: Part | None = None
    alive_marked: datetime | None = None
    """The alive_at the heartbeat last wrote for a user in their grace period."""


def _latest(first: datetime | None, second: datetime | None) -> datetime | None:
    if first is None:
        return second
    return first if second is None else max(first, second)


def _moment(text: str | None) -> datetime | None:
    """A timestamp another node sent; a malformed one counts as none."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class PresenceTracker:
    def __init__(
        self,
        store: Store,
        hub: Hub,
        spawn: Spawn,
        grace_s: float,
        clock: Callable[[], datetime] = utc_now,
        cluster: Cluster | None = None,
        heartbeat_s: float = 30.0,
        batch_s: float = 0.05,
    ) -> None:
        self._cluster: Cluster = cluster or LocalCluster("local")
        self._store = store
        self._hub = hub
        self._spawn = spawn
        self._grace_s = grace_s
        self._clock = clock
        self._heartbeat_s = heartbeat_s
        self._beat: asyncio.TimerHandle | None = None
        self._teams: dict[str, dict[str, _UserPresence]] = {}
        self._loading: dict[str, asyncio.Lock] = {}
        self._batch_s = batch_s
        self._windows: dict[str, Window] = {}
        self._pending: dict[str, dict[str, None]] = {}
        """Per team, the users whose change waits for the end of the window, in order."""
        self._encoded: dict[str, dict[str, str]] = {}
        """Per team, each member's published view as JSON."""
        self._members_json: dict[str, str] = {}
        """Per team, the JSON list of every member, until a member changes."""

    async def ensure_team(self, team: str) -> None:
        """Load a team's stored presence once, so members who are offline are listed too."""
        if team in self._teams:
            return
        lock = self._loading.setdefault(team, asyncio.Lock())
        async with lock:
            if team in self._teams:
                return
            remote = await self._cluster.watch_team(team)
            users = self._load(team, await self._store.load_presence(team), remote)
            self._teams[team] = users
            encoded = self._encoded.setdefault(team, {})
            self._members_json.pop(team, None)
            for state in users.values():
                state.published = self._view(state)
                encoded[state.user] = encode(state.published)

    async def view_team(self, team: str) -> list[Presence]:
        """The team's members, as `members` would list them, without watching the team.

        For HTTP queries: a team nobody here is connected to is read from the store and
        the other nodes' live parts, and no state, subscription or timer is made for it.
        """
        if team in self._teams:
            return self.members(team)
        remote = await self._cluster.team_parts(team)
        users = self._load(team, await self._store.load_presence(team), remote)
        return [self._view(state) for state in users.values()]

    @staticmethod
    def _load(
        team: str, records: list[PresenceRecord], remote: dict[str, dict[str, Part]]
    ) -> dict[str, _UserPresence]:
        """A team's users from its stored records and other nodes' parts."""
        users = {}
        for r in records:
            last_seen = r.last_seen
            if r.status != "offline" and r.user not in remote:
                # Stored online, yet no live node holds them: a crash cut them off
                # (with SQLite, reset_presence already did this at start).
                last_seen = _latest(last_seen, r.alive_at)
            users[r.user] = _UserPresence(team=team, user=r.user, name=r.name, last_seen=last_seen)
        for user, parts in remote.items():
            state = users.get(user)
            if state is None:
                name = str(next(iter(parts.values())).get("name", user))
                state = users[user] = _UserPresence(team=team, user=user, name=name)
            state.remote = dict(parts)
        return users

    # --- other nodes -----------------------------------------------------------------------

    def remote_part(
        self, team: str, user: str, node: str, part: Part | None, last_seen: str | None = None
    ) -> None:
        """Another node's view of a user changed, or it withdrew it at `last_seen`."""
        users = self._teams.get(team)
        if users is None:
            return  # nobody here watches this team
        if part is None:
            state = users.get(user)
            if state is None:
                return
            dropped = state.remote.pop(node, None) is not None
            seen = _latest(state.last_seen, _moment(last_seen))
            if not dropped and seen == state.last_seen:
                return
            state.last_seen = seen
        else:
            state = self._state(team, user, str(part.get("name", user)))
            state.remote[node] = part
        self._publish(state)

    def node_down(self, node: str) -> None:
        """A node is gone: its users' parts go with it, once we know when it last saw them."""
        for team, users in self._teams.items():
            held = [state for state in users.values() if node in state.remote]
            if held:
                self._spawn(self._drop_node(team, node, held))

    async def _drop_node(self, team: str, node: str, held: list[_UserPresence]) -> None:
        # A dead node cannot say when its users left. Its heartbeat in the store can, and
        # every node reads the same value there, so they all show the same last_seen.
        alive: dict[str, datetime] = {}
        try:
            for record in await self._store.load_presence(team):
                if record.alive_at is not None:
                    alive[record.user] = record.alive_at
        except Exception as exc:
            logger.warning("node %s is gone; its users' last heartbeat is unknown: %s", node, exc)
        now = self._clock()
        for state in held:
            if state.remote.pop(node, None) is None:
                continue  # a resync meanwhile found the node gone too
            if state.connections == 0 and not state.remote:
                state.last_seen = _latest(state.last_seen, alive.get(state.user, now))
            self._publish(state)

    async def resync(self) -> None:
        """After a broken link to the other nodes: share our parts again, reread theirs.

        A withdrawal lost meanwhile took its last_seen with it; the store has it.
        """
        for team, users in list(self._teams.items()):  # a team may be added meanwhile
            for state in users.values():
                if state.shared is not None:
                    self._cluster.publish_part(team, state.user, state.shared)
            remote = await self._cluster.watch_team(team)
            records = await self._store.load_presence(team)
            for state in users.values():
                state.remote = {}
            for record in records:
                known = users.get(record.user)
                if known is not None:
                    known.last_seen = _latest(known.last_seen, record.last_seen)
            self._adopt(team, remote)
            for state in list(users.values()):
                self._publish(state)

    def _adopt(self, team: str, remote: dict[str, dict[str, Part]]) -> None:
        """Take other nodes' parts, by user then node, as the team's remote views."""
        for user, parts in remote.items():
            name = str(next(iter(parts.values())).get("name", user))
            self._state(team, user, name).remote = dict(parts)

    def connected(self, session: Session) -> None:
        state = self._state(session.team, session.user, session.identity.name)
        state.name = session.identity.name
        self._cancel_grace(state)
        if not state.online:
            state.online = True
            state.chosen = "online"
            state.activity = None
            state.set_at = time.time()
        state.connections += 1
        self._publish(state)
        if self._beat is None and self._heartbeat_s > 0:
            self._beat = asyncio.get_running_loop().call_later(self._heartbeat_s, self._heartbeat)

    def disconnected(self, session: Session, clean: bool) -> None:
        state = self._teams[session.team][session.user]
        state.connections -= 1
        if state.connections > 0:
            self._publish(state)
            return
        state.lost_at = self._clock()
        if clean or self._grace_s <= 0:
            self._go_offline(state)
            return
        logger.debug(
            "connection of %s/%s lost; offline in %.1f s unless it returns",
            state.team,
            state.user,
            self._grace_s,
        )
        loop = asyncio.get_running_loop()
        state.grace = loop.call_later(self._grace_s, self._grace_expired, state)

    def set(
        self,
        session: Session,
        status: Status | None,
        activity: Activity | None,
        clear_activity: bool = False,
    ) -> None:
        state = self._teams[session.team][session.user]
        if status is not None:
            state.chosen = status
        if activity is not None or clear_activity:
            state.activity = activity
        state.set_at = time.time()
        self._publish(state)

    def online_count(self) -> int:
        """Users with a connection to this node."""
        return sum(s.online for users in self._teams.values() for s in users.values())

    def members(self, team: str) -> list[Presence]:
        return [self._current(state) for state in self._teams.get(team, {}).values()]

    def members_json(self, team: str) -> str:
        """`members(team)` as a JSON list, kept between changes: a welcome splices it in."""
        cached = self._members_json.get(team)
        if cached is None:
            users = self._teams.get(team, {})
            encoded = self._encoded.setdefault(team, {})
            if len(encoded) != len(users):
                for state in users.values():
                    if state.user not in encoded:
                        encoded[state.user] = encode(self._current(state))
            # Joined straight from the kept encodings (in the order members were first
            # encoded): during a crowd's arrival every welcome finds the list changed,
            # and a per-member step here was a tenth of the server's time at 1,200.
            cached = "[" + ",".join(encoded.values()) + "]"
            self._members_json[team] = cached
        return cached

    def member(self, team: str, user: str) -> Presence | None:
        state = self._teams.get(team, {}).get(user)
        return None if state is None else self._current(state)

    def shutdown(self) -> None:
        """Cancel the timers; the store marks everyone offline on the next start."""
        if self._beat is not None:
            self._beat.cancel()
            self._beat = None
        for users in self._teams.values():
            for state in users.values():
                self._cancel_grace(state)
        for window in self._windows.values():
            window.close()

    def _heartbeat(self) -> None:
        """Write when this node last knew its users connected, in one store call.

        A user in their grace period was last known at the moment the connection was
        lost; that is written once. With nobody to write, the timer stops until the next
        connection.
        """
        now = self._clock()
        marks: list[AliveMark] = []
        for users in self._teams.values():
            for state in users.values():
                if state.connections > 0:
                    marks.append(AliveMark(state.team, state.user, now))
                elif (
                    state.grace is not None
                    and state.lost_at is not None
                    and state.lost_at != state.alive_marked
                ):
                    state.alive_marked = state.lost_at
                    marks.append(AliveMark(state.team, state.user, state.lost_at))
        if not marks:
            self._beat = None
            return
        self._spawn(self._mark_alive(marks))
        self._beat = asyncio.get_running_loop().call_later(self._heartbeat_s, self._heartbeat)

    async def _mark_alive(self, marks: list[AliveMark]) -> None:
        try:
            await self._store.mark_alive(marks)
        except Exception as exc:
            # The next beat writes again; until then a crash leaves an older alive_at.
            logger.warning("presence heartbeat of %d users not stored: %s", len(marks), exc)

    def _state(self, team: str, user: str, name: str) -> _UserPresence:
        users = self._teams.setdefault(team, {})
        state = users.get(user)
        if state is None:
            state = users[user] = _UserPresence(team=team, user=user, name=name)
        return state

    def _grace_expired(self, state: _UserPresence) -> None:
        state.grace = None
        if state.connections == 0:
            self._go_offline(state)

    def _go_offline(self, state: _UserPresence) -> None:
        # last_seen is when the last connection ended, not when the grace period ran out
        # (never earlier than a moment another node already reported).
        state.last_seen = _latest(state.last_seen, state.lost_at or self._clock())
        state.online = False
        state.activity = None
        self._publish(state)

    @staticmethod
    def _cancel_grace(state: _UserPresence) -> None:
        if state.grace is not None:
            state.grace.cancel()
            state.grace = None

    def _status(self, state: _UserPresence) -> PresenceStatus:
        return state.chosen if state.online else "offline"

    def _part(self, state: _UserPresence) -> Part:
        """This node's view of the user, as shared with the others."""
        return {
            "name": state.name,
            "status": self._status(state),
            "activity": None if state.activity is None else state.activity.model_dump(),
            "connections": state.connections,
            "set_at": state.set_at,
            "last_seen": None if state.last_seen is None else state.last_seen.isoformat(),
        }

    def _view(self, state: _UserPresence) -> Presence:
        """The user as the team sees them: this node's part merged with the others'."""
        connections = state.connections
        choices: list[tuple[float, PresenceStatus, Activity | None]] = []
        if state.online:
            choices.append((state.set_at, state.chosen, state.activity))
        last_seen = state.last_seen
        for part in state.remote.values():
            connections += int(part.get("connections", 0))
            if part.get("status", "offline") != "offline":
                activity = part.get("activity")
                choices.append(
                    (
                        float(part.get("set_at", 0.0)),
                        part["status"],
                        None if activity is None else Activity.model_validate(activity),
                    )
                )
            seen = part.get("last_seen")
            if seen is not None:
                moment = datetime.fromisoformat(seen)
                last_seen = moment if last_seen is None else max(last_seen, moment)
        if choices:
            _, status, activity = max(choices, key=lambda choice: choice[0])
        else:
            status, activity = "offline", None
        return Presence(
            user=state.user,
            name=state.name,
            status=status,
            activity=activity,
            last_seen=last_seen,
            connections=connections,
        )

    def _announce(self, team: str, user: str, view: Presence) -> None:
        """Keep the new view encoded and send it in the team's window."""
        encoded = self._encoded.setdefault(team, {})
        newcomer = user not in encoded
        encoded[user] = encode(view)
        kept = self._members_json.pop(team, None)
        if newcomer and kept is not None:
            # The kept list is in the order members were first encoded: they go last.
            self._members_json[team] = appended(kept, encoded[user])
        self._pending.setdefault(team, {})[user] = None
        window = self._windows.get(team)
        if window is None:
            window = self._windows[team] = Window(
                grows_with(self._batch_s, lambda: self._hub.team_size(team)),
                lambda: self._flush(team),
            )
        window.poke()

    def _flush(self, team: str) -> bool:
        """One frame for the team's pending changes: `presence` for one, else a batch."""
        pending = self._pending.pop(team, None)
        if not pending:
            return False
        encoded = self._encoded[team]
        if len(pending) == 1:
            frame = encoded[next(iter(pending))]
        else:
            members = ",".join(encoded[user] for user in pending)
            frame = f'{{"type":"presence.batch","members":[{members}]}}'
        self._hub.to_team(team, frame)
        return True

    def _current(self, state: _UserPresence) -> Presence:
        # The last published view is the current one: every visible change is published
        # (and during a grace period, what others saw last is what they should keep
        # seeing). Reusing it keeps a welcome to a big team from rebuilding every member.
        return state.published if state.published is not None else self._view(state)

    def _publish(self, state: _UserPresence) -> None:
        if state.grace is not None:
            return
        part = self._part(state)
        if part != state.shared and (state.connections or state.shared is not None):
            if state.connections or state.online:
                state.shared = part
                self._cluster.publish_part(state.team, state.user, part)
            else:
                state.shared = None
                seen = None if state.last_seen is None else state.last_seen.isoformat()
                self._cluster.withdraw_part(state.team, state.user, seen)
        view = self._view(state)
        if view == state.published:
            return
        state.published = view
        self._announce(state.team, state.user, view)
        record = PresenceRecord(
            team=state.team,
            user=state.user,
            name=state.name,
            status=view.status,
            activity_json=None if view.activity is None else view.activity.model_dump_json(),
            last_seen=state.last_seen,
            alive_at=self._clock() if state.connections else None,
        )
        self._spawn(self._store.save_presence(record))
