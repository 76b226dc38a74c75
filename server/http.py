"""Plain HTTP on the WebSocket port: health, the team's presence, and upgrade auth."""

from __future__ import annotations

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
