"""A minimal ASGI application (read the body, answer a fixed JSON) under uvicorn, plain or with fedgate's
connection protocol (``gateway/connections.py``): what the protocol costs per request, with nothing else
in the way. ``bench.servers`` starts it.

    python -m bench.bare_server {plain,guarded} PORT
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send

from gateway.connections import ConnectionLimits, ServerConfig
from gateway.settings import ServerSettings

ANSWER = b'{"data":{"ok":true}}'


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": ANSWER})


def main(argv: list[str]) -> None:
    kind, port = argv
    options: dict[str, Any] = {"port": int(port), "loop": "uvloop", "log_level": "warning", "access_log": False,
                               "lifespan": "off", "ws": "none"}  # fmt: skip
    if kind == "guarded":
        config: uvicorn.Config = ServerConfig(app, ConnectionLimits.from_settings(ServerSettings()), **options)
    else:
        config = uvicorn.Config(app, http="httptools", **options)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main(sys.argv[1:])
