"""GitHub: the token the ``gh`` CLI keeps in ``~/.config/gh/hosts.yml``, or ``GITHUB_TOKEN``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from runhouse.secrets.base import Provider, env_names
from runhouse.secrets.formats import FileFormat, UnreadableFile

HOST = "github.com"


class GhHosts(FileFormat):
    """gh's hosts file: ``github.com: {oauth_token, user, git_protocol}``."""

    kind = "gh hosts YAML"

    def parse(self, path: Path) -> dict[str, str]:
        """github.com's token and user."""
        try:
            hosts = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            raise UnreadableFile(self.kind) from None  # YAML errors quote the file
        entry = hosts.get(HOST) if isinstance(hosts, dict) else None
        if not isinstance(entry, dict):
            return {}
        values = {"token": entry.get("oauth_token"), "user": entry.get("user")}
        return {k: v for k, v in values.items() if isinstance(v, str) and v}

    def render(self, values: Mapping[str, str]) -> bytes:
        """A hosts file with github.com alone."""
        entry = {"oauth_token": values.get("token", ""), "git_protocol": "https"}
        if values.get("user"):
            entry["user"] = values["user"]
        return yaml.safe_dump({HOST: entry}, default_flow_style=False).encode()


class GitHub(Provider):
    """A GitHub token (and the user it belongs to, when gh knows)."""

    name = "github"
    variables = env_names(token="GITHUB_TOKEN")
    file = GhHosts(("~/.config/gh/hosts.yml",))
