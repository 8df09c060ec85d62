"""The provider interface: a kind of credentials, where its tools keep them, and how to
read them here and write them elsewhere.

A provider is mostly data, declared on a subclass (one small file in ``providers/``)::

    class HuggingFace(Provider):
        name = "huggingface"
        variables = env_names(token="HF_TOKEN")
        file = TokenFile(("~/.cache/huggingface/token",), "token")

Defining the class registers it by ``name`` (``registry.py``). The base class does the rest:
``read_local`` (files first, then variables), ``write_files`` (the provider's own layout, mode
600) and ``env_vars``. A provider with unusual needs overrides one of those.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple

from runhouse.exceptions import CredentialsNotFoundError
from runhouse.secrets import registry
from runhouse.secrets.formats import FileFormat, UnreadableFile


def env_names(**names: str) -> Mapping[str, str]:
    """A provider's ``variables``, read-only: ``env_names(api_key="OPENAI_API_KEY")``."""
    return MappingProxyType(names)


class Found(NamedTuple):
    """Credentials read on this machine, and the file they came from (``~/...``; ``None``
    when they came from environment variables)."""

    values: dict[str, str]
    path: str | None


class Provider:
    """A kind of credentials (aws, ssh, openai, ...): its environment variables, its file,
    and which values it cannot do without."""

    name: ClassVar[str] = ""
    # value key -> the environment variable its tools read it from
    variables: ClassVar[Mapping[str, str]] = MappingProxyType({})
    # value keys credentials must have; None: every key in ``variables``
    required: ClassVar[tuple[str, ...] | None] = None
    # where its tools keep the credentials, and in what layout; None: variables only
    file: ClassVar[FileFormat | None] = None
    # a variable naming the file to read (GOOGLE_APPLICATION_CREDENTIALS), if the tools have one
    path_variable: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            registry.register(cls)

    def __init__(self, path: str | None = None, env_vars: Mapping[str, str] | None = None) -> None:
        if path is not None and self.file is None:
            raise ValueError(
                f"the {self.name} provider keeps no file (only environment variables "
                f"{', '.join(self.variables.values())}); give env_vars= instead of path="
            )
        overrides = dict(env_vars or {})
        unknown = sorted(k for k in overrides if k not in self.keys())
        if unknown:
            raise ValueError(
                f"env_vars of a {self.name} secret map its keys ({', '.join(self.keys())}) "
                f"to variable names; {', '.join(unknown)} is not one of its keys"
            )
        self.path = path
        self.names = {**self.variables, **overrides}

    @classmethod
    def keys(cls) -> list[str]:
        """The value keys this provider knows of."""
        return sorted({*cls.variables, *(cls.required or ())})

    @property
    def needed(self) -> tuple[str, ...]:
        """The value keys credentials must have."""
        return self.required if self.required is not None else tuple(self.variables)

    def default_files(self) -> list[str]:
        """The files ``read_local`` looks at, in order (``~`` is the home folder)."""
        if self.path is not None:
            return [self.path]
        return list(self.file.paths) if self.file is not None else []

    def looked_at_variables(self) -> list[str]:
        """The environment variables ``read_local`` looks at."""
        names = list(self.names.values()) if self.path is None else []
        return names + ([self.path_variable] if self.path_variable and self.path is None else [])

    def read_local(
        self, home: Path | None = None, environ: Mapping[str, str] | None = None
    ) -> Found:
        """The credentials on this machine: the first of its files that has them, else its
        environment variables; ``CredentialsNotFoundError`` names everything looked at."""
        home = home or Path.home()
        environ = os.environ if environ is None else environ
        candidates = self.default_files()
        named = environ.get(self.path_variable) if self.path_variable and not self.path else None
        if named:
            candidates.insert(0, named)
        looked: list[str] = []
        for shown in candidates:
            found = self._read_file(shown, home, looked)
            if found is not None:
                return Found(found, shown)
        if self.path is None:
            values = {key: environ[var] for key, var in self.names.items() if environ.get(var)}
            if values and all(values.get(key) for key in self.needed):
                return Found(values, None)
        raise CredentialsNotFoundError(self.name, looked, self.looked_at_variables())

    def _read_file(self, shown: str, home: Path, looked: list[str]) -> dict[str, str] | None:
        path = expand(shown, home)
        if self.file is None or not path.is_file():
            looked.append(shown)
            return None
        try:
            values = self.file.parse(path)
        except (UnreadableFile, OSError) as exc:
            # The format's message names the layout, never the contents.
            reason = f"not readable ({exc.strerror})" if isinstance(exc, OSError) else None
            looked.append(f"{shown} ({reason or f'it does not parse as {exc}'})")
            return None
        missing = [key for key in self.needed if not values.get(key)]
        if missing:
            looked.append(f"{shown} (it has no {', '.join(missing)})")
            return None
        return values

    def write_files(self, values: Mapping[str, str]) -> dict[str, tuple[bytes, int]]:
        """The files that hold ``values`` in the provider's layout: ``{path: (contents,
        mode)}``, each path relative to the home folder (or absolute, if it was given so)."""
        if self.file is None:
            return {}
        target = self.path or self.file.paths[0]
        rendered = self.file.render_files(values, target)
        return {relative(path): (data, self.file.mode) for path, data in rendered.items()}

    def env_vars(self, values: Mapping[str, str]) -> dict[str, str]:
        """The environment variables that hold ``values``: ``{NAME: value}``."""
        return {self.names[key]: value for key, value in values.items() if key in self.names}


def expand(path: str, home: Path) -> Path:
    """``path`` on this machine, ``~`` being ``home``."""
    if path == "~" or path.startswith("~/"):
        return home / path[2:]
    return Path(path).expanduser()


def relative(path: str) -> str:
    """A ``~/...`` path as relative to the home folder; others as they are."""
    return path[2:] if path.startswith("~/") else path


def shown_path(path: str, home: Path | None = None) -> str:
    """A path as configs keep it: ``~/...`` when it is under the home folder (a cluster has
    its own), else absolute."""
    home = home or Path.home()
    if path == "~" or path.startswith("~/"):
        return path
    absolute = Path(path).expanduser().absolute()
    try:
        return "~/" + str(absolute.relative_to(home))
    except ValueError:
        return str(absolute)
