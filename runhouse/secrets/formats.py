"""The layouts providers keep credentials in: each reads a file into values and renders
values back in the provider's own layout.

    >>> aws = IniFile(("~/.aws/credentials",), "default", {"access_key": "aws_access_key_id"})
    >>> aws.render({"access_key": "AKIA..."})
    b'[default]\\naws_access_key_id = AKIA...\\n\\n'

Parsing errors never quote the file: its contents are secret. A format raises
``UnreadableFile`` (no detail) and the provider says which file did not parse.
"""

from __future__ import annotations

import configparser
import io
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path

PRIVATE = 0o600


class UnreadableFile(ValueError):
    """A credentials file that does not parse as its format (the message holds no content)."""


class FileFormat(ABC):
    """A provider's credentials file: where the provider's tools keep it (the first of
    ``paths`` is where it is written), and how to read and write it."""

    kind: str = "file"

    def __init__(self, paths: tuple[str, ...], mode: int = PRIVATE) -> None:
        self.paths = paths
        self.mode = mode

    @abstractmethod
    def parse(self, path: Path) -> dict[str, str]:
        """The values the file at ``path`` holds (maybe none); ``UnreadableFile`` if it does
        not parse."""

    @abstractmethod
    def render(self, values: Mapping[str, str]) -> bytes:
        """The file's contents for ``values``."""

    def render_files(self, values: Mapping[str, str], path: str) -> dict[str, bytes]:
        """Every file to write for ``values`` kept at ``path`` (one, but for key pairs)."""
        return {path: self.render(values)}

    def merge(self, existing: bytes, rendered: bytes) -> bytes:
        """The file to write over ``existing`` with ``rendered`` in it: a file that holds one
        credential is replaced; formats holding several keep the others."""
        return rendered


class IniFile(FileFormat):
    """One section of an INI file (``[default]`` of ``~/.aws/credentials``); ``options``
    maps value keys to the file's option names."""

    kind = "INI"

    def __init__(
        self,
        paths: tuple[str, ...],
        section: str,
        options: Mapping[str, str],
        mode: int = PRIVATE,
    ) -> None:
        super().__init__(paths, mode)
        self.section = section
        self.options = dict(options)

    def parse(self, path: Path) -> dict[str, str]:
        """The mapped options of the section, if the file has it."""
        parser = configparser.RawConfigParser()  # raw: a '%' in a secret is a '%'
        try:
            parser.read_string(path.read_text(encoding="utf-8"))
        except (configparser.Error, UnicodeDecodeError):
            raise UnreadableFile(self.kind) from None  # its message would quote the file
        if not parser.has_section(self.section):
            return {}
        found = parser[self.section]
        return {key: found[option] for key, option in self.options.items() if found.get(option)}

    def render(self, values: Mapping[str, str]) -> bytes:
        """The section with the mapped options that have values."""
        parser = configparser.RawConfigParser()
        parser[self.section] = {o: values[k] for k, o in self.options.items() if values.get(k)}
        out = io.StringIO()
        parser.write(out)
        return out.getvalue().encode()

    def merge(self, existing: bytes, rendered: bytes) -> bytes:
        """``existing`` with its section replaced by the rendered one; other sections (other
        profiles) stay. An existing file that is not INI is refused, not overwritten."""
        parser = configparser.RawConfigParser()
        try:
            parser.read_string(existing.decode("utf-8"))
        except (configparser.Error, UnicodeDecodeError):
            raise UnreadableFile(self.kind) from None
        new = configparser.RawConfigParser()
        new.read_string(rendered.decode("utf-8"))
        parser.remove_section(self.section)
        parser[self.section] = dict(new[self.section])
        out = io.StringIO()
        parser.write(out)
        return out.getvalue().encode()


class JsonFile(FileFormat):
    """A JSON object whose fields are the values (gcloud's application default credentials)."""

    kind = "JSON"

    def parse(self, path: Path) -> dict[str, str]:
        """Every field; a field that is not a string is refused (by name)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise UnreadableFile(self.kind) from None
        if not isinstance(data, dict):
            raise UnreadableFile(self.kind)
        odd = sorted(k for k, v in data.items() if not isinstance(v, str))
        if odd:
            raise UnreadableFile(f"{self.kind} of strings (fields {', '.join(odd)} are not)")
        return dict(data)

    def render(self, values: Mapping[str, str]) -> bytes:
        """The values as an indented JSON object."""
        return (json.dumps(dict(values), indent=2) + "\n").encode()


class TokenFile(FileFormat):
    """A file holding one token and nothing else (``~/.cache/huggingface/token``)."""

    kind = "token"

    def __init__(self, paths: tuple[str, ...], key: str, mode: int = PRIVATE) -> None:
        super().__init__(paths, mode)
        self.key = key

    def parse(self, path: Path) -> dict[str, str]:
        """The token, without surrounding whitespace."""
        try:
            token = path.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            raise UnreadableFile(self.kind) from None
        return {self.key: token} if token else {}

    def render(self, values: Mapping[str, str]) -> bytes:
        """The token alone."""
        return values.get(self.key, "").encode()


class KeyValueFile(FileFormat):
    """``name = value`` lines (``~/.lambda_cloud/lambda_keys``); ``names`` maps value keys
    to the file's names."""

    kind = "key = value"

    def __init__(
        self, paths: tuple[str, ...], names: Mapping[str, str], mode: int = PRIVATE
    ) -> None:
        super().__init__(paths, mode)
        self.names = dict(names)

    def parse(self, path: Path) -> dict[str, str]:
        """The mapped names' values (other lines and ``#`` comments are skipped)."""
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UnreadableFile(self.kind) from None
        found: dict[str, str] = {}
        for line in text.splitlines():
            name, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith("#"):
                found[name.strip()] = value.strip()
        return {key: found[name] for key, name in self.names.items() if found.get(name)}

    def render(self, values: Mapping[str, str]) -> bytes:
        """One ``name = value`` line per value."""
        lines = [f"{n} = {values[k]}\n" for k, n in self.names.items() if values.get(k)]
        return "".join(lines).encode()

    def merge(self, existing: bytes, rendered: bytes) -> bytes:
        """``existing`` without the lines of this provider's names, then the rendered ones:
        other lines stay."""
        try:
            lines = existing.decode("utf-8").splitlines(keepends=True)
        except UnicodeDecodeError:
            raise UnreadableFile(self.kind) from None
        mine = set(self.names.values())
        kept = [line for line in lines if line.partition("=")[0].strip() not in mine]
        if kept and not kept[-1].endswith("\n"):
            kept[-1] += "\n"
        return ("".join(kept)).encode() + rendered


class KeyPair(FileFormat):
    """An SSH key pair: the private key at the path, the public one beside it (``.pub``)."""

    kind = "SSH key"

    def parse(self, path: Path) -> dict[str, str]:
        """``private_key`` and, if its ``.pub`` file is there, ``public_key``."""
        try:
            values = {"private_key": path.read_text(encoding="ascii")}
            public = path.with_name(path.name + ".pub")
            if public.is_file():
                values["public_key"] = public.read_text(encoding="ascii")
        except UnicodeDecodeError:
            raise UnreadableFile(self.kind) from None
        return values if values["private_key"].strip() else {}

    def render(self, values: Mapping[str, str]) -> bytes:
        """The private key (ssh wants it to end with a newline)."""
        key = values.get("private_key", "")
        return (key if key.endswith("\n") else key + "\n").encode()

    def render_files(self, values: Mapping[str, str], path: str) -> dict[str, bytes]:
        """The private key at ``path`` and the public key at ``path.pub`` (if known)."""
        files = {path: self.render(values)}
        if values.get("public_key"):
            files[path + ".pub"] = values["public_key"].encode()
        return files
