"""Bucket servers for tests, each started once per session and shared: moto's S3 server,
gcp-storage-emulator (GCS) and Azurite (Azure Blob). Registered in ``tests/conftest.py``.

Session fixtures (``s3_server``, ``gcs_server``, ``azure_server``) start a server as a child
process on a free loopback port, poll its endpoint until it answers (with a deadline), and
stop it by its PID at the end; they touch no environment. The test fixtures (``s3``,
``gcs``, ``azure``) set the variables that point clients at a server for one test only
(monkeypatch undoes them) and make fresh buckets: ``s3.bucket()``. ``server.options`` is
the same place as a ``data_config``, for tests that use no environment at all.

What running them on this machine taught (Debian 12, 2 cores, no internet but registries):

- moto: ``python -m moto.server -H 127.0.0.1 -p PORT``, ready in about 0.3 s on
  ``GET /moto-api/``; SIGTERM stops it. It checks no credentials (any key is accepted, so a
  wrong key cannot be tested against it), keeps every object in memory and never frees it:
  keep objects small. ``AWS_CA_BUNDLE`` is set on these machines: remove it. The
  variables alone (``AWS_ENDPOINT_URL``, key, secret, region) point boto3 and s3fs at it.
  A closed port fails in 0.3 s once botocore's retries are off
  (``config_kwargs={"retries": {"max_attempts": 1}}``), about 4 s with them.
- gcp-storage-emulator: ``python -m gcp_storage_emulator start --host 127.0.0.1 --port PORT
  --in-memory``, ready in about 0.1 s (``GET /`` answers "OK"); no authentication.
  ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`` must be set before gcsfs is imported (the
  ``gs`` system sets it by default), or every operation waits 60 s on a gRPC probe. gcsfs
  retries a refused connection six times with backoff (about 34 s, fixed in the library):
  an unreachable endpoint is not tested for GCS. A missing bucket is a plain
  FileNotFoundError naming a URL, not the bucket. The emulator is one single-threaded
  ``http.server.HTTPServer`` with a listen backlog of 5: fsspec's batched put/get open
  dozens of connections at once, and those past the backlog wait for TCP's SYN retries
  (1 s, 3 s, ...), so 25 files took 8 s instead of 0.04 s. The ``gcs`` fixture sets
  fsspec's ``gather_batch_size`` and ``nofiles_gather_batch_size`` to 4 for its test.
- Azurite: installed from npm into ``.cache/azurite`` on first use (about 10 s; a file lock
  keeps two sessions from installing at once; ``npm_config_cache`` is a temporary folder),
  then ``azurite-blob --blobHost 127.0.0.1 --blobPort PORT --skipApiVersionCheck
  --inMemoryPersistence --disableTelemetry --silent`` is ready in about 0.4 s (any HTTP
  answer). It checks the account key's signature: a wrong key gives 403
  ``AuthorizationFailure`` (real Azure says ``AuthenticationFailed``). azure-core retries a
  refused connection for about 80 s: not tested either. With ``account_name`` and no key,
  adlfs tries azure-identity's whole chain (minutes here): the ``azure`` system says
  "no credentials" at once when nothing at all is configured.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.sshd import free_port

REPO = Path(__file__).resolve().parents[1]
AZURITE = "azurite@3.35.0"  # later ones declare Node.js >= 21; Debian 12 has 18
AZURITE_DIR = REPO / ".cache" / "azurite"
# Azurite's documented development account (public, the same in every Azurite).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
EMULATOR_CONNECTIONS = 4  # the GCS emulator's listen backlog is 5: see the module's notes
READY_WITHIN = 30.0  # seconds a server may take to answer (they take well under one)
# Variables each service's clients read: cleared for a test, then set to the server's.
PREFIXES = {
    "s3": ("AWS_",),
    "gcs": ("STORAGE_EMULATOR_HOST", "GOOGLE_", "GCSFS_", "CLOUDSDK_"),
    "azure": ("AZURE_",),
}


@dataclass
class StorageServer:
    """One running server: where it is, and how a client reaches it."""

    name: str
    proc: subprocess.Popen[bytes]
    endpoint: str
    env: dict[str, str]  # the variables that point a client at it
    options: dict[str, Any]  # the same, as a data_config
    log: Path
    seconds_to_ready: float
    make_bucket: Callable[[str], None] = field(repr=False)

    def stop(self) -> None:
        """Stop the server by its PID (SIGTERM, then SIGKILL if it lingers)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class Service:
    """A server as one test sees it: its variables are set; ``bucket()`` makes a bucket."""

    server: StorageServer

    @property
    def options(self) -> dict[str, Any]:
        """The server as a data_config."""
        return dict(self.server.options)

    def bucket(self) -> str:
        """A fresh, empty bucket (container), made directly by the service's own API."""
        name = f"rh-{secrets.token_hex(6)}"
        self.server.make_bucket(name)
        return name


def start_server(
    name: str, command: list[str], ready_url: str, log_dir: Path
) -> tuple[subprocess.Popen[bytes], Path, float]:
    """Start ``command`` as a child and wait until ``ready_url`` gives any HTTP answer;
    a server that exits or stays silent fails the session, with its log."""
    log = log_dir / f"{name}.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=log_dir
        )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
    while True:
        try:
            opener.open(ready_url, timeout=2).close()
            break
        except urllib.error.HTTPError:
            break  # an answer, even a refusal, means it is serving
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() - started > READY_WITHIN:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            output = log.read_text(errors="replace")[-3000:]
            pytest.fail(
                f"{name} did not start ({' '.join(command)}; exit {proc.returncode}):\n{output}",
                pytrace=False,
            )
        time.sleep(0.02)  # between polls of the endpoint, not a wait for readiness
    return proc, log, time.monotonic() - started


def _require_module(module: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{what} is not installed: scripts/test installs it (scripts/setup dev)")


def start_moto(log_dir: Path) -> StorageServer:
    """moto's S3 server."""
    _require_module("moto.server", "moto[server]")
    _require_module("boto3", "boto3")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc, log, seconds = start_server("moto", command, f"{endpoint}/moto-api/", log_dir)
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",  # never ask an instance for a role
    }
    options = {
        "endpoint_url": endpoint,
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"region_name": "us-east-1"},
    }
    return StorageServer(
        "moto", proc, endpoint, env, options, log, seconds, lambda b: client.create_bucket(Bucket=b)
    )


def start_gcs_emulator(log_dir: Path) -> StorageServer:
    """gcp-storage-emulator, in memory."""
    _require_module("gcp_storage_emulator", "gcp-storage-emulator")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--in-memory"]
    proc, log, seconds = start_server("gcp-storage-emulator", command, f"{endpoint}/", log_dir)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def make_bucket(name: str) -> None:
        request = urllib.request.Request(
            f"{endpoint}/storage/v1/b?project=test",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
        )
        opener.open(request, timeout=10).close()

    env = {"STORAGE_EMULATOR_HOST": endpoint, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
    options = {"endpoint_url": endpoint, "token": "anon", "project": "test"}
    return StorageServer("gcs", proc, endpoint, env, options, log, seconds, make_bucket)


def install_azurite() -> Path:
    """Azurite's blob server from npm, installed once into ``.cache/azurite``."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("Node.js and npm are not installed: scripts/test installs them")
    binary = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
    marker = AZURITE_DIR / f".installed-{AZURITE}"
    AZURITE_DIR.parent.mkdir(exist_ok=True)
    with open(AZURITE_DIR.parent / "azurite.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be installing it right now
        if not marker.exists():
            shutil.rmtree(AZURITE_DIR, ignore_errors=True)
            with tempfile.TemporaryDirectory(prefix="rh-npm-cache-") as cache:
                done = subprocess.run(
                    [
                        "npm",
                        "install",
                        "--prefix",
                        str(AZURITE_DIR),
                        "--no-audit",
                        "--no-fund",
                        AZURITE,
                    ],
                    capture_output=True,
                    text=True,
                    env={**os.environ, "npm_config_cache": cache},
                    timeout=600,
                )
            if done.returncode != 0:
                pytest.fail(f"npm install {AZURITE} failed:\n{done.stdout}{done.stderr}")
            marker.touch()
    return binary


def start_azurite(log_dir: Path) -> StorageServer:
    """Azurite's blob service, in memory."""
    _require_module("azure.storage.blob", "adlfs (azure-storage-blob)")
    binary = install_azurite()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    command = [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port)]
    command += ["--skipApiVersionCheck", "--inMemoryPersistence", "--disableTelemetry"]
    command += ["--silent"]  # --location is refused with --inMemoryPersistence
    proc, log, seconds = start_server("azurite", command, f"{endpoint}?comp=list", log_dir)
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
        f"AccountKey={AZURITE_KEY};BlobEndpoint={endpoint};"
    )
    from azure.storage.blob import BlobServiceClient

    client = BlobServiceClient.from_connection_string(connection)
    env = {"AZURE_STORAGE_CONNECTION_STRING": connection}
    options = {"connection_string": connection}
    return StorageServer(
        "azurite", proc, endpoint, env, options, log, seconds, client.create_container
    )


@contextlib.contextmanager
def _running(start: Callable[[Path], StorageServer], log_dir: Path) -> Iterator[StorageServer]:
    server = start(log_dir)
    try:
        yield server
    finally:
        server.stop()


def point_at(monkeypatch: pytest.MonkeyPatch, system: str, env: dict[str, str]) -> None:
    """Clear every variable ``system``'s clients read, then set ``env`` (undone after)."""
    for name in list(os.environ):
        if name.startswith(PREFIXES[system]):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorageServer]:
    """moto's S3 server for the session."""
    with _running(start_moto, tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorageServer]:
    """The GCS emulator for the session."""
    with _running(start_gcs_emulator, tmp_path_factory.mktemp("gcs")) as server:
        yield server


@pytest.fixture(scope="session")
def azure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorageServer]:
    """Azurite for the session."""
    with _running(start_azurite, tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture
def s3(s3_server: StorageServer, monkeypatch: pytest.MonkeyPatch) -> Service:
    """S3 (moto) for this test: ``AWS_*`` point at it, as a user would for MinIO."""
    point_at(monkeypatch, "s3", s3_server.env)
    return Service(s3_server)


@pytest.fixture
def gcs(gcs_server: StorageServer, monkeypatch: pytest.MonkeyPatch) -> Service:
    """GCS (the emulator) for this test: ``STORAGE_EMULATOR_HOST`` points at it, and
    fsspec opens at most 4 connections at once (the emulator's backlog is 5)."""
    import fsspec.config

    point_at(monkeypatch, "gcs", gcs_server.env)
    for key in ("gather_batch_size", "nofiles_gather_batch_size"):
        monkeypatch.setitem(fsspec.config.conf, key, EMULATOR_CONNECTIONS)
    return Service(gcs_server)


@pytest.fixture
def azure(azure_server: StorageServer, monkeypatch: pytest.MonkeyPatch) -> Service:
    """Azure Blob (Azurite) for this test: ``AZURE_STORAGE_CONNECTION_STRING`` is set."""
    point_at(monkeypatch, "azure", azure_server.env)
    return Service(azure_server)
