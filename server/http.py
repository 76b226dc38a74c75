"""Plain HTTP on the WebSocket port: liveness, readiness, metrics, the team's presence, and the
refusals every request may get (a repeated `Authorization` header; in open mode, a
`Host` or `Origin` that is not this machine's). The upgrade itself is `server.app`'s."""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from server import __version__
from server.audit import AUTH_FAILED, HTTP_REFUSED, audit
from server.auth import AuthError, MalformedHeader, authorization, bearer_token
from server.context import ServerContext
from server.metrics import CONTENT_TYPE_LATEST
from server.outbound import peer_ip
from server.readiness import readiness
from tui_collab.hosts import is_loopback
from tui_collab.protocol import encode, is_identifier

WS_PATH = "/ws"


def json_response(status: HTTPStatus, body: Any) -> Response:
    payload = json.dumps(body, separators=(",", ":")).encode()
    headers = Headers(
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
        ]
    )
    return Response(status.value, status.phrase, headers, payload)


def text_response(connection: ServerConnection, status: HTTPStatus, text: str) -> Response:
    return connection.respond(status, text + "\n")


def unauthorized(connection: ServerConnection, reason: str) -> Response:
    response = text_response(connection, HTTPStatus.UNAUTHORIZED, reason)
    response.headers["WWW-Authenticate"] = 'Bearer realm="tui-collab"'
    return response


def path_of(target: str) -> str:
    return target.split("?", 1)[0]


def loopback_host(host: str, port: int, default_port: int = 80) -> bool:
    """Whether a `Host` header names this machine's loopback and `port`: `localhost`
    (or a name under `.localhost`, which browsers keep on loopback), 127.0.0.0/8 or
    [::1]. A page that rebinds its own name to 127.0.0.1 still sends that name."""
    name, port_text = host, ""
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return False
        port_text = rest[1:]
    elif ":" in host:
        name, _, port_text = host.rpartition(":")
    if port_text:
        if not (port_text.isascii() and port_text.isdigit()) or int(port_text) != port:
            return False
    elif port != default_port:
        return False
    return is_loopback(name)


class HttpRoutes:
    """Answers every plain HTTP request; `refuse` comes first, for the upgrade too."""

    def __init__(
        self,
        ctx: ServerContext,
        port: Callable[[], int],
        draining: Callable[[], bool] = lambda: False,
    ) -> None:
        self._ctx = ctx
        self._port = port
        self._draining = draining

    async def answer(self, connection: ServerConnection, request: Request, path: str) -> Response:
        """The response to a request for `path`, anything but the WebSocket's."""
        if path == "/healthz":
            return json_response(
                HTTPStatus.OK,
                {
                    "status": "ok",
                    "version": __version__,
                    "node": self._ctx.node,
                    "epoch": self._ctx.store.epoch,
                    "connections": self._ctx.hub.connection_count,
                },
            )
        if path == "/readyz":
            return await self._readyz()
        if path == "/metrics":
            body = self._ctx.metrics.exposition()
            headers = Headers(
                [
                    ("Content-Type", CONTENT_TYPE_LATEST),
                    ("Content-Length", str(len(body))),
                    ("Connection", "close"),
                ]
            )
            return Response(200, "OK", headers, body)
        if path == "/api/presence":
            return await self._presence_api(connection, request)
        return text_response(connection, HTTPStatus.NOT_FOUND, "not found")

    async def _readyz(self) -> Response:
        """200 while the store answers; 503 while it does not, or while draining."""
        state = await readiness(self._ctx.store, self._draining())
        body: dict[str, Any] = {"status": state.status, "node": self._ctx.node}
        if state.reason:
            body["reason"] = state.reason
        status = HTTPStatus.OK if state.ready else HTTPStatus.SERVICE_UNAVAILABLE
        return json_response(status, body)

    def refuse(self, connection: ServerConnection, request: Request, path: str) -> Response | None:
        """What no endpoint should read: a repeated `Authorization` header (400); and, in
        open mode, plain HTTP (not the upgrade, which checks `Origin` itself) for a Host
        other than loopback with this port, or from an `Origin` not allowed (403). A page
        whose name was rebound to 127.0.0.1 must not read presence or metrics."""
        headers = request.headers
        try:
            authorization(headers.get_all("Authorization"))
        except MalformedHeader as exc:
            return self._refuse_http(connection, HTTPStatus.BAD_REQUEST, str(exc), "header")
        if self._ctx.config.auth != "open" or path == WS_PATH:
            return None
        hosts = headers.get_all("Host")
        default_port = 443 if self._ctx.config.certfile else 80
        if len(hosts) != 1 or not loopback_host(hosts[0], self._port(), default_port):
            return self._refuse_http(
                connection,
                HTTPStatus.FORBIDDEN,
                f"open mode answers only for localhost:{self._port()}",
                "host",
                host=",".join(hosts) or "-",
            )
        origins = headers.get_all("Origin")
        if origins and (len(origins) > 1 or origins[0] not in self._ctx.config.allowed_origins):
            return self._refuse_http(
                connection,
                HTTPStatus.FORBIDDEN,
                "origin not allowed (see --allowed-origin)",
                "origin",
                origin=",".join(origins),
            )
        return None

    def _refuse_http(
        self,
        connection: ServerConnection,
        status: HTTPStatus,
        text: str,
        reason: str,
        **extra: str,
    ) -> Response:
        audit(HTTP_REFUSED, ip=peer_ip(connection), status=status.value, reason=reason, **extra)
        return text_response(connection, status, text)

    async def _presence_api(self, connection: ServerConnection, request: Request) -> Response:
        token = bearer_token(request.headers.get("Authorization"))
        if token is None and self._ctx.config.auth == "open":
            # An open server listens on loopback only and trusts whoever can reach it.
            team = parse_qs(urlsplit(request.path).query).get("team", [""])[0]
            if not is_identifier(team):
                return text_response(
                    connection, HTTPStatus.BAD_REQUEST, "open mode: pass ?team=TEAM"
                )
        else:
            try:
                team = self._ctx.verifier.verify(token or "").team
            except AuthError as exc:
                audit(AUTH_FAILED, ip=peer_ip(connection), stage="http", reason=exc)
                return unauthorized(connection, str(exc))
        # Read only: a query (in open mode, anyone's) must not make the server watch a team.
        members = [json.loads(encode(m)) for m in await self._ctx.presence.view_team(team)]
        return json_response(HTTPStatus.OK, {"team": team, "members": members})
