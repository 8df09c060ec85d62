"""The daemon's ASGI app: ``create_app(state)``; no module-level app, no import-time effects.

Routes (``/_rh/...`` is the daemon's own API; everything else is ``/{key}/{method}``):

    GET    /_rh/health              liveness and versions (no token needed)
    GET    /_rh/openapi.json        the schema (no token needed)
    GET    /_rh/status              envs, workers, objects, uptime
    GET    /_rh/keys[?env=]         keys of objects held
    PUT    /_rh/envs/{name}         declare an env (JSON: env_vars)
    GET    /_rh/envs/{name}         whether the daemon knows an env (404 if not)
    POST   /_rh/venvs/{name}        give an env a venv of its own (for commands run in it)
    PUT    /_rh/secrets/{name}      set secret variables in an env's worker (memory only)
    PUT    /_rh/objects/{key}       store an object (pickle body; ?env=, ?resource=1)
    GET    /_rh/objects/{key}       fetch an object
    DELETE /_rh/objects/{key}       delete an object
    POST   /_rh/clear               delete every object
    POST   /_rh/cancel[/{key}]      cancel a run (by run key), every run of an object, or all
                                    (?force=1: replace the workers that ran them)
    POST   /_rh/rename/{key}?to=    give an object another key
    GET    /_rh/runs/{run_key}      wait for a run started with ?detach=1 and fetch its result
    POST   /_rh/data/{op}           a folder operation on the cluster's disk, in the base env
                                    (runhouse/data/remote_ops.py; a call's body and answer)
    POST   /{key}/{method}          call (pickle body, or JSON {"args", "kwargs"} for curl)
    GET    /{key}/{method}?a=1      call with the query as keyword arguments, or read an attribute

Keys are any printable text ("org/model" too): a call's method is the path's last segment.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import logging
import secrets
import sys
from typing import Any

from runhouse._version import __version__
from runhouse.daemon import asgi, inputs
from runhouse.daemon.asgi import HTTPError, Receive, Scope, Send
from runhouse.daemon.den_auth import DenGate
from runhouse.daemon.engines.base import Frame, WorkerNotResponding
from runhouse.daemon.env_routes import EnvRoutes
from runhouse.daemon.fanout import MapFanOut
from runhouse.daemon.object_routes import ANSWER, ObjectRoutes, env_of
from runhouse.daemon.openapi import schema
from runhouse.daemon.state import BASE_ENV, DaemonState, Run
from runhouse.data import remote_ops
from runhouse.exceptions import CallCancelledError, EngineError, PlacementError
from runhouse.wire import errors
from runhouse.wire.frames import HEADER, TERMINAL, Kind

log = logging.getLogger("runhouse.daemon")
_KEY_ROUTES = frozenset(
    {"objects", "cancel", "runs", "rename"}
)  # /_rh/<route>/<key, which may hold />
_PUBLIC = frozenset({"/_rh/health", "/_rh/openapi.json"})
_OPS = frozenset({"call", "map", "getattr", "setattr"})
_SINGLE_FRAME_STATUS = {Kind.REJECTED: 400}
_FAILED = frozenset({Kind.ERROR, Kind.REJECTED})
_KEEP_FINISHED_RUNS = 10_000
_SMALL_BODY = 1 << 16
DEFAULT_MAX_BODY = 2 * 1024**3


def create_app(
    state: DaemonState, max_body: int = DEFAULT_MAX_BODY, den: DenGate | None = None
) -> Any:
    """The daemon's ASGI application over ``state``; with ``den`` (den_auth), a token other
    than the daemon's own is let in when Den says its user may write the cluster."""
    routes = Routes(state, max_body)
    token = f"Bearer {state.token}".encode() if state.token else None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        try:
            if token is not None and path not in _PUBLIC:
                given = asgi.header(scope, b"authorization")
                if given is None:
                    raise HTTPError(
                        401, "AuthError", "missing token: send 'Authorization: Bearer <token>'"
                    )
                if not hmac.compare_digest(given, token):
                    if den is None:
                        raise HTTPError(403, "AuthError", "wrong token for this daemon")
                    await den.admit(scope, given)
            await routes.dispatch(scope, receive, send)
        except HTTPError as exc:
            await asgi.send_json(send, exc.status, exc.body())
        except WorkerNotResponding as exc:
            error = {"type": "WorkerNotResponding", "message": str(exc), "env": exc.env}
            await asgi.send_json(send, 504, {"error": error})
        except PlacementError as exc:  # a worker that cannot be placed (resources busy)
            fields = {"message": str(exc), "env": exc.env, "asked": exc.asked, "why": exc.why}
            await asgi.send_json(send, 400, {"error": {"type": "PlacementError", **fields}})
        except EngineError as exc:  # the engine could not start a worker (its nodes gone)
            error = {"type": "EngineError", "message": str(exc), "engine": exc.engine}
            await asgi.send_json(send, 503, {"error": error})

    return app


class Routes:
    """The handlers; each takes the request and answers through ``send``."""

    def __init__(self, state: DaemonState, max_body: int) -> None:
        self.state = state
        self.max_body = max_body
        self._run_ids = itertools.count(1)
        self._run_prefix = secrets.token_hex(3)  # run keys stay unique across restarts
        self.envs = EnvRoutes(state)
        self.objects = ObjectRoutes(state, max_body)

    def _new_run_key(self, key: str) -> str:
        return f"{key}@{self._run_prefix}{next(self._run_ids):x}"

    async def dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route by method and path."""
        method, path = scope["method"], scope["path"]
        if not path.startswith("/_rh/"):
            # /{key}/{method}: the method is the last segment; the key may hold "/".
            key, _, name = path[1:].rpartition("/")
            if not key or not name:
                raise HTTPError(
                    404, "NotFound", f"no route {path!r}; calls are POST /{{key}}/{{method}}"
                )
            if method == "GET":  # simple calls and attribute reads from a browser or curl
                return await self.call(scope, receive, send, inputs.key(key), name, from_query=True)
            if method != "POST":
                raise HTTPError(405, "MethodNotAllowed", "calls are POST /{key}/{method}")
            return await self.call(scope, receive, send, inputs.key(key), name)
        parts = path.strip("/").split("/", 2)
        route = (method, parts[1], len(parts))
        if route == ("GET", "health", 2):
            return await asgi.send_json(send, 200, _health())
        if route == ("GET", "openapi.json", 2):
            return await asgi.send_json(send, 200, schema())
        if route == ("GET", "status", 2):
            return await asgi.send_json(send, 200, await self.state.status())
        if route == ("GET", "keys", 2):
            return await asgi.send_json(send, 200, self.state.keys(asgi.query(scope).get("env")))
        if route == ("POST", "cancel", 2):
            return await self.cancel(scope, send, None)
        if route == ("POST", "clear", 2):
            return await self.objects.clear(send)
        if route == ("GET", "versions", 2):
            env = inputs.name(asgi.query(scope).get("env") or BASE_ENV, "env")
            return await self.envs.versions(send, env)
        if route == ("POST", "data", 3):  # a built-in: folders' operations on this disk
            return await self.call(scope, receive, send, remote_ops.KEY, parts[2])
        if len(parts) == 3:
            name = inputs.key(parts[2]) if parts[1] in _KEY_ROUTES else inputs.name(parts[2], "env")
            if route == ("PUT", "envs", 3):
                return await self.envs.put(scope, receive, send, name)
            if route == ("GET", "envs", 3):
                return await self.envs.get(send, name)
            if route == ("POST", "venvs", 3):
                return await self.envs.own_venv(send, name)
            if route == ("PUT", "secrets", 3):
                return await self.envs.put_secrets(scope, receive, send, name)
            if route == ("PUT", "objects", 3):
                return await self.objects.put(scope, receive, send, name)
            if route == ("GET", "objects", 3):
                return await self.objects.get(send, name)
            if route == ("DELETE", "objects", 3):
                return await self.objects.delete(send, name)
            if route == ("POST", "cancel", 3):
                return await self.cancel(scope, send, name)
            if route == ("POST", "rename", 3):
                return await self.objects.rename(scope, send, name)
            if route == ("GET", "runs", 3):
                return await self.get_run(send, name)
        raise HTTPError(404, "NotFound", f"no route {method} {scope['path']!r}")

    # Run keys of the calls started lately, in two generations (the older dropped when the
    # newer fills): a client sends a call again within moments of losing its connection.
    # The third set holds those that came as a send-again, for an original that comes late.
    _recent_runs: tuple[set[str], set[str], set[str]] | None = None

    def _admit(self, q: dict[str, str], key: str, method: str) -> None:
        """Refuse a call a client sends again (it names the ``instance`` it meant) that this
        daemon has seen, or that was meant for an earlier instance: it may have run, and
        must not run twice. (A run key sent afresh may be a run name used again.)"""
        run_key = q["run_key"]
        recent = self._recent_runs
        if recent is None:
            recent = self._recent_runs = (set(), set(), set())
        newer, older, resent = recent
        instance = q.get("instance")
        if instance is not None:
            seen = run_key in newer or run_key in older
            if instance != _INSTANCE or seen:
                kind = "DuplicateCall" if instance == _INSTANCE else "DaemonRestarted"
                why = "was received before" if seen else "was meant for an earlier daemon"
                raise HTTPError(
                    409,
                    kind,
                    f"call {run_key!r} {why}; not running it again",
                    run_key=run_key,
                    call=f"{key}.{method}",
                    instance=_INSTANCE,
                )
            if len(resent) >= _KEEP_RECENT_RUNS:
                resent.clear()
            resent.add(run_key)
        elif run_key in resent:  # the original of a call sent again, arriving after it
            raise HTTPError(
                409,
                "DuplicateCall",
                f"call {run_key!r} was received before; not running it again",
                run_key=run_key,
                call=f"{key}.{method}",
                instance=_INSTANCE,
            )
        if key in self.state.key_env:  # one answered "no object" may come again once it is sent
            if len(newer) >= _KEEP_RECENT_RUNS:
                newer, older = (set(), newer)
                self._recent_runs = (newer, older, resent)
            newer.add(run_key)

    async def call(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        key: str,
        method: str,
        from_query: bool = False,
    ) -> None:
        """Run ``key.method``; stream frames back (or one JSON value for curl). A GET
        (``from_query``) passes the query as keyword arguments, or reads an attribute."""
        q = {} if from_query else asgi.query(scope)
        if "run_key" in q:
            self._admit(q, key, method)
        op = q.get("op", "call")
        if op not in _OPS:
            raise HTTPError(400, "BadRequest", f"op must be one of {sorted(_OPS)}, not {op!r}")
        env = BASE_ENV if key == remote_ops.KEY else env_of(self.state, key)
        body = await asgi.read_body(scope, receive, self.max_body)
        if from_query:
            body = _query_call(asgi.query(scope))
        run_key = inputs.key(q["run_key"], "run_key") if "run_key" in q else self._new_run_key(key)
        # The worker reads absent fields as their defaults: the pickled header stays small.
        request: dict[str, Any] = {"op": op, "key": key, "method": method, "run_key": run_key}
        as_json = from_query or (asgi.header(scope, b"content-type") or b"").startswith(asgi.JSON)
        if as_json:
            request["fmt"] = "json"
        if from_query:
            request["attr"] = True  # a plain attribute answers its value
        detach = q.get("detach") == "1"
        if q.get("logs") == "1" and not as_json and not detach:
            request["logs"] = True
        if op == "map" and q.get("errors") == "return":
            request["return_exceptions"] = True  # failed items answer their error
        store_as = run_key if detach else q.get("store_as")
        if store_as is not None:
            request["store_as"] = inputs.key(store_as, "store_as")
        pinned = self.state.key_replica.get(key)  # an object lives on one replica
        worker = self.state.ready(env, pinned)  # the usual case, without a coroutine per call
        if worker is None:
            worker = await self.state.worker(env, pinned)
        pool = self.state.pools[env]
        fan_out = op == "map" and pinned is None and len(pool) > 1
        if "refs" in q:
            # ObjectRefs among the arguments (runhouse/wire/refs.py): the call's own worker
            # puts the objects it holds in their place; others' objects come along here.
            try:
                ref_keys = json.loads(q["refs"])
            except ValueError:
                ref_keys = None
            if not isinstance(ref_keys, list) or not all(isinstance(k, str) for k in ref_keys):
                raise HTTPError(400, "BadRequest", 'refs must be a JSON list of keys: ["k1"]')
            fetched: dict[str, bytes | None] = {}
            for ref_key in ref_keys:
                holders = self.state.holders(ref_key)
                # held by every replica of the call's env (a function or class)?
                everywhere = self.state.key_env.get(ref_key) == env
                everywhere = everywhere and ref_key not in self.state.key_replica
                if not holders or everywhere or (worker in holders and not fan_out):
                    fetched[ref_key] = None  # held by the call's worker, or nowhere: it says
                    continue
                held = await holders[0].ask({"op": "get", "key": ref_key})
                if held.kind != Kind.RESULT:
                    return await asgi.send_frame(send, 400, held.header, held.payload)
                fetched[ref_key] = held.payload
            request["refs"] = fetched
        if fan_out:  # every replica takes a share of the items
            # (every replica's live worker; the one chosen if the others died just now)
            spread = MapFanOut(await self.state.replicas(env) or [worker], request, body)
            stream, parts = spread.stream, spread.targets
            await spread.drain()
        else:
            stream, parts = worker.open(request, body), ()
            if len(body) > _SMALL_BODY:  # a small request never has to wait for the socket
                await worker.drain()
        run = Run(run_key, key, env, worker, stream.call_id, detach, stream=stream, parts=parts)
        self.state.runs[run_key] = run
        if store_as is not None:
            self.state.remember(store_as, env, None, pool.index(worker) or 0)
        if detach:
            asyncio.get_running_loop().create_task(self._follow(run, stream))
            return await asgi.send_json(send, 200, {"run_key": run_key})
        try:
            if as_json:
                await self._answer_json(send, stream, run)
            else:
                await self._answer_frames(send, receive, stream, run)
        finally:
            run.done.set()
            self.state.runs.pop(run_key, None)
            if store_as is not None and run.error is not None:
                self.state.forget(store_as)  # nothing was stored under it

    async def _answer_frames(self, send: Send, receive: Receive, stream: Any, run: Run) -> None:
        first: Frame = await stream.next()
        if first.kind in TERMINAL:
            if first.kind in _FAILED:
                run.error = first
            status = _SINGLE_FRAME_STATUS.get(first.kind, 200)
            return await asgi.send_frame(send, status, first.header, first.payload)
        await asgi.start_stream(send)
        # A client that leaves a stream early (a generator it stops reading) cancels the call,
        # or an endless generator would run on with no one to read it.
        watcher = asyncio.get_running_loop().create_task(self._cancel_on_disconnect(receive, run))
        try:
            frame = first
            while True:
                done = frame.kind in TERMINAL
                if frame.kind in _FAILED:
                    run.error = frame
                if len(frame.payload) > 65536:
                    await asgi.stream_part(send, frame.header)
                    await asgi.stream_part(send, frame.payload, more=not done)
                else:
                    await asgi.stream_part(send, frame.data, more=not done)
                if done:
                    return
                frame = await stream.next()
        finally:
            watcher.cancel()

    async def _cancel_on_disconnect(self, receive: Receive, run: Run) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if not run.done.is_set():
            for worker, call_id in run.targets:
                await worker.ask({"op": "cancel", "target": call_id})

    async def _answer_json(self, send: Send, stream: Any, run: Run) -> None:
        items: list[bytes] = []
        while True:
            frame: Frame = await stream.next()
            if frame.kind == Kind.ITEM:
                items.append(frame.payload)
            elif frame.kind == Kind.END:
                return await asgi.send_bytes(send, 200, asgi.JSON, b"[" + b",".join(items) + b"]")
            elif frame.kind == Kind.RESULT:
                return await asgi.send_bytes(send, 200, asgi.JSON, frame.payload or b"null")
            elif frame.kind in _FAILED:
                run.error = frame
                error = json.loads(frame.payload) if frame.payload.startswith(b"{") else None
                status = 400 if frame.kind == Kind.REJECTED else 500
                body = {"error": error} if error else {"error": {"message": "call failed"}}
                return await asgi.send_json(send, status, body)

    async def _follow(self, run: Run, stream: Any) -> None:
        while True:
            frame: Frame = await stream.next()
            if frame.kind in TERMINAL:
                if frame.kind in (Kind.ERROR, Kind.REJECTED):
                    run.error = frame
                    self.state.forget(run.run_key)
                run.done.set()
                self._trim_runs()
                return

    def _trim_runs(self) -> None:
        finished = [k for k, r in self.state.runs.items() if r.done.is_set()]
        for key in finished[: max(0, len(finished) - _KEEP_FINISHED_RUNS)]:
            del self.state.runs[key]

    async def get_run(self, send: Send, run_key: str) -> None:
        """Wait for a detached run; answer its result or its error as a frame."""
        run = self.state.runs.get(run_key)
        if run is None:
            if run_key in self.state.key_env:
                return await self.objects.get(send, run_key)
            raise HTTPError(404, "RunNotFound", f"no run with key {run_key!r} on this daemon")
        await run.done.wait()
        if run.error is not None:
            return await asgi.send_bytes(
                send, 200, asgi.FRAMES, run.error.header, run.error.payload
            )
        await self.objects.get(send, run_key)

    async def cancel(self, scope: Scope, send: Send, key: str | None) -> None:
        """Cancel the run with this run key, every running call of this object key, or (no
        key) every running call. Callers waiting on a cancelled run get its error at once,
        even while the call is still stuck in C code; ``?force=1`` also ends the workers that
        ran them (their objects go with them) and starts fresh ones."""
        runs = [
            r
            for r in self.state.runs.values()
            if (key is None or r.run_key == key or r.key == key) and not r.done.is_set()
        ]
        known = key is None or runs or key in self.state.runs or key in self.state.key_env
        if not known:
            raise HTTPError(404, "RunNotFound", f"no run or object with key {key!r}")
        cancelled = []
        for run in runs:
            answers = [
                await worker.ask({"op": "cancel", "target": call_id}, timeout=ANSWER)
                for worker, call_id in run.targets
            ]
            if any(f.kind == Kind.RESULT and json.loads(f.payload) for f in answers):
                cancelled.append(run.run_key)
                payload = errors.pack(CallCancelledError(run.run_key))
                run.stream.put(Frame(Kind.ERROR, HEADER.pack(Kind.ERROR, len(payload)), payload))
        lost: list[str] = []
        if asgi.query(scope).get("force") == "1":
            for env in sorted({r.env for r in runs}):
                lost += await self._replace_worker(env)
        await asgi.send_json(send, 200, {"cancelled": cancelled, "lost": lost})

    async def _replace_worker(self, env: str) -> list[str]:
        """End an env's worker and start a fresh one; the keys whose objects were lost."""
        kept = self.state.resources.get(env, {})
        lost = [k for k in self.state.keys(env) if k not in kept]
        await self.state.restart_env(env)
        await self.state.worker(env)  # functions and classes are sent to it again
        log.warning("worker of env %r replaced (a forced cancel); lost: %s", env, lost)
        return lost


def _query_call(params: dict[str, str]) -> bytes:
    """A GET's query as a JSON call body: each value as JSON where it parses (``n=3`` is 3),
    else as the string it is (``name=ada``)."""
    kwargs: dict[str, Any] = {}
    for name, raw in params.items():
        try:
            kwargs[name] = json.loads(raw)
        except (ValueError, RecursionError):
            kwargs[name] = raw
    return json.dumps({"args": [], "kwargs": kwargs}).encode()


# This daemon process's id: a client that finds it changed knows the daemon restarted (and
# holds none of what the client sent), and a call it sends again names the instance it meant.
_INSTANCE = secrets.token_hex(8)
_KEEP_RECENT_RUNS = 50_000  # run keys per generation remembered against calls sent twice


def instance() -> str:
    """This daemon process's id, as ``/_rh/health`` reports it (new at each start)."""
    return _INSTANCE


def _health() -> dict[str, Any]:
    import cloudpickle

    return {
        "status": "ok",
        "runhouse": __version__,
        "python": ".".join(map(str, sys.version_info[:3])),
        "cloudpickle": cloudpickle.__version__,
        "instance": _INSTANCE,
    }
