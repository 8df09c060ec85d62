"""The daemon's object routes: store, fetch, delete and rename objects by key, in the env
(and replica) that holds them.

    PUT    /_rh/objects/{key}   ObjectRoutes.put     (?env=, ?resource=1, ?unique=1, ?path=)
    GET    /_rh/objects/{key}   ObjectRoutes.get
    DELETE /_rh/objects/{key}   ObjectRoutes.delete
    POST   /_rh/rename/{key}    ObjectRoutes.rename  (?to=)
    POST   /_rh/clear           ObjectRoutes.clear
"""

from __future__ import annotations

import json
import logging

from runhouse.daemon import asgi, inputs
from runhouse.daemon.asgi import HTTPError, Receive, Scope, Send
from runhouse.daemon.state import BASE_ENV, DaemonState
from runhouse.wire.frames import Kind

log = logging.getLogger("runhouse.daemon")
ANSWER = 10.0  # seconds a worker has for what takes it no time (delete, clear, rename)


def env_of(state: DaemonState, key: str) -> str:
    """The env holding ``key``; else a 404 naming the keys there are (a 400 if malformed)."""
    env = state.key_env.get(key)
    if env is None:
        inputs.key(key)  # a malformed key is a 400, not a 404
        keys = state.keys()
        raise HTTPError(
            404, "ObjectNotFoundError", f"no object with key {key!r}", key=key, keys=keys
        )
    return env


class ObjectRoutes:
    """Handlers for objects; each answers through ``send``."""

    def __init__(self, state: DaemonState, max_body: int) -> None:
        self.state = state
        self.max_body = max_body

    async def rename(self, scope: Scope, send: Send, old: str) -> None:
        """Give the object under ``old`` the key ``?to=``."""
        new = inputs.key(asgi.query(scope).get("to") or "", "new key")
        env = env_of(self.state, old)
        if new in self.state.key_env:
            raise HTTPError(
                409,
                "KeyExists",
                f"{new!r} is taken (env {self.state.key_env[new]!r}); delete it first",
            )
        replica = self.state.key_replica.get(old)
        if replica is None:
            workers = await self.state.replicas(env)
        else:
            workers = [await self.state.worker(env, replica)]
        request = {"op": "rename", "key": old, "to": new}
        frames = [await w.ask(request, timeout=ANSWER) for w in workers]
        if any(f.kind != Kind.RESULT or not json.loads(f.payload) for f in frames):
            keys = self.state.keys()
            raise HTTPError(404, "ObjectNotFoundError", f"no object {old!r}", key=old, keys=keys)
        blob = self.state.resources.get(env, {}).get(old)
        self.state.forget(old)
        self.state.remember(new, env, blob, replica or 0)
        await asgi.send_json(send, 200, {"key": new, "env": env})

    async def put(self, scope: Scope, receive: Receive, send: Send, key: str) -> None:
        """Store an object in an env's worker."""
        q = asgi.query(scope)
        env = inputs.name(q.get("env") or BASE_ENV, "env")
        body = await asgi.read_body(scope, receive, self.max_body)
        previous = self.state.key_env.get(key)
        if q.get("unique") == "1" and previous is not None and previous != env:
            # Unnamed code sent to a second env must not take the first one's key away.
            key = inputs.key(f"{key}@{env}")
            previous = self.state.key_env.get(key)
        resource = q.get("resource") == "1"  # a function or class: on every replica
        old_holders = self.state.holders(key)
        if resource:
            workers = await self.state.replicas(env)
        else:
            workers = [await self.state.worker(env)]
        path = q.get("path")
        for worker in workers:
            stream = worker.open({"op": "put", "key": key, "path": path}, body)
            await worker.drain()
            frame = await stream.next()
            if frame.kind != Kind.RESULT:
                return await asgi.send_frame(send, 400, frame.header, frame.payload)
        moved = previous is not None and previous != env
        stale = [w for w in old_holders if w not in workers]  # another env's, or replica's
        if moved:
            log.info("object %r moved from env %r to env %r", key, previous, env)
        for worker in stale:
            await worker.ask({"op": "delete", "keys": [key]}, timeout=ANSWER)
        replica = self.state.pools[env].index(workers[0]) or 0
        self.state.remember(key, env, (body, path) if resource else None, replica)
        answer = {"key": key, "env": env, "moved_from": previous if moved else None}
        await asgi.send_json(send, 200, answer)

    async def get(self, send: Send, key: str) -> None:
        """Fetch an object's value as a frame."""
        worker = await self.state.worker(env_of(self.state, key), self.state.key_replica.get(key))
        frame = await worker.ask({"op": "get", "key": key})
        status = 200 if frame.kind == Kind.RESULT else 400
        await asgi.send_frame(send, status, frame.header, frame.payload)

    async def delete(self, send: Send, key: str) -> None:
        """Delete one object."""
        env_of(self.state, key)
        for worker in self.state.holders(key):
            await worker.ask({"op": "delete", "keys": [key]}, timeout=ANSWER)
        self.state.forget(key)
        await asgi.send_json(send, 200, {"deleted": [key]})

    async def clear(self, send: Send) -> None:
        """Delete every object in every env."""
        for worker in self.state.live_workers():
            await worker.ask({"op": "clear"}, timeout=ANSWER)
        self.state.key_env.clear()
        self.state.key_replica.clear()
        self.state.resources.clear()
        await asgi.send_json(send, 200, {"cleared": True})
