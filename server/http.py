"""Plain HTTP on the WebSocket port: health, the team's presence, and upgrade auth."""

from __future__ import annotations

import ipaddress
import json
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Response

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
    name = name.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
