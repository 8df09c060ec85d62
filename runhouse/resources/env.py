"""``Env``: the packages, variables, setup commands, working dir and secrets code runs with.

    >>> env = rh.env(name="np", reqs=["numpy"], env_vars={"MODE": "fast"}).save()
    >>> rh.env(name="np").reqs          # given only a name, the factory loads it
    ['numpy']

This module holds what an env *is*; building one on a cluster belongs to the daemon.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runhouse.names.folders import project_root
from runhouse.names.resolver import exists
from runhouse.resources.package import (
    Package,
    conda_in_plain_env,
    is_package_string,
    local_requirement,
)
from runhouse.resources.resource import Resource
from runhouse.wire.compute import normalize, replicas_problem


class Env(Resource):
    """A description of the environment code runs in on a cluster."""

    resource_type = "env"

    def __init__(
        self,
        name: str | None = None,
        reqs: Sequence[str | Package] | str | Package | None = None,
        env_vars: Mapping[str, str] | str | None = None,
        setup_cmds: Sequence[str] | str | None = None,
        working_dir: str | None = "./",
        secrets: Sequence[str] | str | None = None,
        compute: Mapping[str, Any] | None = None,
        replicas: int = 1,
    ) -> None:
        super().__init__(name=name)
        self.reqs = _strings(_requirements(reqs), "reqs")
        self.env_vars = _env_vars(env_vars)
        self.setup_cmds = _strings(setup_cmds, "setup_cmds")
        if working_dir is not None and not isinstance(working_dir, str):
            raise TypeError(f"working_dir must be a path string or None, not {working_dir!r}.")
        self.working_dir = working_dir
        self.secrets = _strings(secrets, "secrets")
        self.compute = normalize(compute)  # what each worker needs, and where
        problem = replicas_problem(replicas)
        if problem is not None:
            raise ValueError(problem)
        self.replicas = replicas  # workers of this env on a cluster; calls balance over them

    def config(self) -> dict[str, Any]:
        """The env's config: the base fields plus its own."""
        return {
            **super().config(),
            "env_vars": self.env_vars if isinstance(self.env_vars, str) else dict(self.env_vars),
            "reqs": list(self.reqs),
            "secrets": list(self.secrets),
            "setup_cmds": list(self.setup_cmds),
            "working_dir": self.working_dir,
            "compute": dict(self.compute),
            "replicas": self.replicas,
        }

    def to(self, system: Any) -> Env:
        """Build this env on a cluster now (its worker starts with it); returns ``self``."""
        from runhouse.resources.cluster import as_cluster  # the cluster module imports this one

        as_cluster(system).ensure_env(self)
        return self

    def content_hash(self) -> str:
        """A hash of everything that defines the env (not its name)."""
        content = {k: v for k, v in self.config().items() if k != "name"}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()

    def resolved_reqs(self, base: Path | None = None) -> list[dict[str, str]]:
        """Requirements for the daemon: pip specifiers as given, local paths made absolute."""
        return [resolve_requirement(req, base or Path.cwd()) for req in self.reqs]

    def resolved_env_vars(self) -> dict[str, str]:
        """The variables as a dict, reading the ``.env`` file if a path was given."""
        if isinstance(self.env_vars, dict):
            return dict(self.env_vars)
        return read_dotenv(Path(self.env_vars).expanduser())


def resolve_requirement(req: str, base: Path) -> dict[str, str]:
    """One requirement as ``{kind, value}``: ``pip`` (a specifier or URL), ``path`` (a package
    folder or wheel), ``requirements`` (a requirements file) or ``code`` (put on the path).
    A prefixed string (``pip:``, ``local:``, ``reqs:``, ``rh:``) or a GitHub repository URL
    is read as ``rh.Package.from_string`` reads it."""
    if is_package_string(req):
        return Package.from_string(req).resolve(base)
    is_path = req.startswith((".", "/", "~")) or req.endswith((".txt", ".whl"))
    if not is_path:
        return {"kind": "pip", "value": req}
    path = Path(req).expanduser()
    path = (path if path.is_absolute() else base / path).resolve()
    if not path.exists():
        raise FileNotFoundError(f"env requirement {req!r}: {path} does not exist")
    return local_requirement(path)


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a ``.env`` file (comments, ``export`` and quotes allowed)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"env_vars file {str(path)!r} does not exist") from None
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{path}, line {number}: expected KEY=value, got {raw!r}")
        parsed = shlex.split(value, comments=True)
        values[key.strip()] = parsed[0] if parsed else ""
    return values


class CondaEnv(Env):
    """An env built with conda (or micromamba) from an environment spec, then ``reqs`` with pip."""

    def __init__(
        self,
        name: str | None = None,
        conda_env: Mapping[str, Any] | str | None = None,
        reqs: Sequence[str | Package] | str | Package | None = None,
        env_vars: Mapping[str, str] | str | None = None,
        setup_cmds: Sequence[str] | str | None = None,
        working_dir: str | None = "./",
        secrets: Sequence[str] | str | None = None,
        compute: Mapping[str, Any] | None = None,
        replicas: int = 1,
    ) -> None:
        conda_packages, pip_reqs = _split_conda(reqs)
        super().__init__(
            name, pip_reqs, env_vars, setup_cmds, working_dir, secrets, compute, replicas
        )
        self.conda_env = _with_conda_packages(_conda_spec(conda_env), conda_packages)

    def config(self) -> dict[str, Any]:
        """The env's config, with its conda spec."""
        return {**super().config(), "conda_env": self.conda_env}


def _conda_spec(value: Mapping[str, Any] | str | None) -> dict[str, Any]:
    if value is None:
        return {"dependencies": ["python=3.11"]}
    if isinstance(value, str):  # a path to an environment.yml
        import yaml

        path = Path(value).expanduser()
        try:
            loaded = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"conda_env file {str(path)!r} does not exist") from None
        value = loaded
    if not isinstance(value, Mapping) or "dependencies" not in value:
        raise TypeError("conda_env must be a dict or environment.yml with 'dependencies'")
    return dict(value)


def _split_conda(
    value: Sequence[str | Package] | str | Package | None,
) -> tuple[list[str], list[str | Package] | None]:
    """``conda:`` requirements (their targets) apart from the rest."""
    if value is None:
        return [], None
    conda, rest = [], []
    for item in [value] if isinstance(value, (str, Package)) else list(value):
        req = item.requirement() if isinstance(item, Package) else item
        if isinstance(req, str) and req.startswith("conda:"):
            conda.append(req.removeprefix("conda:").strip())
        else:
            rest.append(item)
    return conda, rest


def _with_conda_packages(spec: dict[str, Any], packages: list[str]) -> dict[str, Any]:
    """``spec`` with conda packages (``"pytorch -c pytorch"``: a package and its channel)
    added to its dependencies and channels, each once."""
    if not packages:
        return spec
    dependencies = list(spec.get("dependencies") or [])
    channels = list(spec.get("channels") or [])
    for package in packages:
        words = shlex.split(package)
        while words:
            word = words.pop(0)
            if word in ("-c", "--channel") and words:
                channel = words.pop(0)
                channels += [channel] if channel not in channels else []
            elif word.startswith("-"):
                raise ValueError(f"conda:{package}: only -c/--channel may follow a package")
            elif word not in dependencies:
                dependencies.append(word)
    return {**spec, "dependencies": dependencies, **({"channels": channels} if channels else {})}


def conda_env(
    name: str | None = None,
    conda_env: Mapping[str, Any] | str | None = None,
    reqs: Sequence[str | Package] | str | Package | None = None,
    env_vars: Mapping[str, str] | str | None = None,
    setup_cmds: Sequence[str] | str | None = None,
    working_dir: str | None = "./",
    secrets: Sequence[str] | str | None = None,
) -> CondaEnv:
    """A ``CondaEnv``; given only ``name``, the one saved under that name."""
    if (
        name is not None
        and conda_env is None
        and reqs is None
        and env_vars is None
        and setup_cmds is None
    ):
        return CondaEnv.from_name(name)
    return CondaEnv(name, conda_env, reqs, env_vars, setup_cmds, working_dir, secrets)


def env(
    name: str | None = None,
    reqs: Sequence[str | Package] | str | Package | None = None,
    env_vars: Mapping[str, str] | str | None = None,
    setup_cmds: Sequence[str] | str | None = None,
    working_dir: str | None = "./",
    secrets: Sequence[str] | str | None = None,
    compute: Mapping[str, Any] | None = None,
    replicas: int | None = None,
) -> Env:
    """An ``Env``; given only ``name``, the one saved under that name. ``compute``: what each
    of its workers needs ({"CPU": 2, "GPU": 1, "memory": bytes, custom resources}) and
    ``"node"`` to pin them; ``replicas``: how many workers it has on a cluster."""
    only_name = reqs is None and env_vars is None and setup_cmds is None and secrets is None
    only_name = only_name and compute is None and replicas is None
    if name is not None and only_name and working_dir == "./":
        return Env.from_name(name)
    return Env(
        name,
        reqs,
        env_vars,
        setup_cmds,
        working_dir,
        secrets,
        compute,
        1 if replicas is None else replicas,
    )


def _requirements(value: Sequence[str | Package] | str | Package | None) -> list[str] | None:
    # Packages become their requirement strings: the env's config stays plain JSON.
    if value is None:
        return None
    items = [value] if isinstance(value, (str, Package)) else list(value)
    reqs = [item.requirement() if isinstance(item, Package) else item for item in items]
    for req in reqs:
        if isinstance(req, str) and req.startswith("conda:"):
            raise ValueError(conda_in_plain_env(req))
    return reqs


def _strings(value: Sequence[str] | str | None, field: str) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    bad = [item for item in items if not isinstance(item, str) or not item.strip()]
    if bad:
        raise TypeError(f"{field} must be non-empty strings; got {bad[0]!r}.")
    return items


def _env_vars(value: Mapping[str, str] | str | None) -> dict[str, str] | str:
    if value is None:
        return {}
    if isinstance(value, str):
        return value  # a path to a .env file, read when the env is set up
    if not isinstance(value, Mapping):
        raise TypeError(f"env_vars must be a dict or a path to a .env file, not {value!r}.")
    for key, val in value.items():
        if not isinstance(key, str) or not key or not isinstance(val, str):
            raise TypeError(
                f"env_vars must map names to strings; {key!r}: {val!r} is not (quote numbers)."
            )
    return dict(value)


class EnvRef(Env):
    """An env named by a string (``.to(c, env="np")``): the cluster's env of that name, or
    else the one saved under it. Never an empty env: declaring one would wipe the real one."""

    def __init__(self, name: str | None = None) -> None:
        if not name:
            raise ValueError("an env reference needs the env's name")
        super().__init__(name=name)

    def config(self) -> dict[str, Any]:
        """Only the name: what it refers to is decided where it is used."""
        return Resource.config(self)

    def saved(self) -> Env | None:
        """The env saved under this name, if there is one."""
        address = self.rns_address or ""
        return Env.from_name(address) if exists(address) else None


def as_env(env: Env | str | list[str] | dict[str, Any] | None) -> Env | None:
    """An ``Env`` from an env, an env's name (an ``EnvRef``), a list of requirements or a
    config."""
    if env is None or isinstance(env, Env):
        return env
    if isinstance(env, list):
        return Env(reqs=env)
    if isinstance(env, str):
        return EnvRef(env)
    if isinstance(env, dict):
        built = Resource.deref(env)
        if isinstance(built, Env):
            return built
    raise TypeError(f"expected an env, an env's name or a list of requirements, got {env!r}")


def code_root(env: Env | None) -> Path | None:
    """The folder the worker imports the user's code from: the env's working dir."""
    chosen = env.working_dir if env is not None else "./"
    if chosen is None:
        return None
    if chosen in ("./", "."):
        # The project root, as for the local store. Outside any project (no marker up from
        # the cwd), there is nothing to sync: the cwd might be $HOME or /tmp.
        return project_root()
    return Path(chosen).expanduser().resolve()
