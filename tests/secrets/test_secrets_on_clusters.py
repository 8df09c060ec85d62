"""Secrets on clusters: a provider's files written in the daemon user's home with mode 600 and
read there by the provider's library; variables set in one env's worker only (and again in
the worker that replaces it); ``rh.env(secrets=[...])``; and a secret's values nowhere else:
not in the daemon's log, any process's command line during a send, any file written, or the
errors of failing sends."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

import runhouse as rh
from tests.secrets.test_providers import sample


def read_aws_here(endpoint: str | None) -> dict[str, Any]:
    """On the cluster: the mode of ~/.aws/credentials and its key, as boto3 reads it (a bucket
    made with it on ``endpoint``, moto), or as configparser does where boto3 is missing."""
    import configparser
    import stat

    path = os.path.expanduser("~/.aws/credentials")
    key = os.path.expanduser("~/.ssh/id_ed25519")
    info: dict[str, Any] = {
        "home": os.path.expanduser("~"),
        "mode": stat.S_IMODE(os.stat(path).st_mode),
        "key_mode": stat.S_IMODE(os.stat(key).st_mode),
        "public_key": Path(key + ".pub").read_text(),
    }
    try:
        import boto3
    except ImportError:
        parser = configparser.RawConfigParser()
        parser.read(path)
        info.update(reader="configparser", access_key=parser["default"]["aws_access_key_id"])
        return info
    session = boto3.Session()
    creds = session.get_credentials()
    info.update(reader="boto3", method=creds.method, access_key=creds.access_key)
    if endpoint:
        s3 = session.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        info["bucket"] = f"rh-secrets-{creds.access_key[-12:].lower()}"
        s3.create_bucket(Bucket=info["bucket"])
    return info


def read_vars(names: list[str]) -> list[str | None]:
    return [os.environ.get(name) for name in names]


def test_provider_files_are_written_on_the_cluster(
    secrets_cluster: tuple[Any, Path, Path], marker: str, request: pytest.FixtureRequest
) -> None:
    cluster, home, _ = secrets_cluster
    local = request.node.callspec.params["secrets_cluster"] == "local"
    endpoint = request.getfixturevalue("s3_server").endpoint if local else None
    aws = rh.provider_secret("aws", values={"access_key": f"AKIA{marker}", "secret_key": marker})
    assert aws.to(cluster) is aws
    ssh = rh.provider_secret("ssh", values=sample("ssh", marker))
    ssh.to(cluster)

    info = rh.function(read_aws_here).to(cluster)(endpoint)
    assert info["home"] == str(home)
    assert info["mode"] == 0o600 and info["key_mode"] == 0o600
    assert info["access_key"] == f"AKIA{marker}"
    assert info["public_key"] == sample("ssh", marker)["public_key"]
    if local:  # the daemon's Python has boto3; the SSH host's venv has only runhouse
        assert info["reader"] == "boto3" and info["method"] == "shared-credentials-file"
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        assert info["bucket"] in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    else:
        assert info["reader"] == "configparser"
    assert (home / ".aws" / "credentials").stat().st_uid == home.stat().st_uid  # its user's


def test_a_secret_sent_to_an_env_is_in_that_env_only(cluster: Any, marker: str) -> None:
    suffix = secrets.token_hex(3)
    inside, beside = f"sec_in_{suffix}", f"sec_beside_{suffix}"
    rh.Env(name=inside).to(cluster)
    rh.Env(name=beside).to(cluster)
    rh.secret(name="mine", values={"RH_TEST_SECRET": marker}).to(cluster, env=inside)

    names = ["RH_TEST_SECRET"]
    there = rh.function(read_vars).to(cluster, env=inside, name=f"in_{suffix}")
    assert there(names) == [marker]
    assert rh.function(read_vars).to(cluster, env=beside, name=f"beside_{suffix}")(names) == [None]
    assert rh.function(read_vars).to(cluster, name=f"base_{suffix}")(names) == [None]
    assert marker not in json.dumps(cluster.status())

    rh.env(name=inside, env_vars={"CHANGED": "1"}).to(cluster)  # a new spec: a new worker
    assert there(["RH_TEST_SECRET", "CHANGED"]) == [marker, "1"]


def test_an_envs_secrets_reach_its_code(
    cluster: Any, marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    suffix = secrets.token_hex(3)
    rh.secret(name=f"saved_{suffix}", values={"RH_SAVED_SECRET": f"s{marker}"}).save()
    monkeypatch.setenv("OPENAI_API_KEY", f"o{marker}")  # a provider's, read on this machine
    env = rh.env(name=f"sec_env_{suffix}", secrets=[f"saved_{suffix}", "openai"])
    fn = rh.function(read_vars).to(cluster, env=env)
    assert fn(["RH_SAVED_SECRET", "OPENAI_API_KEY"]) == [f"s{marker}", f"o{marker}"]

    missing = rh.env(name=f"sec_missing_{suffix}", secrets=["nowhere_saved"])
    with pytest.raises(rh.ResourceNotFoundError, match="nowhere_saved"):
        rh.function(read_vars).to(cluster, env=missing)
    assert f"sec_missing_{suffix}" not in {e["name"] for e in cluster.status()["envs"]}


def test_a_secret_without_variables_needs_its_files(home_cluster: Any, marker: str) -> None:
    ssh = rh.provider_secret("ssh", values=sample("ssh", marker))
    with pytest.raises(ValueError, match="without env= to write its files") as caught:
        ssh.to(home_cluster, env="base")
    assert marker not in str(caught.value)


# -- never in clear --------------------------------------------------------------------------


class CommandLines:
    """Reads every process's command line, over and over, while a block runs."""

    def __init__(self, marker: str) -> None:
        self.marker = marker.encode()
        self.hits: list[str] = []
        self.scans = 0
        self.daemons_seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._scan, daemon=True)

    def __enter__(self) -> CommandLines:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _scan(self) -> None:
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                        line = f.read()
                except OSError:
                    continue  # gone meanwhile
                if self.marker in line:
                    self.hits.append(line.replace(b"\0", b" ").decode(errors="replace"))
                self.daemons_seen += b"runhouse.daemon" in line
            self.scans += 1


def files_with(marker: str, roots: list[Path], since: float) -> list[Path]:
    """Files under ``roots`` written since ``since`` that hold ``marker``."""
    found = []
    needle = marker.encode()
    for root in roots:
        for path in root.rglob("*"):
            try:
                fresh = path.is_file() and not path.is_symlink() and path.stat().st_mtime >= since
                if fresh and needle in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found


def test_values_never_show_in_logs_command_lines_or_files(
    secrets_cluster: tuple[Any, Path, Path],
    marker: str,
    project: Path,
    home_daemon: tuple[Path, Path],
) -> None:
    cluster, home, daemon_log = secrets_cluster
    started = time.time() - 1
    suffix = secrets.token_hex(3)
    env = f"sec_grep_{suffix}"
    rh.Env(name=env).to(cluster)
    aws = rh.provider_secret("aws", values={"access_key": f"A{marker}", "secret_key": marker})
    aws.save()
    custom = rh.secret(name="grep", values={"RH_GREP_SECRET": marker}).save()
    with CommandLines(marker) as lines:
        for _ in range(3):
            rh.load("aws").to(cluster)
            rh.secret(name="grep").to(cluster, env=env)
            custom.to(cluster)  # no files: variables of the base env
    assert lines.hits == []
    assert lines.scans > 0 and lines.daemons_seen > 0  # it did see processes

    assert rh.function(read_vars).to(cluster, env=env)(["RH_GREP_SECRET"]) == [marker]
    log = daemon_log.read_text(errors="replace")
    assert "started worker" in log and marker not in log

    meant = {  # the places meant to hold it: the backend, and the file written on the cluster
        home / ".aws" / "credentials",
        *[p for p in (Path.home() / ".rh" / "secrets").rglob("*") if p.is_file()],
    }
    roots = [project, Path.home(), home, home_daemon[0], daemon_log.parent]
    written = set(files_with(marker, roots, started))
    assert home / ".aws" / "credentials" in written  # the search does find it where it is
    assert written - meant == set()


def test_failing_sends_say_why_without_the_value(home_cluster: Any, marker: str) -> None:
    def text(exc: BaseException) -> str:
        return "".join(traceback.format_exception(exc))

    bad_name = rh.secret(values={"NOT-A-NAME": marker})
    with pytest.raises(ValueError, match="'NOT-A-NAME'") as caught:
        bad_name.to(home_cluster)
    assert marker not in text(caught.value)

    with pytest.raises(rh.DaemonError, match="no env 'sec_nowhere'") as daemon_says:
        home_cluster.put_env_secrets("sec_nowhere", {"RH_X": marker})
    assert marker not in text(daemon_says.value)

    with pytest.raises(rh.DaemonError, match="names of letters") as refused:
        home_cluster.put_env_secrets("base", {"NOT-A-NAME": marker, "RH_Y": marker})
    assert marker not in text(refused.value)

    unwritable = rh.provider_secret(
        "aws", values={"access_key": marker, "secret_key": marker}, path="/proc/rh-no/credentials"
    )
    with pytest.raises(Exception) as write_failed:  # whichever error the disk gives
        unwritable.to(home_cluster)
    assert marker not in text(write_failed.value)


def test_a_restarted_daemon_gets_the_envs_secrets_again(own_daemon_dir: Path, marker: str) -> None:
    c = rh.cluster(name="local").up_if_not()
    env = f"sec_restart_{secrets.token_hex(3)}"
    rh.Env(name=env).to(c)
    rh.secret(name="kept", values={"RH_KEPT_SECRET": marker}).to(c, env=env)
    fn = rh.function(read_vars).to(c, env=env, name="reads_kept")
    assert fn(["RH_KEPT_SECRET"]) == [marker]
    c.restart_server()  # the daemon held them in memory only: this client sends them again
    assert fn(["RH_KEPT_SECRET"]) == [marker]


def test_a_credentials_file_on_the_cluster_keeps_its_other_profiles(
    home_cluster: Any, home_daemon: tuple[Path, Path], marker: str
) -> None:
    credentials = home_daemon[1] / ".aws" / "credentials"
    credentials.parent.mkdir(exist_ok=True)
    credentials.write_text("[work]\naws_access_key_id = W\naws_secret_access_key = WS\n")
    aws = rh.provider_secret("aws", values={"access_key": f"A{marker}", "secret_key": "S"})
    aws.to(home_cluster)
    written = credentials.read_text()
    assert "[work]\naws_access_key_id = W" in written  # the profile that was there stays
    assert f"[default]\naws_access_key_id = A{marker}" in written
    aws.to(home_cluster)  # again: still one [default]
    assert credentials.read_text().count("[default]") == 1

    credentials.write_bytes(b"\xff not an ini file")
    with pytest.raises(ValueError, match="not in the INI format") as refused:
        aws.to(home_cluster)
    assert marker not in str(refused.value)
    assert credentials.read_bytes() == b"\xff not an ini file"  # nothing lost
    credentials.unlink()
