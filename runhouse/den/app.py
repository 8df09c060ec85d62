"""Den's ASGI app: ``create_app(settings, db)``; no module-level app, no import-time effects.

Routes live in ``api/`` (one router per noun); errors have the contract's JSON body
(``errors.py``); request bodies over ``settings.max_body`` are refused with 413 before
they are read in full.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runhouse._version import __version__
from runhouse.den import crypto, errors
from runhouse.den.api import (
    access,
    audit,
    defaults,
    grants,
    groups,
    health,
    resources,
    secrets,
    users,
)
from runhouse.den.db.session import Database
from runhouse.den.settings import DenSettings


def create_app(
    settings: DenSettings, db: Database | None = None, keyring: crypto.Keyring | None = None
) -> FastAPI:
    """Den's app over ``db`` (opened, and migrated, from the settings if not given), sealing
    secrets with ``keyring`` (the settings' master key if not given)."""
    from runhouse.den.bootstrap import master_keyring, open_database

    if db is None:
        db = open_database(settings)
    if keyring is None:
        keyring = master_keyring(settings, db)
    app = FastAPI(
        title="Den",
        description="Runhouse's metadata server: names, versions, sharing and groups.",
        version=__version__,
        openapi_url="/v1/openapi.json",
        docs_url=None,  # the interactive pages load scripts from a CDN: not on a private net
        redoc_url=None,
    )
    app.state.db = db
    app.state.settings = settings
    app.state.keyring = keyring
    for module in (health, users, resources, grants, groups, access, defaults, audit, secrets):
        app.include_router(module.router)
    errors.install(app)
    app.add_middleware(BodyLimit, max_body=settings.max_body)
    return app


# A body over the limit is still read (and dropped) up to this many times the limit, so that
# the client gets the 413; past that the connection is closed on it.
_DRAIN_FACTOR = 16


class BodyLimit:
    """Refuse a request body over ``max_body`` bytes with 413: at once when Content-Length
    says so, else as soon as the bytes received pass the limit. The body (at most
    ``max_body``) is read before the app runs, then handed to it as one message."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (lifespan and other scopes pass through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        drain_cap = self.max_body * _DRAIN_FACTOR
        if length is not None and length > drain_cap:
            await _too_large(send, self.max_body, close=True)
            return
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            more = message.get("more_body", False)
            if received > self.max_body:
                # Most clients send the whole body before they read an answer: reading (and
                # dropping) the rest lets them see the 413 rather than a broken connection.
                while more and received <= drain_cap:
                    message = await receive()
                    received += len(message.get("body", b""))
                    more = message["type"] == "http.request" and message.get("more_body", False)
                await _too_large(send, self.max_body, close=more)
                return
            chunks.append(chunk)
            if not more:
                break
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([whole], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replaying() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return replaying


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send, limit: int, close: bool) -> None:
    body = json.dumps(
        {
            "error": "too_large",
            "message": f"the request body is over Den's limit of {limit} bytes; send less "
            "(configs should be small: keep data in storage, not in a config)",
        }
    ).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
