"""The server process: the glue between `websockets` and the core.

Plain HTTP is answered by `server.http`, admission decided by `server.admission`, and
messages handled by `server.dispatch`; here they are wired to sockets.

A connection's life: `process_request` answers plain HTTP and checks an
`Authorization` header before the upgrade; the handler then waits for `hello`, sends
`welcome`, and feeds every later frame to `dispatch`. A bad frame becomes one `error`
frame, never an exception that ends the handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, cast

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from server.admission import (
    Admission,
    AdmissionLimits,
    HelloRefusal,
    Refusal,
    UpgradeGuard,
    hello_identity,
)
from server.audit import (
    AUTH_FAILED,
    CAP_REFUSED,
    audit,
    audit_logger,
    audit_record,
)
from server.auth import (
    AuthError,
    Identity,
    TokenVerifier,
    bearer_token,
)
from server.boards import BoardRooms
from server.cluster import Cluster, LocalCluster, RedisCluster
from server.cluster_sync import ClusterSync
from server.config import ServerConfig
from server.connection import CollabConnection
from server.context import ServerContext
from server.directory import BoardDirectory
from server.dispatch import Dispatcher
from server.forwarded import TrustedProxies
from server.http import WS_PATH, HttpRoutes, path_of, text_response, unauthorized
from server.hub import Hub, Session, close_reason
from server.join_stream import stream_parts
from server.limits import ConnectRate, FloodGuard, TokenBucket
from server.logs import RateLimitedLog
from server.metrics import Metrics
from server.notes import NotesHub, NotesLimits
from server.outbound import BacklogPolicy, Outbound, peer_address, peer_ip, socket_ip
from server.peer import Peer
from server.presence import PresenceTracker
from server.startup import listen_error, load_tls
from server.store import RedisStore, SQLiteStore, Store
from server.store.base import SessionRetention
from server.store.group_commit import StoreWriteFailed
from server.store.notes_store import notes_store_for
from server.turns import TurnGate
from server.upgrades import AcceptFailures
from tui_collab.protocol import (
    PROTOCOL_VERSION,
    BoardState,
    CloseCode,
    ErrorCode,
    ErrorMessage,
    Hello,
    Limits,
    ProtocolError,
    decode,
    encode,
)

logger = logging.getLogger(__name__)


def _retention(config: ServerConfig) -> SessionRetention:
    return SessionRetention(config.session_retention_s, config.sessions_per_user)


class _OverCap(ProtocolError):
    """A hello that authenticated but would pass the user's connection cap."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.error_code, refusal.hello_message)
        self.close_code = refusal.close_code


class CollabServer:
    """One server process. `async with CollabServer(config) as server:` serves until exit."""

    def __init__(self, config: ServerConfig, store: Store | None = None) -> None:
        self.config = config
        self.node = config.node or f"n-{secrets.token_hex(4)}"
        self.cluster: Cluster
        if config.redis_url is not None:
            self.store = store or RedisStore(
                config.redis_url, node=self.node, retention=_retention(config)
            )
            self.cluster = RedisCluster(config.redis_url, self.node, ttl_s=config.node_ttl_s)
        else:
            self.store = store or SQLiteStore(
                config.data_dir, config.durability, retention=_retention(config)
            )
            self.cluster = LocalCluster(self.node)
        self.metrics = Metrics()
        self.outbound = Outbound(
            BacklogPolicy(
                high_water=config.send_high_water_bytes,
                hard_cap=config.send_hard_cap_bytes,
                close_after_s=config.slow_close_after_s,
                close_grace_s=config.slow_close_grace_s,
                sweep_interval_s=min(0.5, config.slow_close_after_s / 4),
            ),
            self.metrics,
        )
        self.hub = Hub(self.outbound)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._recorded_users: dict[tuple[str, str], str] = {}
        """(team, user) -> the name this process stored for them."""
        self._background_failures = RateLimitedLog(logger)
        self.presence = PresenceTracker(
            self.store,
            self.hub,
            self.spawn,
            config.offline_grace_s,
            cluster=self.cluster,
            heartbeat_s=config.presence_heartbeat_s,
        )
        self.rooms = BoardRooms(
            self.store,
            config.cursor_interval_s,
            self.outbound,
            self.metrics,
            self.cluster,
            cell_window_from=config.cell_window_from,
        )
        self.metrics.track(lambda: self.hub.connection_count, self.presence.online_count)
        observe = getattr(self.store, "observe_commits", None)
        if observe is not None:
            observe(self.metrics.committed)
        self.limits = Limits(
            max_message_bytes=config.max_message_bytes,
            rate_per_s=config.rate_per_s,
            burst=config.burst,
            cell_ops_per_s=config.cell_ops_per_s,
            cell_ops_burst=config.cell_ops_burst,
            max_cell_chars=config.max_cell_chars,
            max_connections_per_user=config.max_connections_per_user,
            max_board_participants=config.max_board_participants,
            max_boards_per_team=config.max_boards_per_team,
            max_cells_per_board=config.max_cells_per_board,
            notes_max_bytes=config.notes_max_bytes,
            notes_update_max_bytes=config.notes_update_max_bytes,
        )
        self.notes = NotesHub(
            notes_store_for(self.store),
            self.outbound,
            self.cluster,
            self.spawn,
            config.cursor_interval_s,
            NotesLimits(config.notes_max_bytes, config.notes_update_max_bytes),
        )
        self.verifier = TokenVerifier(config.secret)
        self.arrivals = TurnGate()
        self.boards = BoardDirectory(self.store, self.rooms)
        self.context = ServerContext(
            config=config,
            store=self.store,
            hub=self.hub,
            outbound=self.outbound,
            metrics=self.metrics,
            cluster=self.cluster,
            presence=self.presence,
            rooms=self.rooms,
            boards=self.boards,
            verifier=self.verifier,
            stream=self._stream_parts,
            spawn=self.spawn,
            node=self.node,
            limits=self.limits,
            notes=self.notes,
            arrivals=self.arrivals,
        )
        self.dispatcher = Dispatcher(self.context)
        self.draining = False
        """Set by `drain` (SIGTERM): `/readyz` answers 503 while connections are still served."""
        self.http = HttpRoutes(self.context, lambda: self.port, lambda: self.draining)
        self._header_identity: weakref.WeakKeyDictionary[ServerConnection, Identity] = (
            weakref.WeakKeyDictionary()
        )
        # Who may connect: the caps, the connect rate, and the slots they count.
        self.admission: Admission[ServerConnection] = Admission(
            AdmissionLimits(
                max_connections=config.max_connections,
                max_unauthenticated_per_ip=config.max_unauthenticated_per_ip,
                max_connections_per_user=config.max_connections_per_user,
            ),
            ConnectRate(config.connects_per_user_s, config.connect_burst),
        )
        # Sockets still in the HTTP phase (accepted, not yet upgraded or answered).
        # Behind these, X-Forwarded-For names the client (for per-IP caps and audit lines);
        # one address carries many clients, so they are held to the total upgrade cap only.
        self.proxies = TrustedProxies(config.forwarded_allow_ips)
        self.upgrades: UpgradeGuard[ServerConnection] = UpgradeGuard(
            config.max_upgrading_per_ip, config.max_upgrading, exempt=self.proxies.trusts
        )
        self._upgrade_refusals = RateLimitedLog(audit_logger)
        self.accept_failures = AcceptFailures(logger)
        self._server: Server | None = None

    async def __aenter__(self) -> CollabServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server is not started"
        sockets = list(self._server.sockets)
        return int(sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        scheme = "wss" if self.config.certfile else "ws"
        return f"{scheme}://{shown}:{self.port}{WS_PATH}"

    async def start(self) -> None:
        """Open the store, join the cluster and listen; `StartupError` says why not.

        A failure part-way stops what was already started (the store's threads, the
        cluster's tasks), so a process that cannot start exits at once instead of
        waiting on them.
        """
        tls = None
        if self.config.certfile is not None:
            tls = load_tls(self.config.certfile, self.config.keyfile)
        try:
            await self._start(tls)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.stop()
            raise

    async def _start(self, tls: ssl.SSLContext | None) -> None:
        await self.store.open()
        await self.cluster.start(ClusterSync(self.context))
        await self.store.reset_presence()
        origins: list[str | None] | None
        if self.config.auth == "open" or self.config.allowed_origins:
            origins = [None, *self.config.allowed_origins]
        else:
            origins = None
        self.accept_failures.install(asyncio.get_running_loop())
        try:
            self._server = await serve(
                self._handle,
                self.config.host,
                self.config.port,
                compression=None,
                max_size=self.config.max_message_bytes,
                max_queue=16,
                ping_interval=self.config.ping_interval_s,
                ping_timeout=self.config.ping_timeout_s,
                # The whole HTTP phase (and a TLS handshake before it): a socket that has
                # not sent its request and had its answer by then is dropped.
                open_timeout=self.config.upgrade_timeout_s,
                close_timeout=self.config.close_timeout_s,
                server_header=None,
                origins=origins,  # type: ignore[arg-type]
                process_request=self._process_request,
                create_connection=CollabConnection.with_hooks(self),
                ssl=tls,
                # A team reconnecting after a restart arrives at once: the default backlog
                # of 100 makes the rest wait for a SYN retry (1 s and more).
                backlog=1024,
            )
        except OSError as exc:
            raise listen_error(self.config.host, self.config.port, exc) from exc
        self.outbound.start()
        logger.info(
            "listening on %s (auth=%s, store epoch %s)",
            self.url,
            self.config.auth,
            self.store.epoch,
        )

    def drain(self) -> None:
        """Say not ready (`/readyz` 503), so a load balancer sends new clients elsewhere,
        while the clients here are still served until `stop`."""
        if not self.draining:
            self.draining = True
            logger.info("draining: /readyz answers 503 until the server stops")

    async def stop(self) -> None:
        """Close every connection with 1001, then flush and close the store."""
        for room in self.rooms.rooms():
            room.news.flush()  # the acks waiting for it go out before the close
        if self._server is not None:
            self._server.close(close_connections=True)
            # Upgrades under way would otherwise hold shutdown up until their deadline.
            for connection in self.upgrades.connections():
                connection.transport.abort()
            await self._server.wait_closed()
            self._server = None
        await self.outbound.stop()
        await self.cluster.stop()
        self.presence.shutdown()
        self.rooms.close()
        self.notes.close_all()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.store.close()
        self._upgrade_refusals.flush()
        self.accept_failures.uninstall()
        logger.info("server stopped")

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run background work (store writes of presence) and keep a reference until done."""
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or (exc := task.exception()) is None:
            return
        if isinstance(exc, StoreWriteFailed):
            # Bookkeeping writes (presence, sessions) under a full disk: the store has
            # already said why, once per kind per interval; a traceback each adds nothing.
            self._write_failed(exc)
            return
        logger.error("background task failed", exc_info=exc)

    def _write_failed(self, exc: StoreWriteFailed) -> None:
        """A bookkeeping write nobody waits for failed: one line per interval."""
        self._background_failures.log(
            logging.WARNING, "store", "background store write failed: %s", exc
        )

    # --- HTTP ---------------------------------------------------------------------

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        self._forwarded_for(connection, request)
        path = path_of(request.path)
        refused = self.http.refuse(connection, request, path)
        if refused is not None:
            return refused
        if path != WS_PATH:
            return await self.http.answer(connection, request, path)
        await self.arrivals.turn()
        ip = peer_ip(connection)
        assert self._server is not None
        token = bearer_token(request.headers.get("Authorization"))
        refusal = self.admission.upgrade(
            connection, ip, len(self._server.all_connections), has_token=token is not None
        )
        if refusal is not None:
            return self._over_cap(connection, refusal, ip)
        if token is None:
            return None
        try:
            identity = self.verifier.verify(token)
        except AuthError as exc:
            logger.warning("refused upgrade from %s: %s", peer_address(connection), exc)
            audit(AUTH_FAILED, ip=ip, stage="upgrade", reason=exc)
            return unauthorized(connection, str(exc))
        refusal = self.admission.take_slot(connection, identity)
        if refusal is not None:
            return self._over_cap(connection, refusal, ip, identity)
        self._header_identity[connection] = identity
        return None

    def _forwarded_for(self, connection: ServerConnection, request: Request) -> None:
        """Behind a trusted proxy, take the client's address from X-Forwarded-For."""
        if not self.proxies or not isinstance(connection, CollabConnection):
            return
        tcp = socket_ip(connection)
        client = self.proxies.client_ip(tcp, request.headers.get_all("X-Forwarded-For"))
        if client != tcp:
            connection.client_ip = client

    # --- connection hooks (CollabConnection) ---------------------------------------

    def opened(self, connection: CollabConnection) -> None:
        """A new socket: in the HTTP phase, within the caps, or dropped unread at once."""
        ip = socket_ip(connection)  # the request, and any X-Forwarded-For, is still to come
        refusal = self.upgrades.admit(connection, ip)
        if refusal is None:
            return
        connection.transport.abort()
        cap = refusal.cap
        self.metrics.refused.labels(cap).inc()
        # A flood would make one audit line per socket: one per IP and cap per interval.
        self._upgrade_refusals.log(
            logging.WARNING, f"{cap} {ip}", "%s", audit_record(CAP_REFUSED, ip=ip, cap=cap)
        )

    def upgraded(self, connection: CollabConnection) -> None:
        self.upgrades.leave(connection)

    def closed(self, connection: CollabConnection) -> None:
        self.admission.release(connection)

    def _over_cap(
        self,
        connection: ServerConnection,
        refusal: Refusal,
        ip: str,
        identity: Identity | None = None,
    ) -> Response:
        self._count_refusal(refusal.cap, ip, identity)
        return text_response(connection, refusal.status, refusal.http_message)

    def _count_refusal(self, cap: str, ip: str, identity: Identity | None = None) -> None:
        self.metrics.refused.labels(cap).inc()
        audit(
            CAP_REFUSED,
            ip=ip,
            user=None if identity is None else identity.user,
            team=None if identity is None else identity.team,
            cap=cap,
        )

    # --- WebSocket ----------------------------------------------------------------

    def _stream_parts(
        self,
        peer: Peer,
        first: BoardState,
        bodies: Sequence[bytes],
        alive: Callable[[], bool],
    ) -> Awaitable[int]:
        connection = cast(CollabConnection, peer)  # sessions hold the sockets `serve` made
        return stream_parts(
            self.outbound, connection, first, bodies, self.config.slow_close_after_s, alive
        )

    async def _handle(self, ws: ServerConnection) -> None:
        try:
            await self._serve_connection(ws)
        finally:
            # Also given back when the socket ends; here it is given back as soon as the
            # session is gone, even if the socket is still closing.
            self.admission.release(ws)

    async def _serve_connection(self, ws: ServerConnection) -> None:
        try:
            session = await self._handshake(ws)
        finally:
            self.admission.said_hello(ws, peer_ip(ws))
            self._header_identity.pop(ws, None)
        if session is None:
            self.outbound.forget(ws)
            return
        try:
            async for frame in ws:
                await self.dispatcher.dispatch(session, frame)
                # `recv` returns at once while frames are queued, so without this a
                # client that pipelines many frames would hold the loop for all of
                # them; here every connection gets its turn after each frame.
                await asyncio.sleep(0)
        except ConnectionClosed:
            pass
        finally:
            await self._disconnect(session, ws)

    async def _handshake(self, ws: ServerConnection) -> Session | None:
        try:
            frame = await asyncio.wait_for(ws.recv(), self.config.hello_timeout_s)
        except TimeoutError:
            await ws.close(CloseCode.AUTH_FAILED, "no hello")
            return None
        except ConnectionClosed:
            return None
        await self.arrivals.turn()
        try:
            hello = decode(frame)
            if not isinstance(hello, Hello):
                raise ProtocolError(
                    ErrorCode.UNAUTHORIZED, "the first message must be hello", hello.id
                )
            if hello.v != PROTOCOL_VERSION:
                await self._refuse(
                    ws,
                    CloseCode.UNSUPPORTED_VERSION,
                    ProtocolError(
                        ErrorCode.UNSUPPORTED_VERSION,
                        f"protocol version {hello.v} is not supported; this server speaks "
                        f"{PROTOCOL_VERSION}",
                        hello.id,
                    ),
                )
                return None
            identity = self._identify(ws, hello)
        except _OverCap as exc:
            await self._refuse(ws, exc.close_code, exc)
            return None
        except ProtocolError as exc:
            await self._refuse(ws, CloseCode.AUTH_FAILED, exc)
            return None
        client_id = hello.client_id or f"c-{secrets.token_hex(8)}"
        assert isinstance(ws, CollabConnection)  # `serve` makes only these
        session = Session(
            ws=ws,
            identity=identity,
            client_id=client_id,
            outbound=self.outbound,
            metrics=self.metrics,
            bucket=TokenBucket(self.config.rate_per_s, self.config.burst),
            cell_bucket=TokenBucket(self.config.cell_ops_per_s, self.config.cell_ops_burst),
            flood=FloodGuard(self.config.flood_close_after_s),
        )
        self._record_user(identity)
        await self.presence.ensure_team(identity.team)
        boards = await self.boards.metas(identity.team)
        # From here until the session is registered nothing awaits: the joiner's snapshot
        # and the events it receives afterwards are cut at one instant, and `welcome` is
        # always its first frame.
        self.outbound.register(
            ws,
            user=identity.user,
            team=identity.team,
            on_drained=lambda: self.dispatcher.resend_cursors(session),
        )
        self.dispatcher.welcome(session, boards)
        logger.info(
            "connected %s user=%s team=%s client=%s peer=%s",
            session.id,
            identity.user,
            identity.team,
            client_id,
            peer_address(ws),
        )
        return session

    def _record_user(self, identity: Identity) -> None:
        """Store the member (for the member list after a restart) without holding up the
        welcome: under a join storm a hello waited some 200 ms for its turn in the
        writer's queue.

        The write is queued before `welcome` queues the user's first presence row (a
        task's first step runs in creation order and queues at once), which the user row
        must precede. A name this process already stored is not written again, so a
        team reconnecting after a restart writes nothing here. A failed write (a full
        disk) is forgotten, so the next connection tries again; it never locks anyone out.
        """
        key = (identity.team, identity.user)
        if self._recorded_users.get(key) == identity.name:
            return
        self._recorded_users[key] = identity.name

        async def record() -> None:
            try:
                await self.store.record_user(identity.team, identity.user, identity.name)
            except BaseException:
                if self._recorded_users.get(key) == identity.name:
                    del self._recorded_users[key]
                raise

        self.spawn(record())

    def _identify(self, ws: ServerConnection, hello: Hello) -> Identity:
        from_header = self._header_identity.pop(ws, None)
        if from_header is not None:
            return from_header
        identity = hello_identity(hello, self.config.auth == "open", self.verifier)
        if isinstance(identity, HelloRefusal):
            if identity.warn:
                logger.warning("refused hello from %s: %s", peer_address(ws), identity.message)
            if identity.audit_reason is not None:
                audit(AUTH_FAILED, ip=peer_ip(ws), stage="hello", reason=identity.audit_reason)
            raise ProtocolError(identity.error_code, identity.message, hello.id)
        refusal = self.admission.take_slot(ws, identity)
        if refusal is not None:
            self._count_refusal(refusal.cap, peer_ip(ws), identity)
            raise _OverCap(refusal)
        return identity

    async def _refuse(self, ws: ServerConnection, close_code: int, exc: ProtocolError) -> None:
        try:
            await ws.send(encode(ErrorMessage(code=exc.code, message=exc.message, re=exc.re)))
            await ws.close(close_code, close_reason(exc.message))
        except ConnectionClosed:
            pass

    async def _disconnect(self, session: Session, ws: ServerConnection) -> None:
        clean = ws.protocol.close_rcvd is not None
        self.outbound.forget(ws)
        self.dispatcher.goodbye(session, clean, ws.close_code)
        logger.info(
            "disconnected %s user=%s team=%s code=%s clean=%s",
            session.id,
            session.user,
            session.team,
            ws.close_code,
            clean,
        )
