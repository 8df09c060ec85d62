"""Providers read the credentials a fake home holds (files first, then variables), write them
back in their own layout with mode 600, and say what they looked at when there are none.
Where the provider's own library is installed, it reads what was written (in a subprocess
whose HOME is the written one: another machine, as far as it can tell)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import runhouse as rh
from runhouse.secrets.base import Provider, env_names
from runhouse.secrets.registry import known, provider_class
from tests.secrets.conftest import SOURCE_FOLDER

FILE_PROVIDERS = ["aws", "gcp", "github", "huggingface", "lambda", "ssh"]
VARIABLE_PROVIDERS = [
    "anthropic",
    "aws",
    "azure",
    "cohere",
    "github",
    "huggingface",
    "lambda",
    "langchain",
    "openai",
    "pinecone",
    "wandb",
]


def sample(provider: str, marker: str) -> dict[str, str]:
    """Credentials of ``provider`` in which every value holds ``marker``."""
    if provider == "aws":
        keys = ["access_key", "secret_key", "session_token"]
    elif provider == "gcp":
        return {
            "type": "authorized_user",
            "client_id": f"{marker}.apps.googleusercontent.com",
            "client_secret": f"cs-{marker}",
            "refresh_token": f"rt-{marker}",
        }
    elif provider == "ssh":
        return {
            "private_key": f"-----BEGIN OPENSSH PRIVATE KEY-----\n{marker}\n"
            "-----END OPENSSH PRIVATE KEY-----\n",
            "public_key": f"ssh-ed25519 {marker} ana@laptop\n",
        }
    elif provider == "github":
        return {"token": f"gho_{marker}", "user": "ana"}
    else:
        keys = provider_class(provider).keys()
    return {key: f"{key}-{marker}" for key in keys}


def materialize(files: dict[str, tuple[bytes, int]], home: Path) -> None:
    """Write ``write_files`` output under ``home``, as the cluster's daemon does."""
    for relative, (data, mode) in files.items():
        path = home / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)


def test_every_provider_of_the_issue_is_known() -> None:
    wanted = set(FILE_PROVIDERS) | set(VARIABLE_PROVIDERS) | {"azure"}
    assert wanted <= set(known())


@pytest.mark.parametrize("provider", FILE_PROVIDERS)
def test_files_round_trip_through_a_fake_home(provider: str, marker: str, tmp_path: Path) -> None:
    values = sample(provider, marker)
    written = rh.provider_secret(provider, values=values).files()
    assert written and all(mode == 0o600 for _, mode in written.values())
    materialize(written, Path.home())  # the test's own fresh HOME (tests/conftest.py)

    found = rh.provider_secret(provider)
    assert found.values == values
    assert found.name == provider
    assert found.source is not None and found.source.startswith("~/")

    other = tmp_path / "other-home"  # and on another machine, by the library's own layout
    materialize(found.files(), other)
    for relative in written:
        assert (other / relative).read_bytes() == (Path.home() / relative).read_bytes()
        assert stat.S_IMODE((other / relative).stat().st_mode) == 0o600


@pytest.mark.parametrize("provider", VARIABLE_PROVIDERS)
def test_variables_alone_are_read(
    provider: str, marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = provider_class(provider)
    values = {k: v for k, v in sample(provider, marker).items() if k in cls.variables}
    for key, value in values.items():
        monkeypatch.setenv(cls.variables[key], value)
    found = rh.provider_secret(provider)
    assert found.values == values
    assert found.env_vars() == {cls.variables[k]: v for k, v in values.items()}
    assert found.source is not None and found.source.startswith("environment variables")


def test_a_file_wins_over_variables(marker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "from-the-variable")
    token = Path.home() / ".cache" / "huggingface" / "token"
    token.parent.mkdir(parents=True)
    token.write_text(f"hf_{marker}\n")
    assert rh.provider_secret("huggingface").values == {"token": f"hf_{marker}"}


def test_other_variable_names_and_another_file(
    marker: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MY_OPENAI", marker)
    s = rh.provider_secret("openai", env_vars={"api_key": "MY_OPENAI"})
    assert s.values == {"api_key": marker}
    assert s.env_vars() == {"MY_OPENAI": marker}
    assert s.config()["env_vars"] == {"api_key": "MY_OPENAI"}

    creds = tmp_path / SOURCE_FOLDER / "elsewhere.ini"  # a place meant to hold values
    creds.parent.mkdir()
    creds.write_text(f"[default]\naws_access_key_id = a{marker}\naws_secret_access_key = b\n")
    aws = rh.provider_secret("aws", path=str(creds))
    assert aws.values == {"access_key": f"a{marker}", "secret_key": "b"}
    assert aws.path == str(creds)
    assert set(aws.files()) == {str(creds)}  # outside the home: written at the same path


def test_the_key_found_is_the_key_written(marker: str) -> None:
    ssh = Path.home() / ".ssh"
    ssh.mkdir()
    (ssh / "id_rsa").write_text(f"PRIVATE {marker}\n")
    (ssh / "id_rsa.pub").write_text("ssh-rsa AAAA ana\n")
    s = rh.provider_secret("ssh")
    assert s.path == "~/.ssh/id_rsa"  # not the first default (id_ed25519): kept in its config
    assert set(s.files()) == {".ssh/id_rsa", ".ssh/id_rsa.pub"}


@pytest.mark.parametrize("provider", sorted(set(FILE_PROVIDERS) | set(VARIABLE_PROVIDERS)))
def test_nothing_found_names_the_files_and_variables(provider: str) -> None:
    cls = provider_class(provider)
    with pytest.raises(rh.CredentialsNotFoundError) as caught:
        rh.provider_secret(provider)
    message = str(caught.value)
    for path in cls.file.paths if cls.file else ():
        assert path in message
    for name in cls.variables.values():
        assert name in message
    assert caught.value.provider == provider
    assert isinstance(caught.value, FileNotFoundError)


def test_a_file_without_the_needed_values_says_so(marker: str) -> None:
    creds = Path.home() / ".aws" / "credentials"
    creds.parent.mkdir()
    creds.write_text(f"[work]\naws_access_key_id = {marker}\n")
    with pytest.raises(rh.CredentialsNotFoundError, match=r"credentials \(it has no access_key"):
        rh.provider_secret("aws")


def test_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(rh.UnknownProviderError) as caught:
        rh.provider_secret("awz")
    for name in ("aws", "gcp", "ssh", "openai", "lambda"):
        assert name in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_provider_of_ones_own_is_one_class() -> None:
    class Replicate(Provider):
        """Replicate's API token."""

        name = "replicate_test"
        variables = env_names(token="REPLICATE_API_TOKEN")

    assert "replicate_test" in known()
    s = rh.provider_secret("replicate_test", values={"token": "t"})
    assert s.env_vars() == {"REPLICATE_API_TOKEN": "t"}


# -- the providers' own tools read what was written ------------------------------------------


def run_in_home(home: Path, code: str) -> str:
    """``code`` run by a fresh Python whose HOME is ``home`` and which has no provider
    variables; its stdout."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HF_", "GOOGLE"))}
    environ.update(HOME=str(home), AWS_EC2_METADATA_DISABLED="true", NO_PROXY="*")
    result = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_boto3_reads_the_written_credentials(marker: str, tmp_path: Path) -> None:
    pytest.importorskip("boto3")
    materialize(rh.provider_secret("aws", values=sample("aws", marker)).files(), tmp_path)
    code = (
        "import boto3; c = boto3.Session().get_credentials(); "
        "print(c.method, c.access_key, c.secret_key, c.token)"
    )
    method, *keys = run_in_home(tmp_path, code).split()
    assert method == "shared-credentials-file"
    assert keys == [f"{k}-{marker}" for k in ("access_key", "secret_key", "session_token")]


def test_google_auth_reads_the_written_application_default_credentials(
    marker: str, tmp_path: Path
) -> None:
    pytest.importorskip("google.auth")
    materialize(rh.provider_secret("gcp", values=sample("gcp", marker)).files(), tmp_path)
    code = (
        "import warnings; warnings.simplefilter('ignore'); import google.auth; "
        "c, _ = google.auth.default(); print(type(c).__name__, c.client_id, c.refresh_token)"
    )
    kind, client_id, refresh = run_in_home(tmp_path, code).split()
    assert (kind, client_id, refresh) == (
        "Credentials",
        f"{marker}.apps.googleusercontent.com",
        f"rt-{marker}",
    )


def test_huggingface_hub_reads_the_written_token(marker: str, tmp_path: Path) -> None:
    pytest.importorskip("huggingface_hub")
    materialize(
        rh.provider_secret("huggingface", values={"token": f"hf_{marker}"}).files(), tmp_path
    )
    code = "import huggingface_hub; print(huggingface_hub.get_token())"
    assert run_in_home(tmp_path, code) == f"hf_{marker}"


def test_ssh_keygen_takes_the_written_key_pair(tmp_path: Path) -> None:
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        pytest.skip("ssh-keygen is not installed")
    ssh = Path.home() / ".ssh"
    ssh.mkdir(mode=0o700)
    subprocess.run(
        [keygen, "-q", "-t", "ed25519", "-N", "", "-C", "ana", "-f", str(ssh / "id_ed25519")],
        check=True,
    )
    key = rh.provider_secret("ssh")
    other = tmp_path / "other"
    materialize(key.files(), other)
    # ssh-keygen refuses a private key others may read: this checks the mode too.
    derived = subprocess.run(
        [keygen, "-y", "-f", str(other / ".ssh" / "id_ed25519")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[:2]
    assert derived == key.values["public_key"].split()[:2]


def test_files_holding_several_credentials_keep_the_others_when_merged() -> None:
    from runhouse.secrets.formats import IniFile, KeyValueFile, TokenFile, UnreadableFile

    ini = IniFile(("~/x",), section="default", options={"key": "k"})
    merged = ini.merge(b"[other]\nk = 1\n\n[default]\nk = old\n", ini.render({"key": "new"}))
    assert merged == b"[other]\nk = 1\n\n[default]\nk = new\n\n"
    with pytest.raises(UnreadableFile):
        ini.merge(b"no section header", ini.render({"key": "new"}))
    pairs = KeyValueFile(("~/y",), {"api_key": "api_key"})
    assert pairs.merge(b"# note\nregion = eu\napi_key = old", pairs.render({"api_key": "n"})) == (
        b"# note\nregion = eu\napi_key = n\n"
    )
    token = TokenFile(("~/z",), "token")
    assert token.merge(b"old", token.render({"token": "new"})) == b"new"  # one credential
