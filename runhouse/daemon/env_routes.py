"""The daemon's env routes: declare an env (building it), look one up, give it a venv of
its own for commands, and report the versions its worker runs.

    PUT  /_rh/envs/{name}     EnvRoutes.put
    GET  /_rh/envs/{name}     EnvRoutes.get
    POST /_rh/venvs/{name}    EnvRoutes.own_venv
    PUT  /_rh/secrets/{name}  EnvRoutes.put_secrets
    GET  /_rh/versions?env=   EnvRoutes.versions
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from typing import Any, NamedTuple

from runhouse.daemon import asgi
from runhouse.daemon.asgi import HTTPError, Receive, Scope, Send
from runhouse.daemon.engines.base import EnvSpec
from runhouse.daemon.envs import Requirement
from runhouse.daemon.state import BASE_ENV, DaemonState
from runhouse.exceptions import EnvInstallError, PlacementError
from runhouse.wire.compute import compute_problem, replicas_problem


class EnvInputs(NamedTuple):
    """What an env is built from (kept to build it again with a venv of its own)."""

    reqs: list[Requirement]
    setup_cmds: list[str]
    conda: dict[str, Any] | None
    own: bool
    compute: dict[str, Any] | None = None  # where its workers run (kept beside the inputs)
    replicas: int = 1


_NO_INPUTS = EnvInputs([], [], None, False)
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,255}$")


class EnvRoutes:
    """Handlers for envs; each answers through ``send``."""

    def __init__(self, state: DaemonState) -> None:
        self.state = state
        self._inputs: dict[str, EnvInputs] = {}  # what each env was built from

    async def put(self, scope: Scope, receive: Receive, send: Send, name: str) -> None:
        """Declare (or change) an env, building it first; a changed env's worker restarts."""
        try:
            spec = json.loads(await asgi.read_body(scope, receive, 1 << 20) or b"{}")
            env_vars = spec.get("env_vars") or {}
            reqs = [Requirement.parse(r) for r in spec.get("reqs") or []]
            setup_cmds = spec.get("setup_cmds") or []
            conda = spec.get("conda")
            valid = conda is None or isinstance(conda, dict)
            valid = valid and all(
                isinstance(k, str) and isinstance(v, str) for k, v in env_vars.items()
            )
            valid = valid and all(isinstance(c, str) for c in setup_cmds)
            compute = spec.get("compute") or {}
            replicas = spec.get("replicas", 1)
        except (ValueError, AttributeError, TypeError, RecursionError):
            valid = False
        if not valid:
            raise HTTPError(
                400,
                "BadRequest",
                'env body must be {"env_vars": {"NAME": "value"}, "reqs": [{"kind", "value"}], '
                '"setup_cmds": ["..."], "compute": {"CPU": 1}, "replicas": 1}',
            )
        problem = compute_problem(compute) or replicas_problem(replicas)
        if problem is not None:
            raise HTTPError(400, "BadRequest", f"env {name!r}: {problem}")
        own = self._inputs.get(name, _NO_INPUTS).own  # a venv given once stays
        self._inputs[name] = EnvInputs(reqs, setup_cmds, conda, own, compute, replicas)
        built = await self._build(name, dict(env_vars), self._inputs[name])
        await asgi.send_json(send, 200, {"env": name, "hash": built.content_hash})

    async def put_secrets(self, scope: Scope, receive: Receive, send: Send, name: str) -> None:
        """Set secret variables (``{"env_vars": {"NAME": "value"}}``) in a declared env's
        worker, now and in every worker it starts later. Unlike an env's ``env_vars`` they are
        kept in memory only, and no answer, status, log or error ever holds a value."""
        try:
            body = json.loads(await asgi.read_body(scope, receive, 1 << 20) or b"{}")
            variables = body.get("env_vars")
            valid = isinstance(variables, dict) and bool(variables)
            valid = valid and all(
                isinstance(k, str) and _VARIABLE.match(k) and isinstance(v, str) and "\0" not in v
                for k, v in variables.items()
            )
        except (ValueError, AttributeError, TypeError, RecursionError):
            valid = False
        if not valid:
            raise HTTPError(
                400,
                "BadRequest",
                'secrets body must be {"env_vars": {"NAME": "value"}}: names of letters, digits '
                "and '_' not starting with a digit, values strings without NUL",
            )
        if name not in self.state.envs:
            raise HTTPError(
                404,
                "EnvNotFound",
                f"no env {name!r} on this daemon: declare it first",
                envs=sorted(self.state.envs),
            )
        try:
            await self.state.add_secrets(name, variables)
        except RuntimeError as exc:  # the worker refused; its message holds no value
            raise HTTPError(503, "WorkerError", str(exc), env=name) from None
        await asgi.send_json(send, 200, {"env": name, "names": sorted(variables)})

    async def own_venv(self, send: Send, name: str) -> None:
        """Give an env a venv of its own (for commands run in it); answers its Python."""
        if name == BASE_ENV:
            raise HTTPError(
                400,
                "BadRequest",
                "the base env runs on the daemon's own Python; run commands in an env of "
                "your own (rh.env(name=...)) to install packages into it",
            )
        spec = self.state.envs.get(name)
        if spec is None:
            raise HTTPError(404, "EnvNotFound", f"no env {name!r} on this daemon")
        inputs = self._inputs.get(name, _NO_INPUTS)._replace(own=True)
        self._inputs[name] = inputs
        built = await self._build(name, dict(spec.env_vars), inputs)
        await asgi.send_json(send, 200, {"env": name, "python": built.python})

    async def _build(self, name: str, env_vars: dict[str, str], inputs: EnvInputs) -> Any:
        loop = asyncio.get_running_loop()
        build = self.state.builder.build
        try:
            built = await loop.run_in_executor(
                None, build, name, inputs.reqs, inputs.setup_cmds, inputs.conda, inputs.own
            )
        except EnvInstallError as exc:
            raise HTTPError(
                400,
                "EnvInstallError",
                str(exc),
                env=name,
                command=exc.command,
                returncode=exc.returncode,
                output=exc.output,
            ) from exc
        spec = EnvSpec(
            name,
            env_vars,
            None if built.content_hash is None else built.python,
            built.pythonpath,
            built.content_hash,
            built.packages,
            inputs.compute or {},
            inputs.replicas,
        )
        try:
            await self.state.engine.check(spec)
        except PlacementError as exc:  # no node could ever hold it: said now, not at a call
            fields = {"env": exc.env, "asked": exc.asked, "why": exc.why}
            raise HTTPError(400, "PlacementError", str(exc), **fields) from None
        if self.state.set_env(spec):
            await self.state.restart_env(name)
        return built

    async def get(self, send: Send, name: str) -> None:
        """Whether the daemon knows env ``name``, and its Python (404 if it does not)."""
        spec = self.state.envs.get(name)
        if spec is None:
            raise HTTPError(
                404, "EnvNotFound", f"no env {name!r} on this daemon", envs=sorted(self.state.envs)
            )
        answer = {
            "name": name,
            "python": spec.python or sys.executable,
            "hash": spec.content_hash,
            "venv": spec.python is not None,  # a venv of its own, not the daemon's Python
            "env_vars": spec.env_vars,
        }
        await asgi.send_json(send, 200, answer)

    async def versions(self, send: Send, env: str) -> None:
        """Python, cloudpickle and runhouse versions of an env's worker (started if needed)."""
        worker = await self.state.worker(env)
        status = json.loads((await worker.ask({"op": "status"})).payload)
        await asgi.send_json(
            send, 200, {k: status.get(k) for k in ("python", "cloudpickle", "runhouse")}
        )
